package policy

import "testing"

func TestGatewayPlacement(t *testing.T) {
	two := "granularity: workload\ntargets: [{revision: stable, weight: 90}, {revision: canary, weight: 10}]\n"
	for _, tc := range []struct {
		name        string
		doc         string
		defaultLive bool
		down        []bool
		want        string
		chosen      bool
	}{
		{"the operator's revision", two + "gatewayRevision: stable\n", true, nil, "stable", false},
		{"the operator's revision even when down", two + "gatewayRevision: canary\n", true, []bool{false, true}, "canary", false},
		{"default when it answers", two, true, nil, "default", true},
		{"first target without a default", two, false, nil, "stable", true},
		{"first available target", two, false, []bool{true, false}, "canary", true},
		{"nothing available", two, false, []bool{true, true}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.doc)
			rev, chosen := p.GatewayPlacement(tc.defaultLive, tc.down)
			if rev != tc.want || chosen != tc.chosen {
				t.Errorf("GatewayPlacement = %q, %v; want %q, %v", rev, chosen, tc.want, tc.chosen)
			}
		})
	}
}

func TestExcludedGatewayStaysOnItsRevision(t *testing.T) {
	p := mustParse(t, workloadPolicy)
	s := PodSubject{Namespace: "team", GenerateName: "web-5d8f7c-", Owner: &Owner{Kind: "ReplicaSet", Name: "web-5d8f7c"},
		Annotations: map[string]string{AnnotationInjectTemplates: "gateway"}, GatewayRevision: "default"}
	d := p.DecidePod(s)
	if d.Revision != "default" || d.Reason != ReasonExcluded || !d.Gateway || d.Unit != "" {
		t.Errorf("excluded gateway: %+v, want revision default, reason excluded", d)
	}
}
