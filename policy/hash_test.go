package policy

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// chiSquare99 holds the 99% critical values of the chi-square distribution
// by degrees of freedom.
var chiSquare99 = map[int]float64{1: 6.635, 2: 9.210, 3: 11.345, 4: 13.277}

// chiSquare compares counts per target with the shares the weights promise.
func chiSquare(targets []Target, counts map[string]int, n int) float64 {
	var stat float64
	for _, tg := range targets {
		want := float64(n) * tg.Weight / 100
		d := float64(counts[tg.Revision]) - want
		stat += d * d / want
	}
	return stat
}

func unitKey(i int) string {
	return "ns-" + strconv.Itoa(i%37) + "/Deployment/app-" + strconv.Itoa(i)
}

func TestPickUniformity(t *testing.T) {
	const n = 10000
	tests := []struct {
		name    string
		seed    string
		targets []Target
	}{
		{"two targets 90/10", "", []Target{{"1-24", 90}, {"1-25", 10}}},
		{"two targets 70/30 seeded", "upgrade-1-25", []Target{{"1-24", 70}, {"1-25", 30}}},
		{"four targets 50/25/15/10", "s", []Target{{"a", 50}, {"b", 25}, {"c", 15}, {"d", 10}}},
		{"four fractional targets", "t", []Target{{"a", 12.5}, {"b", 37.5}, {"c", 20}, {"d", 30}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Seed: tt.seed, Targets: tt.targets}
			counts := map[string]int{}
			for i := range n {
				counts[p.Pick(unitKey(i))]++
			}
			df := len(tt.targets) - 1
			if stat := chiSquare(tt.targets, counts, n); stat > chiSquare99[df] {
				t.Errorf("counts %v: chi-square %.2f exceeds %.3f (99%%, %d df)", counts, stat, chiSquare99[df], df)
			}
		})
	}
}

func TestPickSticky(t *testing.T) {
	const n = 10000
	doc := "granularity: workload\nseed: one\ntargets: [{revision: a, weight: 50}, {revision: b, weight: 50}]\n"
	p1, p2 := mustParse(t, doc), mustParse(t, doc)
	for i := range n {
		k := unitKey(i)
		if got, again, other := p1.Pick(k), p1.Pick(k), p2.Pick(k); got != again || got != other {
			t.Fatalf("Pick(%q) = %q, then %q, and %q from an identical policy", k, got, again, other)
		}
	}

	tests := []struct {
		name    string
		targets []Target
		moved   float64 // expected share of units a new seed moves: 1 - sum(w_i^2)
	}{
		{"50/50", []Target{{"a", 50}, {"b", 50}}, 0.5},
		{"90/10", []Target{{"a", 90}, {"b", 10}}, 0.18},
		{"50/30/20", []Target{{"a", 50}, {"b", 30}, {"c", 20}}, 0.62},
	}
	for _, tt := range tests {
		t.Run("reseed "+tt.name, func(t *testing.T) {
			before := &Policy{Seed: "one", Targets: tt.targets}
			after := &Policy{Seed: "two", Targets: tt.targets}
			moved := 0
			for i := range n {
				if before.Pick(unitKey(i)) != after.Pick(unitKey(i)) {
					moved++
				}
			}
			// The standard error is below 0.005 here; 0.03 is a wide margin.
			if share := float64(moved) / n; math.Abs(share-tt.moved) > 0.03 {
				t.Errorf("a new seed moved %.3f of units, want about %.2f", share, tt.moved)
			}
		})
	}
}

// scaled returns targets with target i at weight w and the others scaled to
// share the rest in their old proportions.
func scaled(targets []Target, i int, w float64) []Target {
	out := make([]Target, len(targets))
	rest := 100 - targets[i].Weight
	for j, tg := range targets {
		out[j] = tg
		if j == i {
			out[j].Weight = w
		} else if rest > 0 {
			out[j].Weight = tg.Weight * (100 - w) / rest
		}
	}
	return out
}

func TestPickMonotonic(t *testing.T) {
	const n = 5000
	tests := []struct {
		name    string
		targets []Target
		raise   int
		steps   []float64
	}{
		{"two targets, canary ramp", []Target{{"stable", 99}, {"canary", 1}}, 1, []float64{5, 10, 25, 50, 75, 99, 100}},
		{"two targets, stable raised", []Target{{"stable", 10}, {"canary", 90}}, 0, []float64{20, 60, 100}},
		{"three targets, last raised", []Target{{"a", 50}, {"b", 30}, {"c", 20}}, 2, []float64{25, 50, 100}},
		{"three targets, middle raised", []Target{{"a", 60}, {"b", 10}, {"c", 30}}, 1, []float64{20, 40, 80, 100}},
		{"four targets, last raised", []Target{{"a", 40}, {"b", 30}, {"c", 20}, {"d", 10}}, 3, []float64{11, 30, 55, 90}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raised := tt.targets[tt.raise].Revision
			prev := &Policy{Seed: "m", Targets: tt.targets}
			for _, w := range tt.steps {
				next := &Policy{Seed: "m", Targets: scaled(tt.targets, tt.raise, w)}
				moved := 0
				for i := range n {
					k := unitKey(i)
					before, after := prev.Pick(k), next.Pick(k)
					if before == after {
						continue
					}
					moved++
					if after != raised {
						t.Fatalf("raising %s to %v moved %q from %s to %s; units may only move to %s",
							raised, w, k, before, after, raised)
					}
				}
				if moved == 0 {
					t.Errorf("raising %s to %v moved no unit", raised, w)
				}
				prev = next
			}
		})
	}
}

