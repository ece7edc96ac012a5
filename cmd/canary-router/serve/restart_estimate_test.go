package serve

import (
	"fmt"
	"testing"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook"
)

type fakeWorkloadPods struct {
	units  []podview.WorkloadPods
	synced bool
}

func (f fakeWorkloadPods) Workloads() ([]podview.WorkloadPods, bool) { return f.units, f.synced }

type fakeNamespaces struct {
	list   []nsview.Namespace
	synced bool
}

func (f fakeNamespaces) List() []nsview.Namespace { return f.list }
func (f fakeNamespaces) HasSynced() bool          { return f.synced }

func mustParse(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestartEstimator(t *testing.T) {
	state := istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	}, []istio.Endpoints{{Service: "istiod-stable", Ready: true}, {Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
	optedIn := map[string]string{policy.LabelOptIn: policy.OptInEnabled}
	namespaces := fakeNamespaces{synced: true, list: []nsview.Namespace{
		{Name: "shop", Labels: optedIn}, {Name: "plain"}, {Name: "canary-router-system", Labels: optedIn},
		{Name: "going", Labels: optedIn, Deleting: true}}}
	pods := fakeWorkloadPods{synced: true}
	unit := func(ns, kind, name string, injected map[string]int, pinned int) {
		pods.units = append(pods.units, podview.WorkloadPods{Key: podview.Key{Namespace: ns, Kind: kind, Name: name}, Injected: injected, Pinned: pinned})
	}
	// Counted: 8 Deployments and 2 StatefulSets in shop, every pod on stable.
	for i := range 8 {
		unit("shop", "Deployment", fmt.Sprintf("web-%d", i), map[string]int{"stable": 3}, 0)
	}
	unit("shop", "StatefulSet", "db", map[string]int{"stable": 2}, 0)
	unit("shop", "StatefulSet", "cache", map[string]int{"stable": 1}, 0)
	// Never counted: pinned, opted out of injection (no sidecar at all),
	// not restartable, in an unmanaged, the router's own or a deleted
	// namespace.
	unit("shop", "Deployment", "pinned", map[string]int{"stable": 2}, 2)
	unit("shop", "Deployment", "no-mesh", map[string]int{"": 2}, 0)
	unit("shop", "CronJob", "backup", map[string]int{"stable": 1}, 0)
	unit("plain", "Deployment", "x", map[string]int{"stable": 1}, 0)
	unit("canary-router-system", "Deployment", "canary-router", map[string]int{"stable": 2}, 0)
	unit("going", "Deployment", "y", map[string]int{"stable": 1}, 0)

	stable100 := mustParse(t, "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n")
	canary100 := mustParse(t, "granularity: workload\ntargets: [{revision: canary, weight: 100}]\nmigration: {}\n")
	e := &restartEstimator{pods: pods, namespaces: namespaces, istio: func() *istio.State { return state }, ownNamespace: "canary-router-system"}

	got, ok := e.EstimateRestarts(stable100, canary100)
	if want := (webhook.RestartEstimate{Moves: 10, Workloads: 10, Migrates: true}); !ok || got != want {
		t.Fatalf("everything to canary: %+v, %v; want %+v", got, ok, want)
	}
	if got, _ := e.EstimateRestarts(canary100, stable100); got != (webhook.RestartEstimate{Workloads: 10}) {
		t.Fatalf("back to where the pods are: %+v, want nothing moved", got)
	}
	if got, _ := e.EstimateRestarts(nil, canary100); got.Moves != 10 {
		t.Fatalf("a create: %+v", got)
	}

	for name, broken := range map[string]*restartEstimator{
		"pods not synced":       {pods: fakeWorkloadPods{}, namespaces: namespaces, istio: e.istio},
		"namespaces not synced": {pods: pods, namespaces: fakeNamespaces{}, istio: e.istio},
		"no Istio view yet":     {pods: pods, namespaces: namespaces, istio: func() *istio.State { return nil }},
	} {
		if _, ok := broken.EstimateRestarts(stable100, canary100); ok {
			t.Errorf("%s: estimated anyway", name)
		}
	}
}

// BenchmarkRestartEstimator100kPods: the dry run a policy validation adds,
// at 20,000 workloads of 5 pods in 200 namespaces. It runs on the policy
// validator's own pool, within the admission deadline (3 s).
func BenchmarkRestartEstimator100kPods(b *testing.B) {
	state := istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	}, []istio.Endpoints{{Service: "istiod-stable", Ready: true}, {Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
	namespaces := fakeNamespaces{synced: true}
	pods := fakeWorkloadPods{synced: true}
	for n := range 200 {
		ns := fmt.Sprintf("ns-%d", n)
		namespaces.list = append(namespaces.list, nsview.Namespace{Name: ns, Labels: map[string]string{policy.LabelOptIn: policy.OptInEnabled}})
		for w := range 100 {
			pods.units = append(pods.units, podview.WorkloadPods{Key: podview.Key{Namespace: ns, Kind: "Deployment", Name: fmt.Sprintf("web-%d", w)},
				Injected: map[string]int{"stable": 5}})
		}
	}
	old, err := policy.Parse([]byte("granularity: workload\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n"))
	if err != nil {
		b.Fatal(err)
	}
	cur, err := policy.Parse([]byte("granularity: workload\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\nmigration: {}\n"))
	if err != nil {
		b.Fatal(err)
	}
	e := &restartEstimator{pods: pods, namespaces: namespaces, istio: func() *istio.State { return state }}
	b.ResetTimer()
	for range b.N {
		if est, ok := e.EstimateRestarts(old, cur); !ok || est.Workloads != 20000 || est.Moves == 0 {
			b.Fatalf("%+v %v", est, ok)
		}
	}
}
