package certs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the cert label: bounded to these two.
const (
	certServing = "serving"
	certCA      = "ca"
)

// Metrics records the certificates' state on an injected registry. A nil
// *Metrics records nothing, so tests that do not look at metrics can skip
// it.
type Metrics struct {
	expiry     *prometheus.GaugeVec
	rotations  *prometheus.CounterVec
	patches    prometheus.Counter
	syncErrors prometheus.Counter
}

// NewMetrics registers the certificate metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		// A timestamp rather than "seconds left": it does not change
		// between scrapes, and an alert is `... - time() < 7*86400`.
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canary_router_cert_expiry_timestamp_seconds",
			Help: "Unix time when the certificate this replica uses expires: cert=serving is the certificate it serves, cert=ca the CA that signs it (self-managed mode, or ca.crt in external mode). Absent until known.",
		}, []string{"cert"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_cert_rotations_total",
			Help: "Certificate changes this replica made or loaded after its first: cert=serving counts new serving certificates, cert=ca counts changes of the CA its serving certificate comes from.",
		}, []string{"cert"}),
		patches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canary_router_cabundle_patches_total",
			Help: "Patches of caBundle into the router's own webhook configurations (self-managed mode); a patch is made only when the bytes differ.",
		}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canary_router_cert_sync_errors_total",
			Help: "Failed passes of the self-managed certificate check (Secret or webhook configuration calls); the next pass retries.",
		}),
	}
	reg.MustRegister(m.expiry, m.rotations, m.patches, m.syncErrors)
	for _, c := range []string{certServing, certCA} {
		m.rotations.WithLabelValues(c)
	}
	return m
}

func (m *Metrics) setExpiry(cert string, t time.Time) {
	if m != nil {
		m.expiry.WithLabelValues(cert).Set(float64(t.Unix()))
	}
}

func (m *Metrics) rotated(cert string) {
	if m != nil {
		m.rotations.WithLabelValues(cert).Inc()
	}
}

func (m *Metrics) patched(n int) {
	if m != nil {
		m.patches.Add(float64(n))
	}
}

func (m *Metrics) syncFailed() {
	if m != nil {
		m.syncErrors.Inc()
	}
}
