package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// causeNoTarget labels admissions refused because no target is available.
const causeNoTarget = "no_target"

// Gateway actions, the values of the gateway counter's action label.
const (
	gatewayExcluded = "excluded"
	gatewayRouted   = "routed"
)

// allCauses lists every istio.Cause, so fallback series exist per target
// from the moment a policy is applied.
var allCauses = []istio.Cause{istio.CauseNotFound, istio.CauseNotReady, istio.CauseNotAnswering, istio.CauseUnknown}

// routingMetrics are the health-gate, gateway and webhook-order metrics.
// Label values stay bounded: revision is a policy target, cause an
// istio.Cause, action one of two constants.
type routingMetrics struct {
	fallbacks       *prometheus.CounterVec
	gateways        *prometheus.CounterVec
	orderViolations prometheus.Gauge
}

// registerRouting creates and registers the routing metrics on reg.
func (m *Metrics) registerRouting(reg prometheus.Registerer) {
	m.routing = routingMetrics{
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_fallbacks_total",
			Help: "Objects routed to another target, or refused, because the target the policy chose was unavailable; by that target (revision) and cause (not-found, not-ready, not-answering, unknown). Dry runs are not counted.",
		}, []string{"revision", "cause"}),
		gateways: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_gateway_pods_total",
			Help: "Istio gateway pods (injection template gateway) by action: excluded (left to Istio, gateways: exclude) or routed (gateways: route). Dry runs are not counted.",
		}, []string{"action"}),
		orderViolations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canary_router_webhook_order_violations",
			Help: "Istio injector MutatingWebhookConfigurations whose names sort before the router's own: the API server calls them first, so they never see the revision label the router writes. Should be 0.",
		}),
	}
	reg.MustRegister(m.routing.fallbacks, m.routing.gateways, m.routing.orderViolations)
	m.routing.gateways.WithLabelValues(gatewayExcluded)
	m.routing.gateways.WithLabelValues(gatewayRouted)
	for _, res := range []string{resourcePods, resourceNamespaces} {
		m.rejected.WithLabelValues(res, causeNoTarget)
	}
}

// routingPolicyApplied pre-creates the series a new policy's targets can
// reach through balancing and fallback.
func (m *Metrics) routingPolicyApplied(s *inforce.Snapshot) {
	for _, t := range s.Policy.Targets {
		for _, c := range allCauses {
			m.routing.fallbacks.WithLabelValues(t.Revision, string(c))
		}
		m.decisions.WithLabelValues(resourcePods, t.Revision, string(policy.ReasonBalanced))
		m.decisions.WithLabelValues(resourcePods, t.Revision, string(policy.ReasonFallback))
		m.decisions.WithLabelValues(resourceNamespaces, t.Revision, string(policy.ReasonFallback))
	}
}

// SetWebhookOrderViolations records how many Istio injector configs sort
// before the router's own.
func (m *Metrics) SetWebhookOrderViolations(n int) {
	m.routing.orderViolations.Set(float64(n))
}

func (m *Metrics) fellBack(revision string, cause istio.Cause) {
	m.routing.fallbacks.WithLabelValues(revision, string(cause)).Inc()
}

func (m *Metrics) gatewayPod(action string) {
	m.routing.gateways.WithLabelValues(action).Inc()
}
