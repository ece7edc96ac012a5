package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// Metrics records what the router decides. Every label value is bounded:
// resource is pods or namespaces, revision is a policy target or empty,
// reason is one of the policy.Reason constants.
type Metrics struct {
	decisions          *prometheus.CounterVec
	latency            *prometheus.HistogramVec
	rejected           *prometheus.CounterVec
	policyGeneration   prometheus.Gauge
	policyValid        prometheus.Gauge
	policyReloadTime   prometheus.Gauge
	policyReloadErrors prometheus.Counter
	targetShare        *prometheus.GaugeVec
	routing            routingMetrics
	probe              probeMetrics
}

// allReasons lists every reason so their series exist before the first
// decision: a rate() over a series that appears late misses its first
// increments.
var allReasons = []policy.Reason{
	policy.ReasonPolicy, policy.ReasonSticky, policy.ReasonBalanced, policy.ReasonPinned,
	policy.ReasonOptedOut, policy.ReasonExcluded, policy.ReasonUnmanaged, policy.ReasonFallback,
}

// NewMetrics registers the router's metrics on reg.
func NewMetrics(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_decisions_total",
			Help: "Admission decisions by resource, chosen revision (empty when the object was left alone) and reason. Dry-run requests are not counted.",
		}, []string{"resource", "revision", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "canary_router_admission_duration_seconds",
			Help:    "Time to handle one admission request, from decoded body to encoded response.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5},
		}, []string{"resource"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_admission_rejected_total",
			Help: "Admission requests refused, by resource and cause (bad_request, no_policy, internal, timeout).",
		}, []string{"resource", "cause"}),
		policyGeneration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canary_router_policy_generation",
			Help: "Generation of the policy in force in this process (counts successful applies).",
		}),
		policyValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canary_router_policy_valid",
			Help: "1 when the last policy document read was valid, 0 when it was rejected (the previous policy stays in force).",
		}),
		policyReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canary_router_policy_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful policy apply.",
		}),
		policyReloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canary_router_policy_reload_errors_total",
			Help: "Policy documents rejected as invalid or unreadable.",
		}),
		targetShare: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canary_router_target_share",
			Help: "Share (0-1) of routing units the policy in force sends to each revision.",
		}, []string{"revision"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "canary_router_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(m.decisions, m.latency, m.rejected, m.policyGeneration, m.policyValid,
		m.policyReloadTime, m.policyReloadErrors, m.targetShare, build)
	m.registerRouting(reg)
	m.registerProbe(reg)
	for _, res := range []string{resourcePods, resourceNamespaces} {
		m.latency.WithLabelValues(res)
		for _, r := range allReasons {
			m.decisions.WithLabelValues(res, "", string(r))
		}
		for _, c := range []string{causeBadRequest, causeNoPolicy, causeInternal, causeTimeout} {
			m.rejected.WithLabelValues(res, c)
		}
	}
	return m
}

const (
	causeBadRequest = "bad_request"
	causeNoPolicy   = "no_policy"
	causeInternal   = "internal"
	// causeTimeout: no answer by the admission deadline (deadline.go).
	causeTimeout = "timeout"
)

// PolicyApplied records a newly applied policy.
func (m *Metrics) PolicyApplied(s *inforce.Snapshot) {
	m.policyGeneration.Set(float64(s.Generation))
	m.policyValid.Set(1)
	m.policyReloadTime.Set(float64(s.Applied.UnixNano()) / 1e9)
	m.targetShare.Reset()
	m.routingPolicyApplied(s)
	for _, t := range s.Policy.Targets {
		m.targetShare.WithLabelValues(t.Revision).Set(t.Weight / 100)
		for _, r := range []policy.Reason{policy.ReasonPolicy, policy.ReasonSticky} {
			m.decisions.WithLabelValues(resourcePods, t.Revision, string(r))
			m.decisions.WithLabelValues(resourceNamespaces, t.Revision, string(r))
		}
	}
}

// PolicyRejected records a policy document that was not applied.
func (m *Metrics) PolicyRejected(error) {
	m.policyValid.Set(0)
	m.policyReloadErrors.Inc()
}

func (m *Metrics) decided(resource, revision string, reason policy.Reason) {
	m.decisions.WithLabelValues(resource, revision, string(reason)).Inc()
}

func (m *Metrics) observe(resource string, start time.Time) {
	m.latency.WithLabelValues(resource).Observe(time.Since(start).Seconds())
}

func (m *Metrics) reject(resource, cause string) {
	m.rejected.WithLabelValues(resource, cause).Inc()
}
