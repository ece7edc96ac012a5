package migrate

import (
	"fmt"
	"testing"

	"github.com/canary-router/canary-router/policy"
)

func mustPolicy(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var optedIn = map[string]string{policy.LabelOptIn: policy.OptInEnabled}

// healthy is a fully rolled-out workload of n replicas.
func healthy(ns, kind, name string, n int32) Workload {
	return Workload{Ref: Ref{ns, kind, name}, Replicas: n, StatusReplicas: n, Updated: n, Available: n, Generation: 2, ObservedGeneration: 2}
}

func TestPlanWorkloadGranularity(t *testing.T) {
	p := mustPolicy(t, "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\n")
	revs := map[string]string{"stable": "1-24", "canary": "1-25"}
	in := Input{Policy: p, Digest: "d1", Revisions: revs, Pods: map[Ref]PodCounts{},
		Namespaces: []Namespace{{Name: "shop", Labels: optedIn}, {Name: "plain"}}}
	// 40 Deployments all on 1-24: exactly those the hash sends to canary drift.
	wantMoves := 0
	for i := range 40 {
		w := healthy("shop", KindDeployment, fmt.Sprintf("web-%d", i), 3)
		in.Workloads = append(in.Workloads, w)
		in.Pods[w.Ref] = PodCounts{"1-24": 3}
		if WorkloadChoice(p, w.Ref) == "canary" {
			wantMoves++
		}
	}
	// An unmanaged namespace never moves.
	other := healthy("plain", KindDeployment, "x", 1)
	in.Workloads = append(in.Workloads, other)
	in.Pods[other.Ref] = PodCounts{"1-23": 1}

	plan := NewPlan(in, 4)
	if len(plan.Moves) != wantMoves || wantMoves == 0 || wantMoves == 40 {
		t.Fatalf("moves = %d, want %d (of 40)", len(plan.Moves), wantMoves)
	}
	for _, m := range plan.Moves {
		if m.To != "canary" || WorkloadChoice(p, m.Ref) != "canary" {
			t.Errorf("move %v to %s: not the workload's choice", m.Ref, m.To)
		}
	}
	if plan.Pending["canary"] != wantMoves {
		t.Errorf("pending = %v", plan.Pending)
	}
	if b := plan.Batches(); len(b) != (wantMoves+3)/4 || len(b[0]) != 4 {
		t.Errorf("batches = %d, first %d", len(b), len(b[0]))
	}
}

// WorkloadChoice must agree with the pod webhook, or the migration would
// restart pods into the revision they just left.
func TestWorkloadChoiceMatchesDecidePod(t *testing.T) {
	p := mustPolicy(t, "granularity: workload\nseed: x\ntargets: [{revision: a, weight: 50}, {revision: b, weight: 50}]\n")
	for i := range 200 {
		name := fmt.Sprintf("w%d", i)
		d := p.DecidePod(policy.PodSubject{Namespace: "ns", Labels: map[string]string{"pod-template-hash": "abc"},
			Owner: &policy.Owner{Kind: "ReplicaSet", Name: name + "-abc"}})
		if got := WorkloadChoice(p, Ref{"ns", KindDeployment, name}); got != d.Revision {
			t.Fatalf("%s: planner %s, webhook %s", name, got, d.Revision)
		}
	}
}

func TestPlanSafetyRules(t *testing.T) {
	p := mustPolicy(t, "granularity: workload\ntargets: [{revision: canary, weight: 100}]\n")
	revs := map[string]string{"canary": "1-25"}
	mk := func(name string, f func(*Workload)) Workload {
		w := healthy("shop", KindDeployment, name, 2)
		f(&w)
		return w
	}
	for _, tc := range []struct {
		name     string
		w        Workload
		pods     PodCounts
		revs     map[string]string
		want     SkipReason // "" restart, "-" nothing at all
		reported bool
	}{
		{name: "drifted and healthy restarts", w: mk("a", func(*Workload) {}), pods: PodCounts{"1-24": 2}},
		{name: "pods without a sidecar restart", w: mk("a", func(*Workload) {}), pods: PodCounts{"": 2}},
		{name: "in place: nothing", w: mk("a", func(*Workload) {}), pods: PodCounts{"1-25": 2}, want: "-"},
		{name: "opted out", w: mk("a", func(w *Workload) { w.OptOut = true }), pods: PodCounts{"1-24": 2}, want: SkipOptedOut},
		{name: "paused", w: mk("a", func(w *Workload) { w.Paused = true }), pods: PodCounts{"1-24": 2}, want: SkipPaused},
		{name: "zero replicas", w: mk("a", func(w *Workload) { w.Replicas = 0 }), pods: PodCounts{"1-24": 1}, want: SkipZero},
		{name: "unavailable before restart", w: mk("a", func(w *Workload) { w.Available = 1 }), pods: PodCounts{"1-24": 2}, want: SkipUnavailable},
		{name: "rolling before restart", w: mk("a", func(w *Workload) { w.ObservedGeneration = 1 }), pods: PodCounts{"1-24": 2}, want: SkipUnavailable},
		{name: "target down", w: mk("a", func(*Workload) {}), pods: PodCounts{"1-24": 2}, revs: map[string]string{}, want: SkipTargetDown},
		{name: "restarted for this policy already", w: mk("a", func(w *Workload) { w.Migrated = "d1" }), pods: PodCounts{"1-24": 2}, want: SkipRestarted},
		{name: "restarted for an older policy", w: mk("a", func(w *Workload) { w.Migrated = "d0" }), pods: PodCounts{"1-24": 2}},
		{name: "pinned template: not the router's", w: mk("a", func(w *Workload) { w.Pinned = true }), pods: PodCounts{"1-24": 2}, want: "-"},
		{name: "StatefulSet", w: mk("a", func(w *Workload) { w.Kind = KindStatefulSet }), pods: PodCounts{"1-24": 2}},
		{name: "DaemonSet", w: mk("a", func(w *Workload) { w.Kind = KindDaemonSet }), pods: PodCounts{"1-24": 2}},
		{name: "Job reported", w: mk("a", func(w *Workload) { w.Kind = "Job" }), pods: PodCounts{"1-24": 1}, want: ReportOnly, reported: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := revs
			if tc.revs != nil {
				r = tc.revs
			}
			in := Input{Policy: p, Digest: "d1", Revisions: r, Namespaces: []Namespace{{Name: "shop", Labels: optedIn}},
				Pods: map[Ref]PodCounts{tc.w.Ref: tc.pods}}
			if !tc.reported {
				in.Workloads = []Workload{tc.w}
			}
			plan := NewPlan(in, 5)
			var got SkipReason = "-"
			switch {
			case len(plan.Moves) == 1:
				got = ""
			case len(plan.Skipped) == 1:
				got = plan.Skipped[0].Reason
			case len(plan.Reported) == 1:
				got = plan.Reported[0].Reason
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q; plan %+v", got, tc.want, plan)
			}
		})
	}
}

