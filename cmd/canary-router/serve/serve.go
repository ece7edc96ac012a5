// Package serve is `canary-router serve`: the admission webhook, its live
// views of the cluster, its certificates, and, on the elected leader, the
// namespace reconciler, the migration and the self-driving rollout.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/webhook"
)

// istioRevisions tells the policy validator which revisions and tags
// exist, from the live Istio view.
type istioRevisions func() *istio.State

var _ webhook.RevisionLister = istioRevisions(nil)

// Exists implements webhook.RevisionLister.
func (f istioRevisions) Exists(name string) (exists, synced bool) {
	st := f()
	if st == nil {
		return false, false
	}
	return st.Target(name).Cause != istio.CauseNotFound, true
}

// Options is the validated configuration of the serve command.
type Options struct {
	policyFile string
	certs      certConfig
	host       string
	port       int
	healthAddr string
	namespace  string
	logLevel   string
	logFormat  string
	// kubeconfig is a kubeconfig path; empty means the in-cluster
	// ServiceAccount. kubeContext picks one of its contexts.
	kubeconfig, kubeContext string
	// policyConfigMap names the watched policy ConfigMap in namespace;
	// ignored when policyFile is set.
	policyConfigMap string
	// cluster configures the live view of Istio and pods.
	cluster clusterConfig
	// migrationQPS paces the leader's migration writes (restarts and
	// namespace relabels).
	migrationQPS float64
	// prometheusAllowed lists the Prometheus URLs a policy's rollout
	// gates may name; empty allows none.
	prometheusAllowed []string
	// warnRestartShare is the share of the workloads the router places
	// past which a policy edit's dry-run plan earns a warning.
	warnRestartShare float64
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "canary-router-system"
	}
	fs.StringVar(&c.policyFile, "policy-file", "", "read the policy from this file once at start instead of watching the ConfigMap (local runs)")
	fs.StringVar(&c.policyConfigMap, "policy-configmap", "canary-router-policy", "policy ConfigMap (key policy.yaml) in --namespace, watched for changes")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (empty: the in-cluster ServiceAccount; $KUBECONFIG is not read)")
	fs.StringVar(&c.kubeContext, "context", "", "context of --kubeconfig (default: its current context)")
	c.certs.Bind(fs)
	c.cluster.Bind(fs)
	fs.StringVar(&c.host, "host", "", "address the admission server listens on (empty: all)")
	fs.IntVar(&c.port, "port", 9443, "admission server port (TLS)")
	fs.StringVar(&c.healthAddr, "health-addr", ":8081", "address of the plain-HTTP /healthz, /readyz and /metrics server")
	fs.StringVar(&c.namespace, "namespace", ns, "the router's own namespace, never routed (default $POD_NAMESPACE)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or console")
	fs.Float64Var(&c.migrationQPS, "migration-write-qps", defaultMigrationWriteQPS, "most workload restarts and namespace relabels the leader's migration writes per second")
	fs.StringArrayVar(&c.prometheusAllowed, "prometheus-allowed-url", nil,
		"a Prometheus URL (http://host:port) a policy's rollout gates may query; repeat for several. None given: no Prometheus gate is allowed")
	fs.Float64Var(&c.warnRestartShare, "warn-restart-share", webhook.DefaultWarnRestartShare,
		"a policy edit whose dry-run migration plan would move more than this share (0 to 1) of the workloads the router places is applied with a warning naming the count; 1 turns the warning off")
}

// Validate fails fast on flags that cannot work.
func (c *Options) Validate() error {
	var errs []error
	if c.port < 1 || c.port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: must be between 1 and 65535", c.port))
	}
	errs = append(errs, c.certs.validate()...)
	if c.policyFile == "" && c.policyConfigMap == "" {
		errs = append(errs, errors.New("--policy-configmap: required unless --policy-file is set"))
	}
	if c.healthAddr == "" {
		errs = append(errs, errors.New("--health-addr: required"))
	}
	for _, u := range c.prometheusAllowed {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("--prometheus-allowed-url %q: must be an http or https URL such as http://prometheus.monitoring:9090", u))
		}
	}
	if c.warnRestartShare < 0 || c.warnRestartShare > 1 || math.IsNaN(c.warnRestartShare) {
		errs = append(errs, fmt.Errorf("--warn-restart-share %g: must be between 0 and 1", c.warnRestartShare))
	}
	if c.migrationQPS <= 0 {
		errs = append(errs, fmt.Errorf("--migration-write-qps %g: must be positive", c.migrationQPS))
	}
	if _, err := zapcore.ParseLevel(c.logLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if c.logFormat != "json" && c.logFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format %q: must be json or console", c.logFormat))
	}
	return errors.Join(errs...)
}

// check adds the positional arguments to Validate: serve takes none.
func (c *Options) Check(args []string) error {
	if err := cmdutil.NoArgs(args); err != nil {
		return err
	}
	return c.Validate()
}