func TestZeroWeightNeverChosen(t *testing.T) {
	tests := []struct {
		name    string
		targets []Target
	}{
		{"first", []Target{{"zero", 0}, {"a", 60}, {"b", 40}}},
		{"middle", []Target{{"a", 60}, {"zero", 0}, {"b", 40}}},
		{"last", []Target{{"a", 60}, {"b", 40}, {"zero", 0}}},
		{"all but one", []Target{{"zero", 0}, {"a", 100}, {"zero2", 0}}},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Targets: tt.targets}
			draws := []uint64{0, 1, 1 << 63, math.MaxUint64}
			for range 10000 {
				draws = append(draws, rng.Uint64())
			}
			for i, d := range draws {
				if got := p.Pick(unitKey(i)); got == "zero" || got == "zero2" || got == "" {
					t.Fatalf("Pick(%q) = %q", unitKey(i), got)
				}
				if got := p.PickDraw(d); got == "zero" || got == "zero2" || got == "" {
					t.Fatalf("PickDraw(%#x) = %q", d, got)
				}
			}
		})
	}
}

func TestPickDrawShare(t *testing.T) {
	const n = 100000
	tests := []struct {
		name    string
		targets []Target
	}{
		{"90/10", []Target{{"a", 90}, {"b", 10}}},
		{"70/20/10", []Target{{"a", 70}, {"b", 20}, {"c", 10}}},
		{"fractional thirds", []Target{{"a", 33.3}, {"b", 33.3}, {"c", 33.4}}},
		{"1% canary", []Target{{"a", 99}, {"b", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			p := &Policy{Targets: tt.targets}
			counts := map[string]int{}
			for range n {
				counts[p.PickDraw(rng.Uint64())]++
			}
			df := len(tt.targets) - 1
			if stat := chiSquare(tt.targets, counts, n); stat > chiSquare99[df] {
				t.Errorf("counts %v: chi-square %.2f exceeds %.3f (99%%, %d df)", counts, stat, chiSquare99[df], df)
			}
		})
	}
}

func TestPickDrawEdges(t *testing.T) {
	// 33.3+33.3+33.3+0.1 falls a hair short of 100 in float64; the top draw
	// must still land on a target.
	p := &Policy{Targets: []Target{{"a", 33.3}, {"b", 33.3}, {"c", 33.3}, {"d", 0.1}, {"z", 0}}}
	tests := []struct {
		draw uint64
		want string
	}{
		{0, "a"},
		{math.MaxUint64, "d"},
		{math.MaxUint64 >> 1, "b"},
	}
	for _, tt := range tests {
		if got := p.PickDraw(tt.draw); got != tt.want {
			t.Errorf("PickDraw(%#x) = %q, want %q", tt.draw, got, tt.want)
		}
	}
}

func TestPickUnitMatchesPick(t *testing.T) {
	p := &Policy{Seed: "x", Targets: []Target{{"a", 30}, {"b", 30}, {"c", 40}}}
	for i := range 2000 {
		ns, unit := "ns-"+strconv.Itoa(i%13), "StatefulSet/db-"+strconv.Itoa(i)
		if got, want := p.revision(second(p.pickUnit(ns, unit, nil))), p.Pick(ns+"/"+unit); got != want {
			t.Fatalf("pickUnit(%q, %q) = %q, Pick = %q", ns, unit, got, want)
		}
	}
}

// TestPickStable pins the hash. Changing it reassigns units on upgrade of
// the router itself, which is a rollout event operators did not ask for.
func TestPickStable(t *testing.T) {
	if got := fnvString(fnvOffset, "a"); got != 0xaf63dc4c8601ec8c {
		t.Errorf("FNV-1a(a) = %#x, want the reference 0xaf63dc4c8601ec8c", got)
	}
	// The first output of SplitMix64 seeded with 0 is mix64 of its gamma.
	if got := mix64(0x9e3779b97f4a7c15); got != 0xe220a8397b1dcdaf {
		t.Errorf("mix64(gamma) = %#x, want the SplitMix64 reference 0xe220a8397b1dcdaf", got)
	}
	p := &Policy{Seed: "upgrade-1-25", Targets: []Target{{"1-24", 50}, {"1-25", 50}}}
	want := map[string]string{
		"team/Deployment/web": "1-25",
		"team/Deployment/api": "1-25",
		"shop/StatefulSet/db": "1-24",
		"namespace/payments":  "1-25",
		"namespace/search":    "1-25",
		"default/Pod/debug":   "1-24",
	}
	for k, v := range want {
		if got := p.Pick(k); got != v {
			t.Errorf("Pick(%q) = %q, want %q", k, got, v)
		}
	}
}
