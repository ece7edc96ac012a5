package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecideNamespace(t *testing.T) {
	const (
		nsPolicy = `granularity: namespace
seed: s1
targets: [{revision: 1-24, weight: 90}, {revision: 1-25, weight: 10}]
namespaces: {exclude: [skip-me]}
`
		wlPolicy = "granularity: workload\ntargets: [{revision: 1-24, weight: 90}, {revision: 1-25, weight: 10}]\nnamespaces: {exclude: [skip-me]}\n"
		pdPolicy = "granularity: pod\ntargets: [{revision: 1-24, weight: 90}, {revision: 1-25, weight: 10}]\n"

		gitOps      = "In Git (Argo CD, Flux, kubectl apply), declare this Namespace with the label canary-router.io/injection: \"enabled\" and without istio-injection; otherwise every sync repeats this conversion"
		injected    = "canary-router replaced istio-injection=enabled with istio.io/rev={rev} ({share}% of namespaces go to {rev}). " + gitOps
		optIn       = "canary-router replaced istio-injection=enabled with canary-router.io/injection=enabled: Istio's label would override the revision canary-router chooses for each pod. " + gitOps
		reapplied   = "canary-router removed istio-injection=enabled again: the namespace stays on istio.io/rev=1-25, which canary-router chose earlier"
		bothLabels  = "namespace has both istio-injection=enabled and istio.io/rev=1-25: Istio lets istio-injection win, so the default revision injects; canary-router left both labels alone, remove one of them"
		emptyRev    = "namespace label istio.io/rev is empty: no Istio revision matches it, so pods here run without a sidecar"
		decidedOn25 = `{"revision":"1-25","reason":"sticky","generation":3,"policy":"ab12cd34"}`
	)
	enabled := map[string]string{LabelIstioInjection: "enabled"}
	labels := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	decided := map[string]string{AnnotationDecision: decidedOn25}

	tests := []struct {
		name   string
		policy string
		s      NamespaceSubject
		want   NamespaceDecision
		// pick says the revision is Pick("namespace/"+name); {rev} and
		// {share} in warnings stand for it and its weight.
		pick bool
	}{
		{"kube-system", nsPolicy, NamespaceSubject{Name: "kube-system", Labels: enabled}, NamespaceDecision{Reason: ReasonUnmanaged}, false},
		{"kube-public", wlPolicy, NamespaceSubject{Name: "kube-public", Labels: enabled}, NamespaceDecision{Reason: ReasonUnmanaged}, false},
		{"kube-node-lease", pdPolicy, NamespaceSubject{Name: "kube-node-lease"}, NamespaceDecision{Reason: ReasonUnmanaged}, false},
		{"excluded", nsPolicy, NamespaceSubject{Name: "skip-me", Labels: enabled}, NamespaceDecision{Reason: ReasonExcluded}, false},
		{"excluded, workload", wlPolicy, NamespaceSubject{Name: "skip-me", Labels: enabled}, NamespaceDecision{Reason: ReasonExcluded}, false},
		{"injection disabled", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioInjection, "disabled", LabelOptIn, "enabled")},
			NamespaceDecision{Reason: ReasonOptedOut}, false},
		{"injection disabled, pod", pdPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioInjection, "disabled")},
			NamespaceDecision{Reason: ReasonOptedOut}, false},

		{"namespace: injection enabled", nsPolicy, NamespaceSubject{Name: "team", Labels: enabled},
			NamespaceDecision{Action: NamespaceRoute, Reason: ReasonSticky, Warnings: []string{injected}}, true},
		{"namespace: injection enabled, another name", nsPolicy, NamespaceSubject{Name: "shop", Labels: enabled},
			NamespaceDecision{Action: NamespaceRoute, Reason: ReasonSticky, Warnings: []string{injected}}, true},
		{"namespace: injection re-added to a routed namespace", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioInjection, "enabled", LabelIstioRev, "1-25"), Annotations: decided},
			NamespaceDecision{Action: NamespaceRoute, Revision: "1-25", Reason: ReasonSticky, Warnings: []string{reapplied}}, false},
		{"namespace: injection enabled beside a pinned revision", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioInjection, "enabled", LabelIstioRev, "1-25")},
			NamespaceDecision{Reason: ReasonPinned, Warnings: []string{bothLabels}}, false},
		{"namespace: routed earlier", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "1-25"), Annotations: decided},
			NamespaceDecision{Reason: ReasonSticky}, false},
		{"namespace: routed earlier to another revision", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "1-24"), Annotations: decided},
			NamespaceDecision{Reason: ReasonPinned}, false},
		{"namespace: unreadable decision", nsPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "1-25"), Annotations: map[string]string{AnnotationDecision: "1-25"}},
			NamespaceDecision{Reason: ReasonPinned}, false},
		{"namespace: pinned", nsPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "1-25", LabelOptIn, "enabled")},
			NamespaceDecision{Reason: ReasonPinned}, false},
		{"namespace: pinned to nothing", nsPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "")},
			NamespaceDecision{Reason: ReasonPinned, Warnings: []string{emptyRev}}, false},
		{"namespace: opted in", nsPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelOptIn, "enabled")},
			NamespaceDecision{Action: NamespaceRoute, Reason: ReasonSticky}, true},
		{"namespace: opt-in label not enabled", nsPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelOptIn, "disabled")},
			NamespaceDecision{Reason: ReasonUnmanaged}, false},
		{"namespace: no labels", nsPolicy, NamespaceSubject{Name: "team"}, NamespaceDecision{Reason: ReasonUnmanaged}, false},

		{"workload: injection enabled", wlPolicy, NamespaceSubject{Name: "team", Labels: enabled},
			NamespaceDecision{Action: NamespaceOptIn, Reason: ReasonPolicy, Warnings: []string{optIn}}, false},
		{"workload: injection enabled and opted in", wlPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioInjection, "enabled", LabelOptIn, "enabled")},
			NamespaceDecision{Action: NamespaceOptIn, Reason: ReasonPolicy, Warnings: []string{optIn}}, false},
		{"workload: revision with a decision is still pinned", wlPolicy,
			NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "1-25"), Annotations: decided},
			NamespaceDecision{Reason: ReasonPinned}, false},
		{"workload: opted in", wlPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelOptIn, "enabled")},
			NamespaceDecision{Reason: ReasonPolicy}, false},
		{"workload: no labels", wlPolicy, NamespaceSubject{Name: "team"}, NamespaceDecision{Reason: ReasonUnmanaged}, false},
		{"pod: injection enabled", pdPolicy, NamespaceSubject{Name: "team", Labels: enabled},
			NamespaceDecision{Action: NamespaceOptIn, Reason: ReasonPolicy, Warnings: []string{optIn}}, false},
		{"pod: pinned", pdPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelIstioRev, "canary")},
			NamespaceDecision{Reason: ReasonPinned}, false},
		{"pod: opted in", pdPolicy, NamespaceSubject{Name: "team", Labels: labels(LabelOptIn, "enabled")},
			NamespaceDecision{Reason: ReasonPolicy}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			want := tt.want
			if tt.pick {
				want.Revision = p.Pick("namespace/" + tt.s.Name)
				share := map[string]string{"1-24": "90", "1-25": "10"}[want.Revision]
				r := strings.NewReplacer("{rev}", want.Revision, "{share}", share)
				want.Warnings = nil
				for _, w := range tt.want.Warnings {
					want.Warnings = append(want.Warnings, r.Replace(w))
				}
			}
			if got := p.DecideNamespace(tt.s); !reflect.DeepEqual(got, want) {
				t.Errorf("DecideNamespace =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// TestDecideNamespaceUsesBothTargets guards against a namespace key that
// ignores the name: 200 namespaces at 90/10 must not all share one revision.
func TestDecideNamespaceUsesBothTargets(t *testing.T) {
	p := mustParse(t, "granularity: namespace\ntargets: [{revision: a, weight: 90}, {revision: b, weight: 10}]\n")
	seen := map[string]int{}
	for i := range 200 {
		d := p.DecideNamespace(NamespaceSubject{Name: "team-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Labels: map[string]string{LabelOptIn: "enabled"}})
		seen[d.Revision]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("200 namespaces at 90/10 went %v; want both revisions used", seen)
	}
}
