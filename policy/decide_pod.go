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
	// Down marks the targets, indexed like Policy.Targets, that must not be
	// written now: not a live revision or tag, or no ready istiod. nil
	// means every target is available.
	Down []bool
	// GatewayRevision is where an excluded gateway pod stays
	// (Policy.GatewayPlacement); "" leaves it unlabelled.
	GatewayRevision string
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
	// Avoided is the target the policy chose first but that is down; the
	// pod went to Revision instead (reason fallback).
	Avoided string
	// NoTarget: the pod needs routing but every target is down. The caller
	// must refuse it: admitted, it would run without a sidecar.
	NoTarget bool
	// Balance asks the caller to place the pod by the live pod counts of
	// its controller (Policy.Balance), which tracks the split far more
	// closely than a draw. Revision and Reason hold the draw's choice, for
	// when the caller has no live view.
	Balance bool
	// Gateway: the pod is an Istio gateway (injection template gateway),
	// excluded (kept on PodSubject.GatewayRevision) or routed as the
	// policy's gateways mode says.
	Gateway bool
}

// unitPod is the Unit of a pod routed on its own.
const unitPod = "Pod"

// emptyRevWarning explains a pinned pod that no injector will ever match.
const emptyRevWarning = "pod label istio.io/rev is empty: no Istio revision matches it, so the pod will run without a sidecar"

// DecidePod chooses the revision for a pod, or says why it is left alone.
// It is on the admission hot path: the only allocation is the Unit string
// of a workload.
//
// In pod granularity a pod with a controller is left to the caller to
// balance (Balance); in workload granularity the whole workload sticks to
// one revision; a pod with no stable unit gets a fresh draw.
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
	gateway := isGateway(s.Annotations[AnnotationInjectTemplates])
	if gateway && p.Gateways != GatewaysRoute {
		return PodDecision{Revision: s.GatewayRevision, Reason: ReasonExcluded, Gateway: true}
	}
	if p.Granularity == GranularityWorkload {
		if kind, name, ok := WorkloadOf(s); ok {
			unit := kind + "/" + name
			choice, preferred := p.pickUnit(s.Namespace, unit, s.Down)
			d := p.podDecision(choice, preferred, ReasonSticky, unit)
			d.Gateway = gateway
			return d
		}
	}
	choice, preferred := p.drawIndex(s.Draw, s.Down)
	d := p.podDecision(choice, preferred, ReasonPolicy, unitPod)
	d.Balance = p.Granularity == GranularityPod && !d.NoTarget &&
		s.Owner != nil && s.Owner.Kind != "" && s.Owner.Name != ""
	d.Gateway = gateway
	return d
}

// podDecision turns a (choice, preferred) pair of target indices into a
// decision: reason when the preferred target is available, fallback when
// another target stands in for it, a refusal when none can.
func (p *Policy) podDecision(choice, preferred int, reason Reason, unit string) PodDecision {
	switch {
	case choice < 0:
		return PodDecision{Reason: ReasonFallback, Unit: unit, NoTarget: true}
	case choice != preferred:
		return PodDecision{Revision: p.Targets[choice].Revision, Reason: ReasonFallback, Unit: unit,
			Avoided: p.Targets[preferred].Revision}
	}
	return PodDecision{Revision: p.Targets[choice].Revision, Reason: reason, Unit: unit}
}

// BalancedDecision is the decision for a pod placed by Balance: choice and
// preferred are its results.
func (p *Policy) BalancedDecision(choice, preferred int) PodDecision {
	return p.podDecision(choice, preferred, ReasonBalanced, unitPod)
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
