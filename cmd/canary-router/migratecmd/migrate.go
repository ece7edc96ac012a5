package migratecmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
)

// Options holds the flags of canary-router migrate.
type Options struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	istioNamespace          string
	batchSize               int
	interval, timeout       time.Duration
	qps                     float64
	output                  string
	apply                   bool
	// flags tells a flag given from one left at its default.
	flags *pflag.FlagSet
	// restConfig is the operator's client configuration, for the dynamic
	// client Argo Rollouts need.
	restConfig *rest.Config
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	c.flags = fs
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl)")
	fs.StringVar(&c.kubeContext, "context", "", "kubeconfig context (default: the current context)")
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "the router's namespace: policy ConfigMap and status object")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	fs.StringVar(&c.istioNamespace, "istio-namespace", "istio-system", "namespace of the istiod Services whose EndpointSlices say whether a revision is healthy")
	fs.IntVar(&c.batchSize, "batch-size", 0, "most workloads rolling at once (default: the policy's migration.batchSize, else 5)")
	fs.DurationVar(&c.interval, "interval", 0, "wait between batches (default: the policy's migration.interval, else 30s)")
	fs.DurationVar(&c.timeout, "readiness-timeout", 0, "how long a batch may take before the migration pauses (default: the policy's, else 5m)")
	fs.Float64Var(&c.qps, "qps", 5, "most restarts and relabels written per second")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputText, cmdutil.OutputJSON, cmdutil.OutputYAML)
	fs.BoolVar(&c.apply, "apply", false, "carry the plan out from this machine, batch by batch, until done or paused")
}

func (c *Options) Check(args []string) error {
	switch {
	case len(args) > 0:
		return fmt.Errorf("unexpected argument %q (subcommands: pause, resume, status)", args[0])
	case c.batchSize < 0 || c.qps <= 0 || c.interval < 0 || c.timeout < 0:
		return errors.New("--batch-size, --qps, --interval and --readiness-timeout must not be negative")
	}
	return nil
}

// settings are the flags over the policy's migration block over the
// defaults.
func (c *Options) settings(p *policy.Policy) migrate.Settings {
	m := policy.DefaultMigration()
	if p.Migration != nil {
		m = *p.Migration
	}
	s := migrate.SettingsOf(m)
	if c.batchSize > 0 {
		s.BatchSize = c.batchSize
	}
	if c.flags != nil && c.flags.Changed("interval") {
		s.Interval = c.interval
	}
	if c.timeout > 0 {
		s.ReadinessTimeout = c.timeout
	}
	return s
}

// run prints the plan and, with --apply, carries it out.
func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "migrate")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c.restConfig = kube.Config
	if err := c.runWith(ctx, kube.Client, meta, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "canary-router migrate:", err)
		return 1
	}
	return 0
}

func (c *Options) runWith(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, stdout, stderr io.Writer) error {
	readCtx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	snap, err := readPolicySnapshot(readCtx, client, c.namespace, c.configMap)
	if err != nil {
		return err
	}
	state, warn, err := istio.Read(readCtx, client, c.istioNamespace, cmdutil.WebhookConfigName)
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintln(stderr, "warning:", warn)
	}
	in, err := readMigrationInput(readCtx, client, meta, c.rollouts(client), snap, state)
	if err != nil {
		return err
	}
	set := c.settings(snap.Policy)
	plan := migrate.NewPlan(in, set.BatchSize)
	if c.output == cmdutil.OutputJSON || c.output == cmdutil.OutputYAML {
		if err := cmdutil.WriteDocument(stdout, c.output, plan); err != nil {
			return err
		}
	} else {
		report.WritePlanText(stdout, c.namespace+"/"+c.configMap, plan, string(snap.Policy.Granularity))
	}
	if !c.apply {
		if len(plan.Moves) > 0 || len(plan.Namespaces) > 0 {
			fmt.Fprintln(stderr, "\nDry run: nothing changed. Run again with --apply to carry the plan out.")
		}
		return nil
	}
	if m := snap.Policy.Migration; m != nil && m.Enabled {
		return errors.New("the router migrates in the cluster (the policy's migration block is enabled); watch it with canary-router migrate status, control it with migrate pause|resume")
	}
	return c.applyPlan(ctx, client, meta, snap, set, state, stdout)
}

// applyPlan runs the migration controller's passes from this machine
// until nothing drifted is left (nil) or the migration pauses (an error:
// the status object keeps the reason, and the migration stays paused until
// canary-router migrate resume). The policy and Istio are read again on
// every pass, as the leader sees them change.
func (c *Options) applyPlan(ctx context.Context, client kubernetes.Interface, meta metadata.Interface,
	snap *inforce.Snapshot, set migrate.Settings, state *istio.State, stdout io.Writer) error {
	var curSnap atomic.Pointer[inforce.Snapshot]
	var curState atomic.Pointer[istio.State]
	curSnap.Store(snap)
	curState.Store(state)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	pods, workloads, namespaces := migrate.NewPodInformer(meta), migrate.NewWorkloadInformers(client), nsview.New(meta)
	dyn := c.rollouts(client)
	if dyn != nil {
		workloads.WithRollouts(dyn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go pods.Run(ctx)
	go namespaces.Run(ctx)
	workloads.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, workloads.HasSynced, namespaces.HasSynced) {
		return ctx.Err()
	}
	ctl := migrate.New(migrate.Options{
		Policy: curSnap.Load, Istio: curState.Load, Namespaces: migrate.NamespacesOf(namespaces, ""),
		Workloads: workloads, Pods: pods, Settings: &set,
		Writer: &migrate.KubeWriter{Client: client, Namespace: c.namespace,
			Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "canary-router-migrate"}),
			Limiter:  flowcontrol.NewTokenBucketRateLimiter(float32(c.qps), max(1, int(2*c.qps))), Dynamic: dyn},
	})
	lastBatch := 0
	for {
		r, err := ctl.Pass(ctx)
		if err != nil {
			return err
		}
		st := r.Status
		if b := st.Batch; b != nil && b.Index != lastBatch {
			lastBatch = b.Index
			fmt.Fprintf(stdout, "%s batch %d: restarting %d workloads\n", time.Now().Format("15:04:05"), b.Index, len(b.Workloads))
		}
		switch st.Phase {
		case migrate.PhaseComplete:
			fmt.Fprintf(stdout, "%s done: %d workloads restarted in %d batches; %d skipped, %d reported\n",
				time.Now().Format("15:04:05"), st.Restarted, st.Batches, st.Skipped, st.Reported)
			return nil
		case migrate.PhasePaused:
			reason := r.Pause
			if reason == "" {
				reason = "paused (canary-router migrate resume)"
			}
			return errors.New("migration paused: " + reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(r.RequeueAfter, time.Second)):
		}
		readCtx, cancelRead := context.WithTimeout(ctx, cmdutil.OpTimeout)
		if s, err := readPolicySnapshot(readCtx, client, c.namespace, c.configMap); err == nil {
			curSnap.Store(s)
		}
		if s, _, err := istio.Read(readCtx, client, c.istioNamespace, cmdutil.WebhookConfigName); err == nil {
			curState.Store(s)
		}
		cancelRead()
	}
}

// rollouts is the dynamic client for Argo Rollouts, nil when they are not
// installed (or in tests, without a client configuration).
func (c *Options) rollouts(client kubernetes.Interface) dynamic.Interface {
	if c.restConfig == nil {
		return nil
	}
	return migrate.RolloutsClient(client.Discovery(), c.restConfig, zap.NewNop())
}
