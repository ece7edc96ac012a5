package policy

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestStickyFallbackMovesOnlyDownUnits: leaving a down target out of the
// rendezvous keeps every other unit where it was, and spreads the down
// target's units over the others in proportion to their weights.
func TestStickyFallbackMovesOnlyDownUnits(t *testing.T) {
	const n = 10000
	targets := []Target{{"a", 50}, {"b", 30}, {"c", 20}}
	p := &Policy{Seed: "f", Targets: targets}
	down := []bool{false, false, true}
	moved := map[string]int{}
	for i := range n {
		k := unitKey(i)
		choice, preferred := p.pickKey(k, down)
		if preferred != second(p.pickKey(k, nil)) {
			t.Fatalf("%s: preferred target depends on health", k)
		}
		switch {
		case preferred != 2 && choice != preferred:
			t.Fatalf("%s: healthy target %s lost its unit to %s", k, targets[preferred].Revision, targets[choice].Revision)
		case preferred == 2 && choice == 2:
			t.Fatalf("%s: stayed on the down target", k)
		case preferred == 2:
			moved[targets[choice].Revision]++
		}
	}
	// The down target's units split 50:30 over a and b.
	total := moved["a"] + moved["b"]
	rest := []Target{{"a", 62.5}, {"b", 37.5}}
	if stat := chiSquare(rest, moved, total); stat > chiSquare99[1] {
		t.Errorf("moved units %v: chi-square %.2f exceeds %.3f", moved, stat, chiSquare99[1])
	}
}

func TestDrawFallbackRenormalises(t *testing.T) {
	const n = 100000
	p := &Policy{Targets: []Target{{"a", 50}, {"b", 30}, {"c", 20}}}
	down := []bool{false, true, false}
	rng := rand.New(rand.NewPCG(5, 6))
	counts := map[string]int{}
	for range n {
		d := rng.Uint64()
		choice, preferred := p.drawIndex(d, down)
		if preferred != 1 && choice != preferred {
			t.Fatalf("draw %#x: preferred %d is up but the choice is %d", d, preferred, choice)
		}
		counts[p.Targets[choice].Revision]++
	}
	if counts["b"] != 0 {
		t.Fatalf("down target chosen %d times", counts["b"])
	}
	want := []Target{{"a", 50.0 / 0.7}, {"c", 20.0 / 0.7}}
	if stat := chiSquare(want, counts, n); stat > chiSquare99[1] {
		t.Errorf("counts %v: chi-square %.2f exceeds %.3f", counts, stat, chiSquare99[1])
	}
	if c, _ := p.drawIndex(math.MaxUint64, []bool{true, true, true}); c != -1 {
		t.Errorf("every target down: choice %d, want -1", c)
	}
}

