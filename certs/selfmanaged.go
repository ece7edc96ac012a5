package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Source supplies the serving certificate to the admission server.
type Source interface {
	// GetCertificate is tls.Config.GetCertificate.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Ready returns nil once a valid serving certificate is loaded.
	Ready() error
	// Run keeps the certificate current until ctx ends.
	Run(ctx context.Context) error
}

var (
	_ Source = (*SelfManaged)(nil)
	_ Source = (*External)(nil)
)

// Options configures self-managed mode.
type Options struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Namespace is the router's namespace, where the CA Secret lives and
	// whose name goes into the Service DNS names.
	Namespace string
	// SecretName is the CA Secret.
	SecretName string
	// ServiceName and ClusterDomain make the DNS names the apiserver calls:
	// <svc>, <svc>.<ns>, <svc>.<ns>.svc and <svc>.<ns>.svc.<domain>.
	ServiceName, ClusterDomain string
	// ExtraSANs are further DNS names or IP addresses for the serving
	// certificate (a loopback URL in tests, a node-port setup).
	ExtraSANs []string
	// WebhookConfigName names both the MutatingWebhookConfiguration and the
	// ValidatingWebhookConfiguration whose caBundle is kept current.
	WebhookConfigName string
	// CertValidity and CAValidity are the lifetimes of new certificates.
	CertValidity, CAValidity time.Duration
	// CheckInterval is how often the state is checked even without a watch
	// event; it bounds how late a replica with a broken watch notices.
	CheckInterval time.Duration
	// CAOverlap is how long each CA rollover step lasts (see Plan).
	CAOverlap time.Duration
	// Clock defaults to the real clock.
	Clock clock.WithTicker
	// Log must not be nil.
	Log *zap.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// SelfManaged keeps a CA in a Secret, a serving certificate from it in
// memory, and the CA bundle in the router's webhook configurations.
type SelfManaged struct {
	o       Options
	id      ServingIdentity
	secrets *secretClient
	patcher *bundlePatcher
	serving atomic.Pointer[servingState]
	// missing remembers, per webhook configuration resource, whether the
	// last pass found it, so its absence is logged once. Only the run
	// loop's passes touch it, one at a time.
	missing map[string]bool
	// trigger asks the run loop for a pass; one pending request is enough,
	// since every pass reads the whole state afresh.
	trigger chan struct{}
}

// servingState is the certificate served and the CAs trusted when it was
// loaded, swapped as one so Ready never mixes two passes.
type servingState struct {
	cert   *tls.Certificate
	signer *x509.Certificate
	roots  []*x509.Certificate
}

// NewSelfManaged checks o and returns a manager that serves nothing until
// Run has made its first pass.
func NewSelfManaged(o Options) (*SelfManaged, error) {
	var errs []error
	for name, v := range map[string]string{"Namespace": o.Namespace, "SecretName": o.SecretName, "ServiceName": o.ServiceName,
		"ClusterDomain": o.ClusterDomain, "WebhookConfigName": o.WebhookConfigName} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if o.Client == nil || o.Log == nil {
		errs = append(errs, errors.New("Client and Log are required"))
	}
	if o.CertValidity <= 0 || o.CAValidity <= 0 || o.CheckInterval <= 0 || o.CAOverlap <= 0 {
		errs = append(errs, errors.New("CertValidity, CAValidity, CheckInterval and CAOverlap must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	svc, ns := o.ServiceName, o.Namespace
	id := ServingIdentity{DNSNames: []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + o.ClusterDomain}}
	for _, san := range o.ExtraSANs {
		if ip := net.ParseIP(san); ip != nil {
			id.IPs = append(id.IPs, ip)
		} else {
			id.DNSNames = append(id.DNSNames, san)
		}
	}
	return &SelfManaged{
		o:       o,
		id:      id,
		secrets: &secretClient{client: o.Client, namespace: ns, name: o.SecretName},
		patcher: &bundlePatcher{client: o.Client, name: o.WebhookConfigName},
		missing: map[string]bool{},
		trigger: make(chan struct{}, 1),
	}, nil
}

// Identity is what the serving certificate names.
func (m *SelfManaged) Identity() ServingIdentity { return m.id }

// GetCertificate serves the in-memory certificate. Before the first one
// exists the handshake fails, which the apiserver reports as a call error;
// readiness keeps the Service from routing here until then.
func (m *SelfManaged) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := m.serving.Load()
	if s == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return s.cert, nil
}

// Ready returns nil while the serving certificate is valid now, names the
// Service and chains to a CA of the trust bundle.
func (m *SelfManaged) Ready() error {
	s := m.serving.Load()
	if s == nil {
		return errors.New("no serving certificate yet")
	}
	return CheckServing(s.cert.Leaf, s.roots, m.id, m.o.Clock.Now())
}

// Run makes a first pass, then one on every watch event for the CA Secret
// or the webhook configurations and every CheckInterval, until ctx ends. A
// permission error in the first pass is returned, so a router without the
// RBAC it needs stops at once with a message naming the verb and object;
// other first-pass errors are retried. Later errors are logged and
// counted: the certificate in memory keeps serving until it expires.
func (m *SelfManaged) Run(ctx context.Context) error {
	log := m.o.Log
	for wait := time.Second; ; wait = min(2*wait, m.o.CheckInterval) {
		err := m.reconcile(ctx)
		if err == nil {
			break
		}
		m.o.Metrics.syncFailed()
		if apierrors.IsForbidden(err) {
			return err
		}
		log.Error("first certificate pass failed; retrying", zap.Error(err), zap.Duration("retryIn", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-m.o.Clock.After(wait):
		}
	}
	stop := m.watch(ctx)
	defer stop()
	ticker := m.o.Clock.NewTicker(m.o.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		case <-m.trigger:
		}
		if err := m.reconcile(ctx); err != nil && ctx.Err() == nil {
			m.o.Metrics.syncFailed()
			log.Error("certificate pass failed; retrying on the next event or check", zap.Error(err))
		}
	}
}

// poke requests a pass without blocking.
func (m *SelfManaged) poke() {
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}
