package policy

import (
	"testing"
	"time"
)

func TestRepairNamespace(t *testing.T) {
	const ns5050 = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"
	const workload = "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"
	p := mustParse(t, ns5050)
	// The namespace whose hash picks canary, so fallbacks are visible.
	name := ""
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if p.Pick("namespace/"+n) == "canary" {
			name = n
			break
		}
	}
	if name == "" {
		t.Fatal("no namespace picks canary")
	}
	annotated := func(rev, reason string) map[string]string {
		return map[string]string{AnnotationDecision: `{"revision":"` + rev + `","reason":"` + reason + `","generation":1}`}
	}
	for _, tc := range []struct {
		tcName      string
		doc         string
		labels      map[string]string
		annotations map[string]string
		down        []bool
		live        bool
		downFor     time.Duration
		action      NamespaceAction
		revision    string
	}{
		{tcName: "opted in, never routed", doc: ns5050, labels: map[string]string{LabelOptIn: OptInEnabled},
			live: true, action: NamespaceRoute, revision: "canary"},
		{tcName: "istio-injection never converted, namespace granularity", doc: ns5050, labels: map[string]string{LabelIstioInjection: "enabled"},
			live: true, action: NamespaceRoute, revision: "canary"},
		{tcName: "istio-injection never converted, workload granularity", doc: workload, labels: map[string]string{LabelIstioInjection: "enabled"},
			live: true, action: NamespaceOptIn},
		{tcName: "routed and live stays", doc: ns5050, labels: map[string]string{LabelIstioRev: "canary"}, annotations: annotated("canary", "sticky"),
			live: true},
		{tcName: "routed, revision died: route around it", doc: ns5050, labels: map[string]string{LabelIstioRev: "canary"},
			annotations: annotated("canary", "sticky"), down: []bool{false, true}, live: false, downFor: 3 * time.Minute, action: NamespaceRoute, revision: "stable"},
		{tcName: "routed, revision died, nothing else: stays", doc: ns5050, labels: map[string]string{LabelIstioRev: "canary"},
			annotations: annotated("canary", "sticky"), down: []bool{true, true}, live: false, downFor: 3 * time.Minute},
		{tcName: "fallback, choice back: move back", doc: ns5050, labels: map[string]string{LabelIstioRev: "stable"},
			annotations: annotated("stable", "fallback"), live: true, action: NamespaceRoute, revision: "canary"},
		{tcName: "fallback, choice still down: stays", doc: ns5050, labels: map[string]string{LabelIstioRev: "stable"},
			annotations: annotated("stable", "fallback"), down: []bool{false, true}, live: true},
		{tcName: "pinned by the operator, dead: left alone", doc: ns5050, labels: map[string]string{LabelIstioRev: "old"},
			live: false},
		{tcName: "routed earlier to a revision no longer listed, live: left alone", doc: ns5050, labels: map[string]string{LabelIstioRev: "old"},
			annotations: annotated("old", "sticky"), live: true},
		{tcName: "workload granularity never moves a rev-labelled namespace", doc: workload, labels: map[string]string{LabelIstioRev: "canary"},
			annotations: annotated("canary", "sticky"), live: false},
		{tcName: "opted out", doc: ns5050, labels: map[string]string{LabelIstioInjection: "disabled", LabelOptIn: OptInEnabled}, live: true},
	} {
		t.Run(tc.tcName, func(t *testing.T) {
			p := mustParse(t, tc.doc)
			d := p.RepairNamespace(NamespaceSubject{Name: name, Labels: tc.labels, Annotations: tc.annotations, Down: tc.down},
				NamespaceHealth{Live: tc.live, DownFor: tc.downFor})
			if d.Action != tc.action || d.Revision != tc.revision {
				t.Errorf("RepairNamespace = %+v, want action %d revision %q", d, tc.action, tc.revision)
			}
		})
	}
	if d := p.RepairNamespace(NamespaceSubject{Name: "kube-system", Labels: map[string]string{LabelOptIn: OptInEnabled}}, NamespaceHealth{Live: true}); d.Action != NamespaceNone {
		t.Errorf("a system namespace was routed: %+v", d)
	}
}

