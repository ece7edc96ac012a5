package policy

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// second returns the second of two results, for calls in expressions.
func second(_, b int) int { return b }

// fill places n pods one after another from counts, as one router replica
// with a complete view does, and returns the final counts.
func fill(p *Policy, counts []int, n int, draw func() uint64) []int {
	counts = append([]int(nil), counts...)
	for range n {
		c, _ := p.Balance(counts, nil, draw())
		counts[c]++
	}
	return counts
}

func TestBalanceExactSplits(t *testing.T) {
	tests := []struct {
		name    string
		targets []Target
		start   []int
		n       int
		want    []int
	}{
		{"10 replicas at 20%", []Target{{"stable", 80}, {"canary", 20}}, []int{0, 0}, 10, []int{8, 2}},
		{"50 replicas at 10%", []Target{{"stable", 90}, {"canary", 10}}, []int{0, 0}, 50, []int{45, 5}},
		{"20 replicas at 25%", []Target{{"stable", 75}, {"canary", 25}}, []int{0, 0}, 20, []int{15, 5}},
		{"50 replicas at 20%", []Target{{"stable", 80}, {"canary", 20}}, []int{0, 0}, 50, []int{40, 10}},
		{"3 replicas at 1%", []Target{{"stable", 99}, {"canary", 1}}, []int{0, 0}, 3, []int{3, 0}},
		{"100 replicas at 1%", []Target{{"stable", 99}, {"canary", 1}}, []int{0, 0}, 100, []int{99, 1}},
		{"catches up after a scale-down took canary pods", []Target{{"stable", 75}, {"canary", 25}}, []int{15, 0}, 5, []int{15, 5}},
		{"canary at 100%", []Target{{"stable", 0}, {"canary", 100}}, []int{3, 0}, 4, []int{3, 4}},
		{"three targets", []Target{{"a", 50}, {"b", 30}, {"c", 20}}, []int{0, 0, 0}, 10, []int{5, 3, 2}},
		{"four targets", []Target{{"a", 40}, {"b", 30}, {"c", 20}, {"d", 10}}, []int{0, 0, 0, 0}, 20, []int{8, 6, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Targets: tt.targets}
			rng := rand.New(rand.NewPCG(3, 5))
			got := fill(p, tt.start, tt.n, rng.Uint64)
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("counts %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestBalanceSteps(t *testing.T) {
	tests := []struct {
		name                string
		targets             []Target
		counts              []int
		down                []bool
		draw                uint64
		choice, preferred   int
		wantChoiceNotPrefer bool
	}{
		{name: "empty unit, 80/20, goes to the bigger share", targets: []Target{{"s", 80}, {"c", 20}}, counts: []int{0, 0}, choice: 0, preferred: 0},
		{name: "canary behind", targets: []Target{{"s", 80}, {"c", 20}}, counts: []int{4, 0}, choice: 1, preferred: 1},
		{name: "canary behind but down", targets: []Target{{"s", 80}, {"c", 20}}, counts: []int{4, 0}, down: []bool{false, true}, choice: 0, preferred: 1},
		{name: "stable due, canary down: not a fallback", targets: []Target{{"s", 80}, {"c", 20}}, counts: []int{0, 1}, down: []bool{false, true}, choice: 0, preferred: 0},
		{name: "every target down", targets: []Target{{"s", 80}, {"c", 20}}, counts: []int{4, 0}, down: []bool{true, true}, choice: -1, preferred: 1},
		{name: "tie, low draw", targets: []Target{{"s", 50}, {"c", 50}}, counts: []int{0, 0}, draw: 0, choice: 0, preferred: 0},
		{name: "tie, high draw", targets: []Target{{"s", 50}, {"c", 50}}, counts: []int{0, 0}, draw: 1 << 32, choice: 1, preferred: 1},
		{name: "zero weight never chosen", targets: []Target{{"z", 0}, {"s", 100}}, counts: []int{0, 0}, choice: 1, preferred: 1},
		{name: "down target's share renormalised", targets: []Target{{"a", 50}, {"b", 30}, {"c", 20}}, counts: []int{5, 0, 0},
			down: []bool{false, false, true}, choice: 1, preferred: 1},
		{name: "a down target's pods do not count for the others", targets: []Target{{"a", 50}, {"b", 30}, {"c", 20}},
			counts: []int{2, 1, 7}, down: []bool{false, false, true}, choice: 0, preferred: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Targets: tt.targets}
			choice, preferred := p.Balance(tt.counts, tt.down, tt.draw)
			if choice != tt.choice || preferred != tt.preferred {
				t.Errorf("Balance(%v, %v) = (%d, %d), want (%d, %d)", tt.counts, tt.down, choice, preferred, tt.choice, tt.preferred)
			}
		})
	}
}

func TestBalancedDecision(t *testing.T) {
	p := &Policy{Targets: []Target{{"stable", 80}, {"canary", 20}}}
	tests := []struct {
		choice, preferred int
		want              PodDecision
	}{
		{1, 1, PodDecision{Revision: "canary", Reason: ReasonBalanced, Unit: "Pod"}},
		{0, 1, PodDecision{Revision: "stable", Reason: ReasonFallback, Unit: "Pod", Avoided: "canary"}},
		{-1, 1, PodDecision{Reason: ReasonFallback, Unit: "Pod", NoTarget: true}},
	}
	for _, tt := range tests {
		if got := p.BalancedDecision(tt.choice, tt.preferred); got.Revision != tt.want.Revision ||
			got.Reason != tt.want.Reason || got.Avoided != tt.want.Avoided || got.NoTarget != tt.want.NoTarget || got.Unit != tt.want.Unit {
			t.Errorf("BalancedDecision(%d, %d) = %+v, want %+v", tt.choice, tt.preferred, got, tt.want)
		}
	}
}

// TestBalanceStaysWithinOnePod is the single-replica property: whatever
// the weights, after every pod each target's count is within one pod of
// its share, and within half a pod when there are two targets.
func TestBalanceStaysWithinOnePod(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 19))
	for trial := range 300 {
		k := 2 + trial%4
		targets := make([]Target, k)
		left := 100.0
		for i := range k - 1 {
			w := math.Round(rng.Float64()*left*10) / 10
			targets[i] = Target{"t" + strconv.Itoa(i), w}
			left -= w
		}
		targets[k-1] = Target{"t" + strconv.Itoa(k-1), left}
		p := &Policy{Targets: targets}
		// Strictly under one pod for k targets; at most half a pod for two.
		within := func(dev float64) bool { return dev < 1 }
		if k == 2 {
			within = func(dev float64) bool { return dev <= 0.5+deficitEpsilon }
		}
		counts := make([]int, k)
		for n := 1; n <= 200; n++ {
			c, _ := p.Balance(counts, nil, rng.Uint64())
			counts[c]++
			for i, tg := range targets {
				if dev := math.Abs(float64(counts[i]) - tg.Weight/100*float64(n)); !within(dev) {
					t.Fatalf("%v after %d pods: counts %v, target %s off by %.3f", targets, n, counts, tg.Revision, dev)
				}
			}
		}
	}
}