func TestPlanPodGranularity(t *testing.T) {
	p := mustPolicy(t, "granularity: pod\ntargets: [{revision: stable, weight: 75}, {revision: canary, weight: 25}]\n")
	revs := map[string]string{"stable": "stable", "canary": "canary"}
	for _, tc := range []struct {
		name  string
		pods  PodCounts
		drift bool
	}{
		{name: "all on stable", pods: PodCounts{"stable": 20}, drift: true},
		{name: "exact", pods: PodCounts{"stable": 15, "canary": 5}},
		{name: "within one pod", pods: PodCounts{"stable": 16, "canary": 4}},
		{name: "two off", pods: PodCounts{"stable": 17, "canary": 3}, drift: true},
		{name: "one pod on an old revision", pods: PodCounts{"stable": 15, "canary": 4, "1-23": 1}, drift: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := healthy("shop", KindDeployment, "web", int32(tc.pods.Total()))
			plan := NewPlan(Input{Policy: p, Revisions: revs, Namespaces: []Namespace{{Name: "shop", Labels: optedIn}},
				Workloads: []Workload{w}, Pods: map[Ref]PodCounts{w.Ref: tc.pods}}, 1)
			if got := len(plan.Moves) == 1; got != tc.drift {
				t.Fatalf("drift = %v, want %v (%+v)", got, tc.drift, plan)
			}
		})
	}
}

func TestPlanNamespaceGranularity(t *testing.T) {
	p := mustPolicy(t, "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n")
	revs := map[string]string{"stable": "stable", "canary": "canary"}
	in := Input{Policy: p, Revisions: revs, Pods: map[Ref]PodCounts{}}
	moved := 0
	for i := range 20 {
		name := fmt.Sprintf("ns-%d", i)
		in.Namespaces = append(in.Namespaces, Namespace{Name: name, Labels: map[string]string{policy.LabelIstioRev: "stable"},
			Annotations: map[string]string{policy.AnnotationDecision: `{"revision":"stable","reason":"sticky"}`}})
		w := healthy(name, KindDeployment, "web", 1)
		in.Workloads = append(in.Workloads, w)
		in.Pods[w.Ref] = PodCounts{"stable": 1}
		if NamespaceChoice(p, name) == "canary" {
			moved++
		}
	}
	// A namespace pinned by its owner stays, with its workloads.
	in.Namespaces = append(in.Namespaces, Namespace{Name: "pinned", Labels: map[string]string{policy.LabelIstioRev: "stable"}})
	pw := healthy("pinned", KindDeployment, "web", 1)
	in.Workloads = append(in.Workloads, pw)
	in.Pods[pw.Ref] = PodCounts{"stable": 1}

	plan := NewPlan(in, 5)
	if len(plan.Namespaces) != moved || moved == 0 || len(plan.Moves) != moved {
		t.Fatalf("relabels %d, moves %d, want %d each", len(plan.Namespaces), len(plan.Moves), moved)
	}
	for i, m := range plan.Moves {
		if m.Namespace != plan.Namespaces[i].Name || m.To != "canary" {
			t.Errorf("move %v to %s, relabel %v", m.Ref, m.To, plan.Namespaces[i])
		}
	}
}
