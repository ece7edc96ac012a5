package policy

import (
	"math"
	"reflect"
	"testing"
)

const (
	workloadPolicy = `granularity: workload
seed: s1
targets: [{revision: a, weight: 50}, {revision: b, weight: 50}]
namespaces: {exclude: [skip-me]}
`
	podPolicy       = "granularity: pod\ntargets: [{revision: a, weight: 50}, {revision: b, weight: 50}]\n"
	namespacePolicy = "granularity: namespace\ntargets: [{revision: a, weight: 50}, {revision: b, weight: 50}]\n"
	routeGateways   = workloadPolicy + "gateways: route\n"
)

func TestDecidePod(t *testing.T) {
	deployment := func(ns string) PodSubject {
		return PodSubject{
			Namespace:    ns,
			GenerateName: "web-5d8f7c9b6-",
			Labels:       map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b6"},
			Owner:        &Owner{"ReplicaSet", "web-5d8f7c9b6"},
		}
	}
	with := func(s PodSubject, labels, annotations map[string]string) PodSubject {
		l := map[string]string{}
		for k, v := range s.Labels {
			l[k] = v
		}
		for k, v := range labels {
			l[k] = v
		}
		s.Labels, s.Annotations = l, annotations
		return s
	}
	drawn := func(s PodSubject, draw uint64) PodSubject { s.Draw = draw; return s }
	gateway := map[string]string{AnnotationInjectTemplates: "gateway"}

	tests := []struct {
		name   string
		policy string
		s      PodSubject
		want   PodDecision
		// sticky, when set, is the unit key whose Pick the revision must equal.
		sticky string
	}{
		{"namespace granularity", namespacePolicy, deployment("team"), PodDecision{Reason: ReasonUnmanaged}, ""},
		{"kube-system", workloadPolicy, deployment("kube-system"), PodDecision{Reason: ReasonUnmanaged}, ""},
		{"kube-public", podPolicy, deployment("kube-public"), PodDecision{Reason: ReasonUnmanaged}, ""},
		{"kube-node-lease", podPolicy, deployment("kube-node-lease"), PodDecision{Reason: ReasonUnmanaged}, ""},
		{"excluded namespace", workloadPolicy, deployment("skip-me"), PodDecision{Reason: ReasonExcluded}, ""},
		{"pinned", workloadPolicy, with(deployment("team"), map[string]string{LabelIstioRev: "canary"}, nil),
			PodDecision{Reason: ReasonPinned}, ""},
		{"pinned wins over opt-out", podPolicy,
			with(deployment("team"), map[string]string{LabelIstioRev: "canary", LabelSidecarInject: "false"}, nil),
			PodDecision{Reason: ReasonPinned}, ""},
		{"pinned to nothing", podPolicy, with(deployment("team"), map[string]string{LabelIstioRev: ""}, nil),
			PodDecision{Reason: ReasonPinned, Warnings: []string{emptyRevWarning}}, ""},
		{"opted out by label", workloadPolicy, with(deployment("team"), map[string]string{LabelSidecarInject: "false"}, nil),
			PodDecision{Reason: ReasonOptedOut}, ""},
		{"opted out by annotation", podPolicy, with(deployment("team"), nil, map[string]string{LabelSidecarInject: "false"}),
			PodDecision{Reason: ReasonOptedOut}, ""},
		{"inject=true is routed", workloadPolicy, with(deployment("team"), map[string]string{LabelSidecarInject: "true"}, nil),
			PodDecision{Reason: ReasonSticky, Unit: "Deployment/web"}, "team/Deployment/web"},
		{"gateway excluded", workloadPolicy, with(deployment("team"), nil, gateway), PodDecision{Reason: ReasonExcluded, Gateway: true}, ""},
		{"gateway in a template list", podPolicy,
			with(deployment("team"), nil, map[string]string{AnnotationInjectTemplates: "sidecar, gateway"}),
			PodDecision{Reason: ReasonExcluded, Gateway: true}, ""},
		{"gateway routed", routeGateways, with(deployment("team"), nil, gateway),
			PodDecision{Reason: ReasonSticky, Unit: "Deployment/web", Gateway: true}, "team/Deployment/web"},
		{"template that only mentions gateway", workloadPolicy,
			with(deployment("team"), nil, map[string]string{AnnotationInjectTemplates: "sidecar,gateway-custom"}),
			PodDecision{Reason: ReasonSticky, Unit: "Deployment/web"}, "team/Deployment/web"},
		{"workload: Deployment", workloadPolicy, deployment("team"),
			PodDecision{Reason: ReasonSticky, Unit: "Deployment/web"}, "team/Deployment/web"},
		{"workload: same Deployment in another namespace", workloadPolicy, deployment("shop"),
			PodDecision{Reason: ReasonSticky, Unit: "Deployment/web"}, "shop/Deployment/web"},
		{"workload: StatefulSet", workloadPolicy, PodSubject{Namespace: "team", Name: "db-0", Owner: &Owner{"StatefulSet", "db"}},
			PodDecision{Reason: ReasonSticky, Unit: "StatefulSet/db"}, "team/StatefulSet/db"},
		{"workload: bare named pod", workloadPolicy, PodSubject{Namespace: "team", Name: "debug"},
			PodDecision{Reason: ReasonSticky, Unit: "Pod/debug"}, "team/Pod/debug"},
		{"workload: no stable unit, low draw", workloadPolicy, PodSubject{Namespace: "team", GenerateName: "debug-"},
			PodDecision{Revision: "a", Reason: ReasonPolicy, Unit: "Pod"}, ""},
		{"workload: no stable unit, high draw", workloadPolicy, PodSubject{Namespace: "team", GenerateName: "debug-", Draw: math.MaxUint64},
			PodDecision{Revision: "b", Reason: ReasonPolicy, Unit: "Pod"}, ""},
		{"pod: low draw", podPolicy, drawn(deployment("team"), 0),
			PodDecision{Revision: "a", Reason: ReasonPolicy, Unit: "Pod", Balance: true}, ""},
		{"pod: high draw", podPolicy, drawn(deployment("team"), math.MaxUint64),
			PodDecision{Revision: "b", Reason: ReasonPolicy, Unit: "Pod", Balance: true}, ""},
		{"pod: just under half", podPolicy, drawn(deployment("team"), 1<<63-1),
			PodDecision{Revision: "a", Reason: ReasonPolicy, Unit: "Pod", Balance: true}, ""},
		{"pod: bare pod is drawn, not balanced", podPolicy, PodSubject{Namespace: "team", Name: "debug", Draw: math.MaxUint64},
			PodDecision{Revision: "b", Reason: ReasonPolicy, Unit: "Pod"}, ""},
		{"pod: half", podPolicy, drawn(deployment("team"), 1<<63),
			PodDecision{Revision: "b", Reason: ReasonPolicy, Unit: "Pod", Balance: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			want := tt.want
			if tt.sticky != "" {
				want.Revision = p.Pick(tt.sticky)
			}
			if got := p.DecidePod(tt.s); !reflect.DeepEqual(got, want) {
				t.Errorf("DecidePod = %+v, want %+v", got, want)
			}
		})
	}
}

