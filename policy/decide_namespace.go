package policy

import (
	"strconv"
	"time"
)

// NamespaceAction is the change the router makes to a namespace.
type NamespaceAction int

// Namespace actions.
const (
	// NamespaceNone leaves the namespace alone.
	NamespaceNone NamespaceAction = iota
	// NamespaceRoute removes istio-injection and sets istio.io/rev=Revision
	// (namespace granularity).
	NamespaceRoute
	// NamespaceOptIn removes istio-injection and sets
	// canary-router.io/injection=enabled (workload and pod granularity).
	NamespaceOptIn
)

// NamespaceSubject is what the router knows about a namespace at CREATE or
// UPDATE admission: the labels as the request would leave them.
type NamespaceSubject struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Down marks unavailable targets, as in PodSubject.
	Down []bool
}

// NamespaceDecision is the router's verdict on a namespace.
type NamespaceDecision struct {
	Action   NamespaceAction
	Revision string
	Reason   Reason
	Warnings []string
	// Avoided is the target the seeded hash chose but that is down (reason
	// fallback), as in PodDecision.
	Avoided string
	// NoTarget: the namespace would be routed but every target is down; it
	// is left unchanged (Action none).
	NoTarget bool
	// Refuse asks the caller to deny the request: with NoTarget and no
	// istio-injection=enabled to fall back on, the namespace's pods would
	// run without a sidecar.
	Refuse bool
	// FailoverFrom, set by RepairNamespace on a move off a revision that
	// stopped answering, is recorded in AnnotationFailoverFrom.
	FailoverFrom string
	// ClearFailover asks to remove AnnotationFailoverFrom.
	ClearFailover bool
	// Retry is when RepairNamespace's answer may change by time alone.
	Retry time.Duration
}

// gitOpsAdvice ends the conversion warnings. A Namespace manifest applied
// by Argo CD, Flux or a pipeline that says istio-injection=enabled is
// converted again on every sync, and since the webhook converts dry runs
// too, `kubectl diff` never shows why; the manifest itself must change.
const gitOpsAdvice = "In Git (Argo CD, Flux, kubectl apply), declare this Namespace with the label " +
	LabelOptIn + ": \"" + OptInEnabled + "\" and without " + LabelIstioInjection + "; otherwise every sync repeats this conversion"

// DecideNamespace chooses what to do with a namespace. Istio lets a
// namespace's istio-injection=enabled win over every revision selector, so
// the router must take that label away before it can route anything.
func (p *Policy) DecideNamespace(s NamespaceSubject) NamespaceDecision {
	if r, out := p.scope(s.Name); out {
		return NamespaceDecision{Reason: r}
	}
	injection := s.Labels[LabelIstioInjection]
	if injection == "disabled" {
		return NamespaceDecision{Reason: ReasonOptedOut}
	}
	enabled := injection == "enabled"
	if rev, ok := s.Labels[LabelIstioRev]; ok {
		return p.decideRevLabelled(s, rev, enabled)
	}
	if enabled {
		if p.Granularity == GranularityNamespace {
			d := p.routeNamespace(s, true)
			if d.Action == NamespaceRoute {
				d.Warnings = []string{"canary-router replaced istio-injection=enabled with istio.io/rev=" + d.Revision +
					" (" + p.share(d.Revision) + "% of namespaces go to " + d.Revision + "). " + gitOpsAdvice}
			}
			return d
		}
		return NamespaceDecision{Action: NamespaceOptIn, Reason: ReasonPolicy, Warnings: []string{
			"canary-router replaced istio-injection=enabled with " + LabelOptIn + "=" + OptInEnabled +
				": Istio's label would override the revision canary-router chooses for each pod. " + gitOpsAdvice,
		}}
	}
	if s.Labels[LabelOptIn] == OptInEnabled {
		if p.Granularity == GranularityNamespace {
			return p.routeNamespace(s, false)
		}
		return NamespaceDecision{Reason: ReasonPolicy}
	}
	return NamespaceDecision{Reason: ReasonUnmanaged}
}

