package policy

import "testing"

// TestStickyNamespaceOnlyKeepsAnAvailableRevision is the regression test
// for what FuzzDecide found: a namespace re-applied with
// istio-injection=enabled kept the revision the router chose earlier even
// when that revision was down or gone from the policy, taking Istio's
// label away in favour of a revision that cannot inject.
func TestStickyNamespaceOnlyKeepsAnAvailableRevision(t *testing.T) {
	p := mustParse(t, "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n")
	subject := func(rev string, down []bool) NamespaceSubject {
		return NamespaceSubject{
			Name:        "shop",
			Labels:      map[string]string{LabelIstioInjection: "enabled", LabelIstioRev: rev},
			Annotations: map[string]string{AnnotationDecision: `{"revision":"` + rev + `"}`},
			Down:        down,
		}
	}
	// The seeded hash's choice for this namespace, and the other target.
	pref, other := p.Pick("namespace/shop"), "stable"
	if pref == "stable" {
		other = "canary"
	}
	downOnly := func(rev string) []bool { return []bool{rev == "stable", rev == "canary"} }
	cases := []struct {
		name       string
		rev        string
		down       []bool
		wantAction NamespaceAction
		wantRev    string
		wantReason Reason
	}{
		{"available: kept", "canary", nil, NamespaceRoute, "canary", ReasonSticky},
		{"down: moved to the available target", pref, downOnly(pref), NamespaceRoute, other, ReasonFallback},
		{"gone from the policy: routed afresh", "old", nil, NamespaceRoute, pref, ReasonSticky},
		{"every target down: Istio's label left in place", "canary", []bool{true, true}, NamespaceNone, "", ReasonFallback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.DecideNamespace(subject(c.rev, c.down))
			if d.Action != c.wantAction || d.Revision != c.wantRev || d.Reason != c.wantReason || d.Refuse {
				t.Fatalf("got %+v, want action %v revision %q reason %s", d, c.wantAction, c.wantRev, c.wantReason)
			}
		})
	}
}
