package webhook

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
)

// fakePodCounts is a PodCounts with fixed counts.
type fakePodCounts struct {
	counts []podview.RevisionCount
	synced bool
}

func (f fakePodCounts) Revisions() []podview.RevisionCount { return f.counts }
func (f fakePodCounts) Synced() bool                       { return f.synced }

// fixedIstioState is an IstioState that never changes.
type fixedIstioState struct{ s *istio.State }

func (s fixedIstioState) Current() *istio.State { return s.s }

// stableCanaryProd knows revisions stable and canary, and tag prod
// pointing to canary.
func stableCanaryProd() fixedIstioState {
	return fixedIstioState{istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
		{Name: "istio-revision-tag-prod", Rev: "canary", Tag: "prod"},
	}, nil, "istio-system", "canary-router")}
}

func policyStore(t *testing.T, doc string) *inforce.Store {
	t.Helper()
	s := inforce.NewStore(time.Now, nil, nil)
	if doc != "" {
		if _, err := s.Apply([]byte(doc), "test"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestPodCollector(t *testing.T) {
	tests := []struct {
		name string
		opts PodCollectorOptions
		want []string
	}{
		{
			name: "a mismatch, a pin Istio overrode, a tag injected by its revision, targets pre-created",
			opts: PodCollectorOptions{
				Pods: fakePodCounts{synced: true, counts: []podview.RevisionCount{
					{Routed: "stable", Injected: "stable", Pods: 7},
					{Routed: "prod", Injected: "canary", Pods: 3},
					{Routed: "canary", Injected: "stable", Pods: 1},
					{Routed: "canary", Injected: "stable", Pinned: true, Pods: 5},
					{Routed: "stable", Injected: "", Pods: 2},
					{Routed: "", Injected: "stable", Pods: 4},
				}},
				Istio: stableCanaryProd(),
				Store: policyStore(t, "granularity: pod\ntargets: [{revision: stable, weight: 60}, {revision: prod, weight: 40}]\n"),
			},
			want: []string{
				`canary_router_pods{injected_revision="",routed_revision="stable"} 2`,
				`canary_router_pods{injected_revision="canary",routed_revision="canary"} 0`,
				`canary_router_pods{injected_revision="canary",routed_revision="prod"} 3`,
				`canary_router_pods{injected_revision="stable",routed_revision=""} 4`,
				`canary_router_pods{injected_revision="stable",routed_revision="canary"} 6`,
				`canary_router_pods{injected_revision="stable",routed_revision="stable"} 7`,
				`canary_router_pods_mismatched 3`,
				`canary_router_pods_pin_overridden 5`,
			},
		},
		{
			name: "without the Istio view a tag compares by name",
			opts: PodCollectorOptions{
				Pods: fakePodCounts{synced: true, counts: []podview.RevisionCount{{Routed: "prod", Injected: "canary", Pods: 3}}},
			},
			want: []string{
				`canary_router_pods{injected_revision="canary",routed_revision="prod"} 3`,
				`canary_router_pods_mismatched 3`,
				`canary_router_pods_pin_overridden 0`,
			},
		},
		{
			name: "nothing before the first list",
			opts: PodCollectorOptions{
				Pods:  fakePodCounts{counts: []podview.RevisionCount{{Routed: "stable", Injected: "stable", Pods: 1}}},
				Store: policyStore(t, "granularity: pod\ntargets: [{revision: stable, weight: 100}]\n"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gatheredSamples(t, NewPodCollector(tt.opts))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// gatheredSamples gathers c through a pedantic registry, which also checks every
// metric against its description, and renders each sample as one line.
func gatheredSamples(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			out = append(out, fmt.Sprintf("%s %g", name, m.GetGauge().GetValue()))
		}
	}
	return out
}

func TestPodCollectorFoldsStrayRevisions(t *testing.T) {
	var counts []podview.RevisionCount
	for i := range 100 {
		counts = append(counts, podview.RevisionCount{Routed: fmt.Sprint("typo-", i), Pods: 1})
	}
	counts = append(counts, podview.RevisionCount{Routed: "stable", Injected: "stable", Pods: 1})
	c := NewPodCollector(PodCollectorOptions{
		Pods:         fakePodCounts{synced: true, counts: counts},
		Store:        policyStore(t, "granularity: pod\ntargets: [{revision: stable, weight: 100}]\n"),
		MaxRevisions: 5,
	})
	got := gatheredSamples(t, c)
	if len(got) != 8 || !strings.Contains(strings.Join(got, "\n"), `canary_router_pods{injected_revision="",routed_revision="other"} 96`) {
		t.Errorf("want stable, four stray names, other (96 pods) and the two mismatch counts:\n%s", strings.Join(got, "\n"))
	}
}