// routeNamespace picks a namespace's revision by the seeded hash, around
// unavailable targets. With none available the namespace is left as it is:
// a namespace that still says istio-injection=enabled is then injected by
// Istio's default revision, the same fail-open stance as a router that is
// down; one that only opted in to the router would get no sidecar at all,
// so the request is refused.
func (p *Policy) routeNamespace(s NamespaceSubject, injectionEnabled bool) NamespaceDecision {
	choice, preferred := p.pickKey("namespace/"+s.Name, s.Down)
	switch {
	case choice < 0:
		d := NamespaceDecision{Reason: ReasonFallback, NoTarget: true, Refuse: !injectionEnabled}
		if injectionEnabled {
			d.Warnings = []string{"canary-router left istio-injection=enabled in place: no routing target is available, so Istio's default revision injects this namespace"}
		}
		return d
	case choice != preferred:
		return NamespaceDecision{Action: NamespaceRoute, Revision: p.Targets[choice].Revision, Reason: ReasonFallback,
			Avoided: p.Targets[preferred].Revision}
	}
	return NamespaceDecision{Action: NamespaceRoute, Revision: p.Targets[choice].Revision, Reason: ReasonSticky}
}

// decideRevLabelled handles a namespace that already names istio.io/rev:
// either the router chose it earlier (sticky: a routed namespace must not
// flip when weights change) or someone pinned it.
func (p *Policy) decideRevLabelled(s NamespaceSubject, rev string, injectionEnabled bool) NamespaceDecision {
	if p.Granularity == GranularityNamespace && rev != "" && decidedRevision(s.Annotations) == rev {
		if injectionEnabled {
			if i := p.targetIndex(rev); i < 0 || isDown(s.Down, i) {
				// Keeping rev would take Istio's label away in favour of a
				// revision the policy no longer lists or that cannot inject
				// now: route afresh, as for a new namespace.
				d := p.routeNamespace(s, true)
				if d.Action == NamespaceRoute {
					d.Warnings = append(d.Warnings, "canary-router moved the namespace from istio.io/rev="+rev+
						", which is not an available target, to istio.io/rev="+d.Revision)
				}
				return d
			}
			// Typically a re-apply of a manifest that still says
			// istio-injection=enabled; left there it would win over rev.
			return NamespaceDecision{Action: NamespaceRoute, Revision: rev, Reason: ReasonSticky, Warnings: []string{
				"canary-router removed istio-injection=enabled again: the namespace stays on istio.io/rev=" + rev +
					", which canary-router chose earlier",
			}}
		}
		return NamespaceDecision{Reason: ReasonSticky}
	}
	d := NamespaceDecision{Reason: ReasonPinned}
	switch {
	case injectionEnabled:
		// Not rewritten: removing istio-injection would move the namespace
		// from the default revision to rev, a change nobody asked for.
		d.Warnings = []string{"namespace has both istio-injection=enabled and istio.io/rev=" + rev +
			": Istio lets istio-injection win, so the default revision injects; canary-router left both labels alone, remove one of them"}
	case rev == "":
		d.Warnings = []string{"namespace label istio.io/rev is empty: no Istio revision matches it, so pods here run without a sidecar"}
	}
	return d
}

// decidedRevision returns the revision recorded in the decision
// annotation, or "" when there is none or it does not parse.
func decidedRevision(annotations map[string]string) string {
	rev, _ := decision(annotations)
	return rev
}

// targetIndex returns the index of rev in the targets, or -1.
func (p *Policy) targetIndex(rev string) int {
	for i, t := range p.Targets {
		if t.Revision == rev {
			return i
		}
	}
	return -1
}

// share renders a revision's weight for messages, e.g. "12.5".
func (p *Policy) share(rev string) string {
	for _, t := range p.Targets {
		if t.Revision == rev {
			return strconv.FormatFloat(t.Weight, 'f', -1, 64)
		}
	}
	return "0"
}