// An injector outage moves namespaces only once the leader has seen it
// last NamespaceFailover.After, records where each was, and moves exactly
// those back once the revision has answered for FailoverSettle, whatever
// the policy would choose for them now.
func TestRepairNamespaceFailover(t *testing.T) {
	const ns5050 = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"
	// The weights moved meanwhile: a new namespace of that name would go to stable.
	const ns991 = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 99}, {revision: canary, weight: 1}]\n"
	const noCanary = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 100}]\n"
	const fast = ns5050 + "namespaceFailover: {after: 30s, maxPerMinute: 600}\n"
	p := mustParse(t, ns5050)
	name := ""
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} {
		if p.Pick("namespace/"+n) == "canary" && mustParse(t, ns991).Pick("namespace/"+n) == "stable" {
			name = n
			break
		}
	}
	if name == "" {
		t.Fatal("no namespace picks canary at 50 and stable at 1")
	}
	onCanary := map[string]string{LabelIstioRev: "canary"}
	onStable := map[string]string{LabelIstioRev: "stable"}
	routed := func(rev, reason, from string) map[string]string {
		a := map[string]string{AnnotationDecision: `{"revision":"` + rev + `","reason":"` + reason + `","generation":1}`}
		if from != "" {
			a[AnnotationFailoverFrom] = from
		}
		return a
	}
	canaryDown := []bool{false, true}
	for _, tc := range []struct {
		name        string
		doc         string
		labels      map[string]string
		annotations map[string]string
		down        []bool
		health      NamespaceHealth
		action      NamespaceAction
		revision    string
		from        string
		clear       bool
		retry       time.Duration
	}{
		{name: "down 8s: nothing moves", doc: ns5050, labels: onCanary, annotations: routed("canary", "sticky", ""), down: canaryDown,
			health: NamespaceHealth{DownFor: 8 * time.Second}, retry: DefaultFailoverAfter - 8*time.Second},
		{name: "down, just seen: nothing moves", doc: ns5050, labels: onCanary, annotations: routed("canary", "sticky", ""), down: canaryDown,
			health: NamespaceHealth{}, retry: DefaultFailoverAfter},
		{name: "down for the default 2m: moves, recording where it was", doc: ns5050, labels: onCanary, annotations: routed("canary", "sticky", ""),
			down: canaryDown, health: NamespaceHealth{DownFor: 2 * time.Minute}, action: NamespaceRoute, revision: "stable", from: "canary"},
		{name: "policy's after: 30s", doc: fast, labels: onCanary, annotations: routed("canary", "sticky", ""), down: canaryDown,
			health: NamespaceHealth{DownFor: 30 * time.Second}, action: NamespaceRoute, revision: "stable", from: "canary"},
		{name: "policy's after: 30s, down 29s", doc: fast, labels: onCanary, annotations: routed("canary", "sticky", ""), down: canaryDown,
			health: NamespaceHealth{DownFor: 29 * time.Second}, retry: time.Second},
		{name: "moved, home still down: stays", doc: ns5050, labels: onStable, annotations: routed("stable", "fallback", "canary"), down: canaryDown,
			health: NamespaceHealth{Live: true}},
		{name: "moved, home answering 3s: waits", doc: ns5050, labels: onStable, annotations: routed("stable", "fallback", "canary"),
			health: NamespaceHealth{Live: true, HomeUpFor: 3 * time.Second}, retry: FailoverSettle - 3*time.Second},
		{name: "moved, home answering for the settle time: back", doc: ns5050, labels: onStable, annotations: routed("stable", "fallback", "canary"),
			health: NamespaceHealth{Live: true, HomeUpFor: FailoverSettle}, action: NamespaceRoute, revision: "canary", clear: true},
		{name: "moved, policy now picks stable: still back to canary", doc: ns991, labels: onStable, annotations: routed("stable", "fallback", "canary"),
			health: NamespaceHealth{Live: true, HomeUpFor: time.Minute}, action: NamespaceRoute, revision: "canary", clear: true},
		{name: "moved, home dropped from the policy: stays marked", doc: noCanary, labels: onStable, annotations: routed("stable", "fallback", "canary"),
			health: NamespaceHealth{Live: true, HomeUpFor: time.Minute}},
		{name: "moved, the stand-in died too: moves again, home kept", doc: "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 25}, {revision: third, weight: 25}]\n",
			labels: onStable, annotations: routed("stable", "fallback", "canary"), down: []bool{true, true, false},
			health: NamespaceHealth{DownFor: 5 * time.Minute}, action: NamespaceRoute, revision: "third", from: "canary"},
		{name: "moved back by hand: only the record goes", doc: ns5050, labels: onCanary, annotations: routed("canary", "sticky", "canary"),
			health: NamespaceHealth{Live: true}, action: NamespaceRoute, revision: "canary", clear: true},
		{name: "pinned by the operator, down for long: left alone", doc: ns5050, labels: onCanary, down: canaryDown,
			health: NamespaceHealth{DownFor: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.doc)
			d := p.RepairNamespace(NamespaceSubject{Name: name, Labels: tc.labels, Annotations: tc.annotations, Down: tc.down}, tc.health)
			if d.Action != tc.action || d.Revision != tc.revision || d.FailoverFrom != tc.from || d.ClearFailover != tc.clear || d.Retry != tc.retry {
				t.Errorf("RepairNamespace = %+v\nwant action %d revision %q from %q clear %v retry %s", d, tc.action, tc.revision, tc.from, tc.clear, tc.retry)
			}
		})
	}
}

func TestNamespaceFailoverBlock(t *testing.T) {
	p := mustParse(t, "granularity: namespace\ntargets: [{revision: stable, weight: 100}]\n")
	if p.Failover() != DefaultNamespaceFailover() {
		t.Errorf("defaults %+v", p.Failover())
	}
	p = mustParse(t, "granularity: namespace\ntargets: [{revision: stable, weight: 100}]\nnamespaceFailover: {after: 45s}\n")
	if f := p.Failover(); f.After != 45*time.Second || f.MaxPerMinute != DefaultFailoverMaxPerMinute {
		t.Errorf("after only: %+v", f)
	}
	for _, bad := range []string{"{after: 0s}", "{after: soon}", "{maxPerMinute: 0}", "{maxPerMinute: 1.5}", "{every: 1m}", "[1]"} {
		if _, err := Parse([]byte("granularity: namespace\ntargets: [{revision: stable, weight: 100}]\nnamespaceFailover: " + bad + "\n")); err == nil {
			t.Errorf("namespaceFailover: %s accepted", bad)
		}
	}
}
