package migrate

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/istio"
)

// pinState: revisions stable, canary and old; tag prod points to canary.
var pinState = istio.NewState([]istio.Config{
	{Name: "istio-sidecar-injector-stable", Rev: "stable"},
	{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	{Name: "istio-sidecar-injector-old", Rev: "old"},
	{Name: "istio-revision-tag-prod", Rev: "canary", Tag: "prod"},
}, nil, "", "")

func TestClassifyPin(t *testing.T) {
	targets := []string{"stable", "prod"}
	for _, c := range []struct {
		name, pin string
		st        *istio.State
		targets   []string
		want      PinState
	}{
		{name: "a target", pin: "stable", st: pinState, targets: targets},
		{name: "a target tag", pin: "prod", st: pinState, targets: targets},
		{name: "the revision a target tag points to", pin: "canary", st: pinState, targets: targets},
		{name: "a live revision outside the targets", pin: "old", st: pinState, targets: targets, want: PinRetiring},
		{name: "a typo", pin: "stabel", st: pinState, targets: targets, want: PinMissing},
		{name: "no valid policy: only missing", pin: "old", st: pinState},
		{name: "no valid policy, a typo", pin: "stabel", st: pinState, want: PinMissing},
		{name: "Istio not readable", pin: "stabel", targets: targets},
	} {
		if got := ClassifyPin(c.st, c.pin, c.targets); got != c.want {
			t.Errorf("%s: ClassifyPin(%s) = %q, want %q", c.name, c.pin, got, c.want)
		}
	}
}

// TestPlanStalePins: the plan names the pinned workloads the migration
// leaves alone and that need the operator, in namespaces without an Istio
// label; pinned workloads are still never moved.
func TestPlanStalePins(t *testing.T) {
	p := mustPolicy(t, "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: prod, weight: 50}]\n")
	web := healthy("shop", KindDeployment, "web", 2)
	web.Pinned = true
	db := healthy("shop", KindStatefulSet, "db", 1)
	db.Pinned = true
	in := Input{Policy: p, Digest: "d1", Revisions: LiveRevisions(p, pinState), Istio: pinState,
		Namespaces: []Namespace{{Name: "shop", Labels: optedIn}, {Name: "labelled", Labels: map[string]string{"istio.io/rev": "stable"}}},
		Workloads:  []Workload{web, db},
		Pods: map[Ref]PodCounts{web.Ref: {"": 2}, db.Ref: {"old": 1},
			{Namespace: "shop", Kind: "Pod", Name: "debug"}: {"canary": 1}},
		Pins: map[PinKey]int{
			{Unit: web.Ref, Revision: "stabel"}:                                                   2,
			{Unit: db.Ref, Revision: "old"}:                                                       1,
			{Unit: Ref{Namespace: "shop", Kind: "Pod", Name: "debug"}, Revision: "canary"}:        1,
			{Unit: Ref{Namespace: "labelled", Kind: KindDeployment, Name: "x"}, Revision: "gone"}: 3,
		},
	}
	plan := NewPlan(in, 5)
	want := []StalePin{
		{Namespace: "shop", Workload: "Deployment/web", Revision: "stabel", State: PinMissing, Pods: 2},
		{Namespace: "shop", Workload: "StatefulSet/db", Revision: "old", State: PinRetiring, Pods: 1},
	}
	if !reflect.DeepEqual(plan.StalePins, want) {
		t.Errorf("stale pins = %+v\nwant %+v", plan.StalePins, want)
	}
	if len(plan.Moves) != 0 {
		t.Errorf("pinned workloads moved: %+v", plan.Moves)
	}
	in.Pins = nil
	if got := NewPlan(in, 5).StalePins; got != nil {
		t.Errorf("without pins: %+v, want none", got)
	}
}

// TestPinOf: owner pins are read by unit; the router's own labels,
// opted-out pods and terminating pods are not pins.
func TestPinOf(t *testing.T) {
	yes := true
	gone := metav1.Now()
	for _, c := range []struct {
		name        string
		labels, ann map[string]string
		deleting    bool
		want        PinKey
		ok          bool
	}{
		{name: "owner pin", labels: map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"},
			want: PinKey{Unit: Ref{Namespace: "shop", Kind: KindDeployment, Name: "web"}, Revision: "old"}, ok: true},
		{name: "terminating", labels: map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"}, deleting: true},
		{name: "the router's label", labels: map[string]string{"istio.io/rev": "stable", "pod-template-hash": "5d8f"},
			ann: map[string]string{"canary-router.io/decision": "{}"}},
		{name: "opted out by label", labels: map[string]string{"istio.io/rev": "old", "sidecar.istio.io/inject": "false", "pod-template-hash": "5d8f"}},
		{name: "opted out by annotation", labels: map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"},
			ann: map[string]string{"sidecar.istio.io/inject": "false"}},
		{name: "no pin", labels: map[string]string{"pod-template-hash": "5d8f"}},
	} {
		m := &metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f-a", Labels: c.labels, Annotations: c.ann,
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &yes}}}
		if c.deleting {
			m.DeletionTimestamp = &gone
		}
		got, ok := PinOf(m)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: PinOf = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
