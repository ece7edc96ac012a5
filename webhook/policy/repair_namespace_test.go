package policy

import "testing"

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
			annotations: annotated("canary", "sticky"), down: []bool{false, true}, live: false, action: NamespaceRoute, revision: "stable"},
		{tcName: "routed, revision died, nothing else: stays", doc: ns5050, labels: map[string]string{LabelIstioRev: "canary"},
			annotations: annotated("canary", "sticky"), down: []bool{true, true}, live: false},
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
			d := p.RepairNamespace(NamespaceSubject{Name: name, Labels: tc.labels, Annotations: tc.annotations, Down: tc.down}, tc.live)
			if d.Action != tc.action || d.Revision != tc.revision {
				t.Errorf("RepairNamespace = %+v, want action %d revision %q", d, tc.action, tc.revision)
			}
		})
	}
	if d := p.RepairNamespace(NamespaceSubject{Name: "kube-system", Labels: map[string]string{LabelOptIn: OptInEnabled}}, true); d.Action != NamespaceNone {
		t.Errorf("a system namespace was routed: %+v", d)
	}
}
