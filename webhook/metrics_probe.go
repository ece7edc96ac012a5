package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/istio"
)

var _ istio.ProbeObserver = (*Metrics)(nil)

// probeMetrics are the results of the active injector check. Their only
// label is revision: an Istio revision with an injector config, a handful
// per cluster. Series of a revision that disappears are deleted.
type probeMetrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	up       *prometheus.GaugeVec
	// seen is the revisions of the previous round; only the Prober's
	// goroutine calls ObserveProbes.
	seen map[string]bool
}

func (m *Metrics) registerProbe(reg prometheus.Registerer) {
	m.probe = probeMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "canary_router_injector_probe_duration_seconds",
			Help:    "Time of one active check of a revision's injector webhook (connect, TLS, answer), failed checks included.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}, []string{"revision"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_injector_probe_failures_total",
			Help: "Active checks of a revision's injector webhook that got no answer (refused, reset, TLS failure, timeout, HTTP 5xx).",
		}, []string{"revision"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canary_router_injector_up",
			Help: "1 when the revision's injector webhook answers the active check, 0 when the router routes around it (cause not-answering).",
		}, []string{"revision"}),
		seen: map[string]bool{},
	}
	reg.MustRegister(m.probe.duration, m.probe.failures, m.probe.up)
}

// ObserveProbes records one round of active checks.
func (m *Metrics) ObserveProbes(results []istio.ProbeResult) {
	now := make(map[string]bool, len(results))
	for _, r := range results {
		now[r.Revision] = true
		m.probe.duration.WithLabelValues(r.Revision).Observe(r.Latency.Seconds())
		failures := m.probe.failures.WithLabelValues(r.Revision)
		if r.Err != nil {
			failures.Inc()
		}
		up := 1.0
		if r.Down {
			up = 0
		}
		m.probe.up.WithLabelValues(r.Revision).Set(up)
	}
	for rev := range m.probe.seen {
		if !now[rev] {
			m.probe.duration.DeleteLabelValues(rev)
			m.probe.failures.DeleteLabelValues(rev)
			m.probe.up.DeleteLabelValues(rev)
		}
	}
	m.probe.seen = now
}
