package policy

import (
	"encoding/json"
	"strconv"
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
}

// NamespaceDecision is the router's verdict on a namespace.
type NamespaceDecision struct {
	Action   NamespaceAction
	Revision string
	Reason   Reason
	Warnings []string
}

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
			rev := p.Pick("namespace/" + s.Name)
			return NamespaceDecision{Action: NamespaceRoute, Revision: rev, Reason: ReasonSticky, Warnings: []string{
				"canary-router replaced istio-injection=enabled with istio.io/rev=" + rev +
					" (" + p.share(rev) + "% of namespaces go to " + rev + ")",
			}}
		}
		return NamespaceDecision{Action: NamespaceOptIn, Reason: ReasonPolicy, Warnings: []string{
			"canary-router replaced istio-injection=enabled with " + LabelOptIn + "=" + OptInEnabled +
				": Istio's label would override the revision canary-router chooses for each pod",
		}}
	}
	if s.Labels[LabelOptIn] == OptInEnabled {
		if p.Granularity == GranularityNamespace {
			return NamespaceDecision{Action: NamespaceRoute, Revision: p.Pick("namespace/" + s.Name), Reason: ReasonSticky}
		}
		return NamespaceDecision{Reason: ReasonPolicy}
	}
	return NamespaceDecision{Reason: ReasonUnmanaged}
}

// decideRevLabelled handles a namespace that already names istio.io/rev:
// either the router chose it earlier (sticky: a routed namespace must not
// flip when weights change) or someone pinned it.
func (p *Policy) decideRevLabelled(s NamespaceSubject, rev string, injectionEnabled bool) NamespaceDecision {
	if p.Granularity == GranularityNamespace && rev != "" && decidedRevision(s.Annotations) == rev {
		if injectionEnabled {
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
	raw, ok := annotations[AnnotationDecision]
	if !ok {
		return ""
	}
	var d struct {
		Revision string `json:"revision"`
	}
	if json.Unmarshal([]byte(raw), &d) != nil {
		return ""
	}
	return d.Revision
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
