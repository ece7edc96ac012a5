package policy

import (
	"encoding/json"
	"time"
)

// NamespaceHealth is what the namespace reconciler itself has seen of the
// revisions a namespace involves. Durations are of unbroken observation
// by the caller (the leader) during its own term: a new leader, or a
// revision that answered even once in between, starts from zero.
type NamespaceHealth struct {
	// Live: the namespace's istio.io/rev answers.
	Live bool
	// DownFor is how long the namespace's istio.io/rev has not answered;
	// 0 when live.
	DownFor time.Duration
	// HomeUpFor is how long the revision in the namespace's failover-from
	// annotation has answered; 0 when it does not.
	HomeUpFor time.Duration
}

// RepairNamespace is the namespace reconciler's decision: what the router
// does to a namespace it finds in the cluster, rather than one it admits.
//
// Four cases, in order:
//   - the webhook missed the namespace (created or labelled while the
//     router was down, or opted in by a label it already carried): the
//     same decision as at admission (DecideNamespace);
//   - namespace granularity, the router moved the namespace off a revision
//     that stopped answering (annotation failover-from): once that revision
//     has answered again for FailoverSettle, move back to it, whatever the
//     policy would choose now, so an outage leaves no namespace split;
//   - namespace granularity, the router chose the namespace's revision and
//     that revision has not answered for NamespaceFailover.After: route
//     afresh around it and record where it was. A shorter outage changes
//     nothing: Istio's webhook refuses the namespace's new pods meanwhile,
//     running pods are untouched, and nothing is left to undo;
//   - namespace granularity, the router chose the revision by fallback (a
//     namespace created during an outage) and the policy's own choice is
//     available again: move back to it.
//
// A revision the operator pinned, or one the router chose that is live but
// no longer the policy's choice (the weights changed), is left alone: the
// router never moves a healthy namespace on its own. Retry, when set, is
// when the decision may change without any other event.
func (p *Policy) RepairNamespace(s NamespaceSubject, h NamespaceHealth) NamespaceDecision {
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
	home := s.Annotations[AnnotationFailoverFrom]
	if home == rev {
		// Back where it was by other means: only the record goes.
		return NamespaceDecision{Action: NamespaceRoute, Revision: rev, Reason: ReasonSticky, ClearFailover: true}
	}
	if home != "" && h.Live {
		switch {
		case p.targetIndex(home) < 0:
			// The operator dropped the revision meanwhile: the namespace
			// stays where it is, still marked, for them to decide.
			return NamespaceDecision{Reason: ReasonSticky}
		case h.HomeUpFor >= FailoverSettle:
			return NamespaceDecision{Action: NamespaceRoute, Revision: home, Reason: ReasonSticky, ClearFailover: true,
				Warnings: []string{"canary-router moved the namespace back to istio.io/rev=" + home + ", which answers again, from " + rev + ", where an outage had moved it"}}
		case h.HomeUpFor > 0:
			return NamespaceDecision{Reason: ReasonSticky, Retry: FailoverSettle - h.HomeUpFor}
		}
		return NamespaceDecision{Reason: ReasonSticky}
	}
	if !h.Live {
		if wait := p.Failover().After - h.DownFor; wait > 0 {
			return NamespaceDecision{Reason: ReasonSticky, Retry: wait}
		}
		d := p.routeNamespace(s, false)
		if d.Action == NamespaceRoute && d.Revision != rev {
			if home == "" {
				home = rev
			}
			d.FailoverFrom = home
			d.Warnings = append(d.Warnings, "canary-router moved the namespace from istio.io/rev="+rev+", which has not answered for "+
				h.DownFor.Round(time.Second).String()+", to istio.io/rev="+d.Revision+"; it moves back to "+home+" when that answers again")
			return d
		}
		return NamespaceDecision{Reason: ReasonSticky}
	}
	if reason == ReasonFallback && home == "" {
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
