package policy

// MaxSize is the largest policy document accepted, in bytes. Real policies
// are a few hundred bytes; the cap bounds the work a bad ConfigMap can cause.
const MaxSize = 64 << 10

// Granularity is the unit that gets one revision.
type Granularity string

// Granularities a policy may name.
const (
	// GranularityNamespace routes whole namespaces through their istio.io/rev label.
	GranularityNamespace Granularity = "namespace"
	// GranularityWorkload routes each workload (Deployment, StatefulSet, ...) as a unit.
	GranularityWorkload Granularity = "workload"
	// GranularityPod routes each pod on its own.
	GranularityPod Granularity = "pod"
)

// GatewayMode says what the router does with Istio gateway pods.
type GatewayMode string

// Gateway modes a policy may name.
const (
	// GatewaysExclude keeps gateway pods on one revision, out of the
	// split: Policy.GatewayRevision, else the revision that injects them
	// without the router (Policy.GatewayPlacement). It is the default
	// because moving ingress to a canary deserves a deliberate choice.
	GatewaysExclude GatewayMode = "exclude"
	// GatewaysRoute routes gateway pods like any other pod.
	GatewaysRoute GatewayMode = "route"
)

// Target is one Istio revision (or revision tag) and its share in percent.
type Target struct {
	Revision string  `json:"revision"`
	Weight   float64 `json:"weight"`
}

// Namespaces scopes routing beyond the opt-in labels.
type Namespaces struct {
	Exclude []string `json:"exclude,omitempty"`
}

// Policy is a parsed and validated policy. Build it only with Parse: it
// carries precomputed unexported fields (the exclude set).
type Policy struct {
	Granularity Granularity `json:"granularity"`
	Seed        string      `json:"seed,omitempty"`
	Targets     []Target    `json:"targets"`
	Namespaces  Namespaces  `json:"namespaces,omitempty"`
	Gateways    GatewayMode `json:"gateways,omitempty"`
	// GatewayRevision is the revision (or tag) excluded gateway pods stay
	// on; "" lets the router choose (Policy.GatewayPlacement).
	GatewayRevision string `json:"gatewayRevision,omitempty"`
	// Migration, when set, lets the leader restart drifted workloads in
	// batches (controller/migrate); nil leaves running pods alone.
	Migration *Migration `json:"migration,omitempty"`
	// Rollout, when set, is a plan the leader walks step by step
	// (controller/rollout); its weights in force override Targets'.
	Rollout *Rollout `json:"rollout,omitempty"`
	// NamespaceFailover says when, in namespace granularity, namespaces
	// move off a revision whose injector does not answer; nil takes the
	// defaults (Policy.Failover).
	NamespaceFailover *NamespaceFailover `json:"namespaceFailover,omitempty"`

	// excluded is Namespaces.Exclude as a set, looked up on every admission.
	excluded map[string]struct{}
}

// Reason explains a decision in annotations, admission warnings and
// metrics; the set is closed so metric labels stay bounded.
type Reason string

// Reasons a decision may carry.
const (
	// ReasonPolicy: chosen per pod by the policy weights from a random draw.
	ReasonPolicy Reason = "policy"
	// ReasonSticky: chosen by the seeded hash of a stable unit (namespace or
	// workload); also a namespace the router routed earlier.
	ReasonSticky Reason = "sticky"
	// ReasonBalanced: chosen per pod from the live pod counts of the pod's
	// controller, so the controller's pods track the weights.
	ReasonBalanced Reason = "balanced"
	// ReasonPinned: the object already names istio.io/rev.
	ReasonPinned Reason = "pinned"
	// ReasonOptedOut: sidecar.istio.io/inject=false or istio-injection=disabled.
	ReasonOptedOut Reason = "opted-out"
	// ReasonExcluded: the namespace is in namespaces.exclude, or a gateway
	// pod meets gateways: exclude.
	ReasonExcluded Reason = "excluded"
	// ReasonUnmanaged: not the router's business (system namespace, another
	// granularity, no opt-in).
	ReasonUnmanaged Reason = "unmanaged"
	// ReasonFallback: the target the policy chose is missing or has no ready
	// istiod, so another target stands in for it; also a refusal when no
	// target is available.
	ReasonFallback Reason = "fallback"
)

// scope says whether a namespace is outside the router's reach; the reason
// is ReasonUnmanaged or ReasonExcluded when it is.
func (p *Policy) scope(namespace string) (Reason, bool) {
	if systemNamespace(namespace) {
		return ReasonUnmanaged, true
	}
	if _, ok := p.excluded[namespace]; ok {
		return ReasonExcluded, true
	}
	return "", false
}