// run starts the logger and serves until ctx ends; the logger, not
// stdout, carries everything serve says.
func (c *Options) Run(ctx context.Context, _ []string, _, stderr io.Writer) int {
	log, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitUsage
	}
	defer func() { _ = log.Sync() }()
	crlog.SetLogger(zapr.NewLogger(log))

	if err := runServe(ctx, *c, log); err != nil {
		log.Error("canary-router stopped", zap.Error(err))
		return cmdutil.ExitFailure
	}
	return cmdutil.ExitOK
}

// runServe wires the router and runs it until ctx ends.
func runServe(ctx context.Context, cfg Options, log *zap.Logger) error {
	gcPercent, adapt := tuneGC()
	log.Info("garbage collector target", zap.Int("gcPercent", gcPercent), zap.Bool("adapts", adapt))
	if adapt {
		go adaptGC(ctx, 10*time.Second, log)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := webhook.NewMetrics(reg, cmdutil.Version)
	store := inforce.NewStore(time.Now, func(s *inforce.Snapshot) {
		metrics.PolicyApplied(s)
		log.Info("policy applied", zap.Int64("generation", s.Generation), zap.String("digest", s.Digest),
			zap.String("source", s.Source), zap.Any("targets", s.Policy.Targets), zap.String("granularity", string(s.Policy.Granularity)))
	}, func(err error) {
		metrics.PolicyRejected(err)
		log.Error("policy rejected", zap.Error(err))
	})
	// Every mode needs the API: the health gate reads Istio's webhook
	// configs and istiod endpoints before writing any revision.
	kube, err := cmdutil.NewKubeClients(cfg.kubeconfig, cfg.kubeContext)
	if err != nil {
		return err
	}
	checks := map[string]webhook.Check{
		"policy-source": startPolicySource(ctx, cfg, store, kube, log),
	}
	certSrc, err := newCertSource(ctx, cfg.certs, cfg.namespace, kube, reg, log)
	if err != nil {
		return err
	}
	checks["serving-certificate"] = certSrc.Ready
	cluster, err := startClusterState(ctx, cfg.cluster, kube, cfg.certs.webhookConfigName, metrics, log)
	if err != nil {
		return err
	}
	maps.Copy(checks, cluster.checks)
	namespaces, leaderStopped, err := startNamespaces(ctx, kube, cfg.namespace, store, cluster.istio.Current, cluster.pods, cfg.migrationQPS, cfg.prometheusAllowed, reg, log)
	if err != nil {
		return err
	}
	defer leaderStopped()
	checks["namespaces"] = namespaces.Ready
	reg.MustRegister(webhook.NewPodCollector(webhook.PodCollectorOptions{Pods: cluster.pods, Istio: cluster.istio, Store: store}))
	var validator *webhook.PolicyValidator
	if cfg.policyFile == "" {
		validator = &webhook.PolicyValidator{Namespace: cfg.namespace, Name: cfg.policyConfigMap,
			Revisions: istioRevisions(cluster.istio.Current), PrometheusAllowed: cfg.prometheusAllowed,
			Restarts: &restartEstimator{pods: cluster.pods, namespaces: namespaces, istio: cluster.istio.Current,
				ownNamespace: cfg.namespace},
			WarnRestartShare: cfg.warnRestartShare, Overlay: func() *inforce.Overlay {
				if s := store.Load(); s != nil {
					return s.Rollout
				}
				return nil
			}}
	}

	admitter := webhook.NewAdmitter(webhook.AdmitterConfig{
		Store:        store,
		Metrics:      metrics,
		Log:          log,
		Draw:         rand.Uint64,
		OwnNamespace: cfg.namespace,
		PolicyRef:    cfg.namespace + "/" + cfg.policyConfigMap,
		Istio:        cluster.istio,
		Pods:         cluster.pods,
		Namespaces:   namespaces,
	})
	srv := webhook.NewServer(webhook.ServerOptions{
		Host:           cfg.host,
		Port:           cfg.port,
		GetCertificate: certSrc.GetCertificate,
		HealthAddr:     cfg.healthAddr,
		// controller-runtime's own webhook metrics live in its registry.
		Gatherer:        prometheus.Gatherers{reg, crmetrics.Registry},
		PolicyValidator: validator,
	}, admitter, checks)
	log.Info("starting canary-router", zap.String("version", cmdutil.Version), zap.Int("port", cfg.port),
		zap.String("healthAddr", cfg.healthAddr), zap.String("namespace", cfg.namespace))
	return runWithCerts(ctx, certSrc, srv.Run)
}

func newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	if format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	// An error here is a condition to act on (a bad kubeconfig, a lost
	// lease), said in its message; a Go stack trace only buries it.
	zc.DisableStacktrace = true
	return zc.Build()
}
