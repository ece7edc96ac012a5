package policy

import "encoding/json"

// RepairNamespace is the namespace reconciler's decision: what the router
// does to a namespace it finds in the cluster, rather than one it admits.
// live reports whether the namespace's current istio.io/rev answers (a
// live revision or tag with a ready istiod), whatever the policy lists.
//
// Three cases, in order:
//   - the webhook missed the namespace (created or labelled while the
//     router was down, or opted in by a label it already carried): the
//     same decision as at admission (DecideNamespace);
//   - namespace granularity, the router chose the namespace's revision and
//     that revision no longer answers: route afresh around it, so new pods
//     are injected rather than refused by a dead istiod's webhook;
//   - namespace granularity, the router chose the revision by fallback and
//     the policy's own choice is available again: move back to it.
//
// A revision the operator pinned, or one the router chose that is live but
// no longer the policy's choice (the weights changed), is left alone: the
// router never moves a healthy namespace on its own.
func (p *Policy) RepairNamespace(s NamespaceSubject, live bool) NamespaceDecision {
	if d := p.DecideNamespace(s); d.Action != NamespaceNone || d.Refuse || d.NoTarget {
		return d
	}
	rev, ok := s.Labels[LabelIstioRev]
	if p.Granularity != GranularityNamespace || !ok || rev == "" || s.Labels[LabelIstioInjection] != "" {
		return NamespaceDecision{Reason: ReasonUnmanaged}
	}
	if _, out := p.scope(s.Name); out {
		return NamespaceDecision{Reason: ReasonUnmanaged}
	}
	decided, reason := decision(s.Annotations)
	if decided != rev {
		return NamespaceDecision{Reason: ReasonPinned}
	}
	if !live {
		d := p.routeNamespace(s, false)
		if d.Action == NamespaceRoute && d.Revision != rev {
			d.Warnings = append(d.Warnings, "canary-router moved the namespace from istio.io/rev="+rev+", which no longer answers, to istio.io/rev="+d.Revision)
			return d
		}
		return NamespaceDecision{Reason: ReasonSticky}
	}
	if reason == ReasonFallback {
		choice, preferred := p.pickKey("namespace/"+s.Name, s.Down)
		if choice >= 0 && choice == preferred && p.Targets[choice].Revision != rev {
			return NamespaceDecision{Action: NamespaceRoute, Revision: p.Targets[choice].Revision, Reason: ReasonSticky,
				Warnings: []string{"canary-router moved the namespace back from fallback revision " + rev + " to " + p.Targets[choice].Revision + ", the policy's choice, which is available again"}}
		}
	}
	return NamespaceDecision{Reason: ReasonSticky}
}

// decision returns the revision and reason recorded in the decision
// annotation, "" when there is none or it does not parse.
func decision(annotations map[string]string) (string, Reason) {
	raw, ok := annotations[AnnotationDecision]
	if !ok {
		return "", ""
	}
	var d struct {
		Revision string `json:"revision"`
		Reason   Reason `json:"reason"`
	}
	if json.Unmarshal([]byte(raw), &d) != nil {
		return "", ""
	}
	return d.Revision, d.Reason
}