func TestDecidePodWithDownTargets(t *testing.T) {
	workload := mustParse(t, workloadPolicy)
	pod := mustParse(t, podPolicy)
	deploy := PodSubject{
		Namespace: "team", GenerateName: "web-5d8f7c9b6-",
		Labels: map[string]string{"pod-template-hash": "5d8f7c9b6"},
		Owner:  &Owner{"ReplicaSet", "web-5d8f7c9b6"},
	}
	stickyRev := workload.Pick("team/Deployment/web")
	other := map[string]string{"a": "b", "b": "a"}[stickyRev]
	downOf := func(p *Policy, rev string) []bool {
		d := make([]bool, len(p.Targets))
		for i, t := range p.Targets {
			d[i] = t.Revision == rev
		}
		return d
	}
	with := func(s PodSubject, down []bool, draw uint64, labels map[string]string) PodSubject {
		s.Down, s.Draw = down, draw
		if labels != nil {
			s.Labels = labels
		}
		return s
	}
	tests := []struct {
		name string
		p    *Policy
		s    PodSubject
		want PodDecision
	}{
		{"workload: other target down, no change", workload, with(deploy, downOf(workload, other), 0, nil),
			PodDecision{Revision: stickyRev, Reason: ReasonSticky, Unit: "Deployment/web"}},
		{"workload: its target down, falls back", workload, with(deploy, downOf(workload, stickyRev), 0, nil),
			PodDecision{Revision: other, Reason: ReasonFallback, Unit: "Deployment/web", Avoided: stickyRev}},
		{"workload: every target down, refused", workload, with(deploy, []bool{true, true}, 0, nil),
			PodDecision{Reason: ReasonFallback, Unit: "Deployment/web", NoTarget: true}},
		{"pinned pod needs no target", workload, with(deploy, []bool{true, true}, 0, map[string]string{LabelIstioRev: "x"}),
			PodDecision{Reason: ReasonPinned}},
		{"pod: draw for b, b down", pod, with(deploy, []bool{false, true}, math.MaxUint64, nil),
			PodDecision{Revision: "a", Reason: ReasonFallback, Unit: "Pod", Avoided: "b", Balance: true}},
		{"pod: every target down, not balanced", pod, with(deploy, []bool{true, true}, 0, nil),
			PodDecision{Reason: ReasonFallback, Unit: "Pod", NoTarget: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.DecidePod(tt.s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecidePod = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecideNamespaceWithDownTargets(t *testing.T) {
	p := mustParse(t, namespacePolicy)
	const name = "shop"
	rev := p.Pick("namespace/" + name)
	other := map[string]string{"a": "b", "b": "a"}[rev]
	down := []bool{p.Targets[0].Revision == rev, p.Targets[1].Revision == rev}
	enabled := map[string]string{LabelIstioInjection: "enabled"}
	optIn := map[string]string{LabelOptIn: OptInEnabled}

	tests := []struct {
		name   string
		labels map[string]string
		down   []bool
		want   NamespaceDecision
	}{
		{"its target down: another", enabled, down, NamespaceDecision{Action: NamespaceRoute, Revision: other, Reason: ReasonFallback,
			Avoided: rev, Warnings: []string{"canary-router replaced istio-injection=enabled with istio.io/rev=" + other + " (50% of namespaces go to " + other + "). In Git (Argo CD, Flux, kubectl apply), declare this Namespace with the label canary-router.io/injection: \"enabled\" and without istio-injection; otherwise every sync repeats this conversion"}}},
		{"opt-in, its target down", optIn, down, NamespaceDecision{Action: NamespaceRoute, Revision: other, Reason: ReasonFallback, Avoided: rev}},
		{"istio-injection kept when nothing is up", enabled, []bool{true, true}, NamespaceDecision{Reason: ReasonFallback, NoTarget: true,
			Warnings: []string{"canary-router left istio-injection=enabled in place: no routing target is available, so Istio's default revision injects this namespace"}}},
		{"opt-in only is refused when nothing is up", optIn, []bool{true, true}, NamespaceDecision{Reason: ReasonFallback, NoTarget: true, Refuse: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.DecideNamespace(NamespaceSubject{Name: name, Labels: tt.labels, Down: tt.down})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecideNamespace = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestZeroWeightIsTheLastResort: a listed target of weight 0 takes pods
// only when every target with weight is down, rather than the pod being
// refused.
func TestZeroWeightIsTheLastResort(t *testing.T) {
	p := &Policy{Seed: "z", Targets: []Target{{"stable", 0}, {"canary", 100}, {"old", 0}}}
	canaryDown := []bool{false, true, false}
	for i := range 1000 {
		k := unitKey(i)
		if choice, preferred := p.pickKey(k, nil); choice != 1 || preferred != 1 {
			t.Fatalf("%s: all up, choice %d preferred %d", k, choice, preferred)
		}
		if choice, preferred := p.pickKey(k, canaryDown); (choice != 0 && choice != 2) || preferred != 1 {
			t.Fatalf("%s: canary down, choice %d preferred %d, want a weight-0 stand-in", k, choice, preferred)
		}
		if choice, _ := p.pickKey(k, []bool{true, true, false}); choice != 2 {
			t.Fatalf("%s: only old up, choice %d", k, choice)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[int]int{}
	for range 1000 {
		choice, preferred := p.drawIndex(rng.Uint64(), canaryDown)
		if preferred != 1 {
			t.Fatalf("draw preferred %d", preferred)
		}
		seen[choice]++
	}
	if seen[0] == 0 || seen[2] == 0 || seen[1] != 0 {
		t.Errorf("draws with canary down went %v, want both weight-0 targets and never canary", seen)
	}
	if choice, preferred := p.Balance([]int{0, 3, 0}, canaryDown, 0); (choice != 0 && choice != 2) || preferred != 1 {
		t.Errorf("Balance with canary down = (%d, %d)", choice, preferred)
	}
	if choice, _ := p.Balance([]int{0, 3, 0}, []bool{true, true, true}, 0); choice != -1 {
		t.Errorf("Balance with everything down = %d, want -1", choice)
	}
}