// TestBalanceReplicasBound simulates k router replicas placing a burst of
// pods of one unit, each seeing the shared starting pods and its own
// placements plus the others' placements its informer has delivered. With
// two targets and canary share w:
//   - when no replica sees another's burst pods, the canary count ends
//     within k - 1/2 of w*N: each replica rounds its own sub-burst to
//     within half a pod around the shared, balanced base;
//   - in general it ends within 1/2 + max(w, 1-w)*u, u being the most
//     pods any placement could not see.
//
// Both bounds are tight; docs/routing.md states them.
func TestBalanceReplicasBound(t *testing.T) {
	type placed struct{ replica, target int }
	for _, w := range []float64{10, 20, 25, 50, 67} {
		p := &Policy{Targets: []Target{{"stable", 100 - w}, {"canary", w}}}
		share := w / 100
		for k := 1; k <= 5; k++ {
			for _, blind := range []bool{true, false} {
				rng := rand.New(rand.NewPCG(uint64(k), uint64(w)))
				for range 2000 {
					base := fill(p, []int{0, 0}, rng.IntN(30), rng.Uint64)
					lag := make([]int, k)
					for r := range lag {
						lag[r] = rng.IntN(8)
						if blind {
							lag[r] = math.MaxInt32
						}
					}
					n := 1 + rng.IntN(40)
					var burst []placed
					unseenMax := 0
					for range n {
						r := rng.IntN(k)
						view := append([]int(nil), base...)
						visible := len(burst) - lag[r]
						unseen := 0
						for i, pl := range burst {
							if pl.replica == r || i < visible {
								view[pl.target]++
							} else {
								unseen++
							}
						}
						unseenMax = max(unseenMax, unseen)
						c, _ := p.Balance(view, nil, rng.Uint64())
						burst = append(burst, placed{r, c})
					}
					canary := base[1]
					for _, pl := range burst {
						canary += pl.target
					}
					total := base[0] + base[1] + n
					bound := 0.5 + math.Max(share, 1-share)*float64(unseenMax)
					if blind {
						bound = math.Min(bound, float64(k)-0.5)
					}
					if dev := math.Abs(float64(canary) - share*float64(total)); dev > bound+deficitEpsilon {
						t.Fatalf("w=%g k=%d blind=%v: %d canary of %d, off by %.2f > bound %.2f (lags %v)",
							w, k, blind, canary, total, dev, bound, lag)
					}
				}
			}
		}
	}
}