// TestDecidePodSpreadsWorkloads guards against a unit key that ignores the
// workload: different Deployments must not all land on one revision.
func TestDecidePodSpreadsWorkloads(t *testing.T) {
	p := mustParse(t, workloadPolicy)
	seen := map[string]int{}
	for _, name := range []string{"web", "api", "cart", "auth", "search", "mail", "queue", "db", "cache", "ui"} {
		d := p.DecidePod(PodSubject{Namespace: "team", Owner: &Owner{"StatefulSet", name}})
		seen[d.Revision]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("10 workloads at 50/50 went %v; want both revisions used", seen)
	}
}

func BenchmarkDecidePod(b *testing.B) {
	p := mustParse(b, `granularity: workload
seed: upgrade-1-25
targets: [{revision: 1-24, weight: 90}, {revision: 1-25, weight: 10}]
namespaces: {exclude: [istio-system, monitoring]}
`)
	s := PodSubject{
		Namespace:    "checkout",
		GenerateName: "payments-api-7d9f8c6b5d-",
		Labels: map[string]string{
			"app": "payments-api", "version": "v3", "pod-template-hash": "7d9f8c6b5d",
			"app.kubernetes.io/part-of": "checkout",
		},
		Annotations: map[string]string{"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2025-11-26T06:00:00Z"},
		Owner:       &Owner{"ReplicaSet", "payments-api-7d9f8c6b5d"},
		Draw:        0x9e3779b97f4a7c15,
	}
	b.ReportAllocs()
	for b.Loop() {
		d := p.DecidePod(s)
		if d.Revision == "" {
			b.Fatal("not routed")
		}
	}
}
