package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
)

// applyingPatcher applies the reconciler's merge patches to its namespaces,
// bumping resourceVersion, and counts them.
type applyingPatcher struct {
	ns     fakeNamespaces
	writes int
}

func (p *applyingPatcher) PatchNamespace(_ context.Context, name string, raw []byte) error {
	var patch struct {
		Metadata struct {
			Labels      map[string]*string `json:"labels"`
			Annotations map[string]*string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &patch); err != nil {
		return err
	}
	ns := p.ns[name]
	set := func(m map[string]string, k string, v *string) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = *v
		}
	}
	for k, v := range patch.Metadata.Labels {
		set(ns.Labels, k, v)
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	for k, v := range patch.Metadata.Annotations {
		set(ns.Annotations, k, v)
	}
	p.writes++
	ns.ResourceVersion = fmt.Sprint(p.writes + 100)
	p.ns[name] = ns
	return nil
}

// The reconciler against a moving clock: 8 s of a dead canary injector
// writes nothing; an outage past namespaceFailover.after moves every
// canary namespace, paced, each recording where it was; recovery moves
// exactly those back after the settle time, though the policy now sends
// new namespaces elsewhere: 0 split.
func TestNamespaceFailoverOverTime(t *testing.T) {
	const doc = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n" +
		"namespaceFailover: {after: 30s, maxPerMinute: 60}\n"
	// The operator moved the weights during the outage.
	const later = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 99}, {revision: canary, weight: 1}]\n" +
		"namespaceFailover: {after: 30s, maxPerMinute: 60}\n"
	snap := snapshot(t, doc)
	namespaces := fakeNamespaces{}
	onCanary := 0
	for i := range 12 {
		name := fmt.Sprintf("ns-%02d", i)
		rev := snap.Policy.Pick("namespace/" + name)
		if rev == "canary" {
			onCanary++
		}
		namespaces[name] = nsview.Namespace{Name: name, ResourceVersion: "1", Labels: map[string]string{policy.LabelOptIn: policy.OptInEnabled, policy.LabelIstioRev: rev},
			Annotations: map[string]string{policy.AnnotationDecision: `{"revision":"` + rev + `","reason":"sticky"}`}}
	}
	if onCanary < 3 {
		t.Fatalf("only %d namespaces on canary", onCanary)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	cur := state("stable", "canary")
	p := &applyingPatcher{ns: namespaces}
	r := NewNamespaceReconciler(NamespaceOptions{Namespaces: namespaces, Patcher: p, OwnNamespace: "canary-router-system",
		Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return cur },
		Now: func() time.Time { return now }, Log: zap.NewNop()})
	r.outages.Store(newOutages())
	// pass reconciles every namespace once, as a resync would.
	pass := func() {
		for name := range namespaces {
			if _, err := r.reconcile(context.Background(), name, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	where := func() (canary, stable, marked int) {
		for _, ns := range namespaces {
			switch ns.Labels[policy.LabelIstioRev] {
			case "canary":
				canary++
			case "stable":
				stable++
			}
			if ns.Annotations[policy.AnnotationFailoverFrom] != "" {
				marked++
			}
		}
		return
	}

	// Canary's injector stops answering for 8 s, checked every second.
	cur = state("stable")
	for range 8 {
		pass()
		now = now.Add(time.Second)
	}
	cur = state("stable", "canary")
	pass()
	if p.writes != 0 {
		t.Fatalf("an 8 s outage wrote %d namespaces", p.writes)
	}

	// Down for good: nothing before 30 s, then every canary namespace
	// moves, at most one a second.
	cur = state("stable")
	start := now
	for now.Sub(start) < 29*time.Second {
		pass()
		now = now.Add(time.Second)
	}
	if p.writes != 0 {
		t.Fatalf("%d namespaces moved before namespaceFailover.after", p.writes)
	}
	for now.Sub(start) < 2*time.Minute {
		before := p.writes
		pass()
		if p.writes-before > 1 {
			t.Fatalf("%d namespaces moved within one second (maxPerMinute 60)", p.writes-before)
		}
		now = now.Add(time.Second)
	}
	canary, stable, marked := where()
	if canary != 0 || stable != 12 || marked != onCanary || p.writes != onCanary {
		t.Fatalf("after the outage: canary %d stable %d marked %d writes %d; want 0, 12, %d, %d", canary, stable, marked, p.writes, onCanary, onCanary)
	}

	// Recovery, under weights that would now send most of them to stable.
	snap = snapshot(t, later)
	cur = state("stable", "canary")
	back := now
	for now.Sub(back) < 9*time.Second {
		pass()
		now = now.Add(time.Second)
	}
	if p.writes != onCanary {
		t.Fatalf("%d namespaces moved back before the settle time", p.writes-onCanary)
	}
	for now.Sub(back) < 2*time.Minute {
		pass()
		now = now.Add(time.Second)
	}
	canary, _, marked = where()
	if canary != onCanary || marked != 0 || p.writes != 2*onCanary {
		t.Errorf("after recovery: canary %d marked %d writes %d; want %d, 0, %d", canary, marked, p.writes, onCanary, 2*onCanary)
	}
	t.Logf("RESULT namespace-failover-unit: canary_namespaces=%d writes_8s_outage=0 moved=%d moved_back=%d split=%d", onCanary, onCanary, canary, onCanary-canary)
}

// A new term starts its outage clock from zero: an outage another
// replica (or an earlier term) saw does not count.
func TestNamespaceFailoverNewTermWatchesAgain(t *testing.T) {
	const doc = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\nnamespaceFailover: {after: 30s}\n"
	snap := snapshot(t, doc)
	name := ""
	for i := range 20 {
		if n := fmt.Sprintf("ns-%d", i); snap.Policy.Pick("namespace/"+n) == "canary" {
			name = n
			break
		}
	}
	namespaces := fakeNamespaces{name: {Name: name, ResourceVersion: "1", Labels: map[string]string{policy.LabelIstioRev: "canary"},
		Annotations: map[string]string{policy.AnnotationDecision: `{"revision":"canary","reason":"sticky"}`}}}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	p := &applyingPatcher{ns: namespaces}
	r := NewNamespaceReconciler(NamespaceOptions{Namespaces: namespaces, Patcher: p,
		Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return state("stable") },
		Now: func() time.Time { return now }, Log: zap.NewNop()})
	r.outages.Store(newOutages())
	_, _ = r.reconcile(context.Background(), name, nil)
	now = now.Add(25 * time.Second)
	r.outages.Store(newOutages()) // leadership changed hands
	now = now.Add(10 * time.Second)
	retry, _ := r.reconcile(context.Background(), name, nil)
	if p.writes != 0 || retry != 30*time.Second {
		t.Errorf("new term acted on an outage it had not watched: writes %d, retry %s", p.writes, retry)
	}
}
