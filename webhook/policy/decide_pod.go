package policy

import "strings"

// Owner is the pod's controller ownerReference (Kind and Name), nil when none.
type Owner struct{ Kind, Name string }

// PodSubject is what the router knows about a pod at CREATE admission.
type PodSubject struct {
	Namespace    string
	Name         string // empty for generateName pods at admission time
	GenerateName string
	Labels       map[string]string
	Annotations  map[string]string
	Owner        *Owner
	// Draw is uniformly random bits supplied by the caller for per-pod
	// choices; the decision itself holds no RNG so it stays testable.
	Draw uint64
}

// PodDecision is the router's verdict on a pod.
type PodDecision struct {
	// Revision is the value to write as pod label istio.io/rev; "" leaves
	// the pod alone.
	Revision string
	Reason   Reason
	// Unit is the routing unit, e.g. "Deployment/web", or "Pod" when routed
	// per pod; "" when the pod is not routed.
	Unit     string
	Warnings []string
}

// unitPod is the Unit of a pod routed on its own.
const unitPod = "Pod"

// emptyRevWarning explains a pinned pod that no injector will ever match.
const emptyRevWarning = "pod label istio.io/rev is empty: no Istio revision matches it, so the pod will run without a sidecar"

// DecidePod chooses the revision for a pod, or says why it is left alone.
// It is on the admission hot path: the only allocation is the Unit string
// of a workload.
func (p *Policy) DecidePod(s PodSubject) PodDecision {
	if p.Granularity == GranularityNamespace {
		// The namespace label decides; a pod label would be ignored anyway.
		return PodDecision{Reason: ReasonUnmanaged}
	}
	if r, out := p.scope(s.Namespace); out {
		return PodDecision{Reason: r}
	}
	if rev, ok := s.Labels[LabelIstioRev]; ok {
		d := PodDecision{Reason: ReasonPinned}
		if rev == "" {
			d.Warnings = []string{emptyRevWarning}
		}
		return d
	}
	if s.Labels[LabelSidecarInject] == "false" || s.Annotations[LabelSidecarInject] == "false" {
		return PodDecision{Reason: ReasonOptedOut}
	}
	if p.Gateways != GatewaysRoute && isGateway(s.Annotations[AnnotationInjectTemplates]) {
		return PodDecision{Reason: ReasonExcluded}
	}
	if p.Granularity == GranularityWorkload {
		if kind, name, ok := WorkloadOf(s); ok {
			unit := kind + "/" + name
			return PodDecision{Revision: p.pickUnit(s.Namespace, unit), Reason: ReasonSticky, Unit: unit}
		}
	}
	return PodDecision{Revision: p.PickDraw(s.Draw), Reason: ReasonPolicy, Unit: unitPod}
}

// isGateway reports whether an inject.istio.io/templates value names the
// gateway template, which is how Istio marks gateway deployments.
func isGateway(templates string) bool {
	for templates != "" {
		var t string
		t, templates, _ = strings.Cut(templates, ",")
		if strings.TrimSpace(t) == "gateway" {
			return true
		}
	}
	return false
}
