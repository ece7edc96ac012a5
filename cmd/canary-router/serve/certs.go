package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/canary-router/canary-router/certs"
	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
)

// Certificate modes of --cert-mode.
const (
	certModeSelfManaged = "self-managed"
	certModeExternal    = "external"
)

// certConfig holds the serving-certificate flags of the serve command.
type certConfig struct {
	mode              string
	certDir           string
	serviceName       string
	clusterDomain     string
	secretName        string
	webhookConfigName string
	extraSANs         string
	certValidity      time.Duration
	caValidity        time.Duration
	checkInterval     time.Duration
	caOverlap         time.Duration
}

func (c *certConfig) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.mode, "cert-mode", certModeSelfManaged, "self-managed (CA in a Secret, caBundle patched) or external (tls.crt/tls.key from --cert-dir, e.g. cert-manager)")
	fs.StringVar(&c.certDir, "cert-dir", "/etc/canary-router/certs", "external mode: directory with tls.crt and tls.key (and optionally ca.crt); reloaded on change")
	fs.StringVar(&c.serviceName, "service-name", "canary-router", "self-managed mode: the router's Service, named in the serving certificate")
	fs.StringVar(&c.clusterDomain, "cluster-domain", "cluster.local", "self-managed mode: cluster DNS domain for <service>.<namespace>.svc.<domain>")
	fs.StringVar(&c.secretName, "ca-secret-name", "canary-router-ca", "self-managed mode: Secret in --namespace holding the CA")
	fs.StringVar(&c.webhookConfigName, "webhook-config-name", "canary-router", "self-managed mode: name of the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept current")
	fs.StringVar(&c.extraSANs, "cert-extra-sans", "", "self-managed mode: comma-separated extra DNS names or IP addresses for the serving certificate")
	fs.DurationVar(&c.certValidity, "cert-validity", 7*24*time.Hour, "self-managed mode: lifetime of a serving certificate (renewed at two thirds)")
	fs.DurationVar(&c.caValidity, "ca-validity", 365*24*time.Hour, "self-managed mode: lifetime of a CA (rolled over from two thirds)")
	fs.DurationVar(&c.checkInterval, "cert-check-interval", time.Minute, "how often certificates are checked without a watch event (external mode: file poll interval)")
	fs.DurationVar(&c.caOverlap, "ca-overlap", 10*time.Minute, "self-managed mode: how long each CA rollover step lasts, so every replica and apiserver sees it (see docs/certificates.md)")
}

// validate returns every problem with the certificate flags.
func (c *certConfig) validate() []error {
	var errs []error
	if c.checkInterval <= 0 {
		errs = append(errs, fmt.Errorf("--cert-check-interval %s: must be positive", c.checkInterval))
	}
	switch c.mode {
	case certModeExternal:
		if c.certDir == "" {
			errs = append(errs, errors.New("--cert-dir: required with --cert-mode=external"))
		}
		return errs
	case certModeSelfManaged:
	default:
		return append(errs, fmt.Errorf("--cert-mode %q: must be %s or %s", c.mode, certModeSelfManaged, certModeExternal))
	}
	for flagName, v := range map[string]string{"--service-name": c.serviceName, "--cluster-domain": c.clusterDomain,
		"--ca-secret-name": c.secretName, "--webhook-config-name": c.webhookConfigName} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required with --cert-mode=self-managed", flagName))
		}
	}
	if c.certValidity <= 0 || c.caValidity <= 0 || c.caOverlap <= 0 {
		return append(errs, errors.New("--cert-validity, --ca-validity and --ca-overlap must be positive"))
	}
	// The last third of a serving certificate's life is its renewal
	// window; several checks must fall inside it.
	if c.checkInterval > c.certValidity/6 {
		errs = append(errs, fmt.Errorf("--cert-check-interval %s: must be at most a sixth of --cert-validity %s", c.checkInterval, c.certValidity))
	}
	// A replica whose watch is broken still notices a rollover step at its
	// next check, which must come within the step.
	if c.caOverlap < 2*c.checkInterval {
		errs = append(errs, fmt.Errorf("--ca-overlap %s: must be at least twice --cert-check-interval %s", c.caOverlap, c.checkInterval))
	}
	// Stage, promote and retire must all happen in the old CA's last third.
	if 2*c.caOverlap >= c.caValidity/3 {
		errs = append(errs, fmt.Errorf("--ca-overlap %s: twice it must be less than a third of --ca-validity %s", c.caOverlap, c.caValidity))
	}
	for _, san := range c.sans() {
		if san == "" {
			errs = append(errs, fmt.Errorf("--cert-extra-sans %q: empty entry", c.extraSANs))
		}
	}
	return errs
}

func (c *certConfig) sans() []string {
	if c.extraSANs == "" {
		return nil
	}
	out := strings.Split(c.extraSANs, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
		if ip := net.ParseIP(out[i]); ip != nil {
			out[i] = ip.String()
		}
	}
	return out
}

// newCertSource builds the certificate source of the chosen mode. In
// self-managed mode it first asks the API server whether the router may do
// everything it will need, so missing RBAC stops the start with one message
// listing each missing verb and object.
func newCertSource(ctx context.Context, c certConfig, namespace string, kube *cmdutil.KubeClients, reg prometheus.Registerer, log *zap.Logger) (certs.Source, error) {
	metrics := certs.NewMetrics(reg)
	if c.mode == certModeExternal {
		return certs.NewExternal(c.certDir, c.checkInterval, nil, log.Named("certs"), metrics), nil
	}
	client := kube.Client
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := certs.CheckPermissions(pctx, client, certs.RequiredPermissions(namespace, c.secretName, c.webhookConfigName)); err != nil {
		return nil, err
	}
	return certs.NewSelfManaged(certs.Options{
		Client:            client,
		Namespace:         namespace,
		SecretName:        c.secretName,
		ServiceName:       c.serviceName,
		ClusterDomain:     c.clusterDomain,
		ExtraSANs:         c.sans(),
		WebhookConfigName: c.webhookConfigName,
		CertValidity:      c.certValidity,
		CAValidity:        c.caValidity,
		CheckInterval:     c.checkInterval,
		CAOverlap:         c.caOverlap,
		Log:               log.Named("certs"),
		Metrics:           metrics,
	})
}

// runWithCerts runs src beside serve and stops both when either fails, so
// a certificate source that cannot work (permissions revoked at its first
// pass) ends the process instead of leaving a server that never gets ready.
func runWithCerts(ctx context.Context, src certs.Source, serve func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	certErr := make(chan error, 1)
	go func() {
		err := src.Run(ctx)
		if err != nil {
			cancel()
		}
		certErr <- err
	}()
	err := serve(ctx)
	cancel()
	if cerr := <-certErr; cerr != nil {
		return fmt.Errorf("serving certificate: %w", cerr)
	}
	return err
}
