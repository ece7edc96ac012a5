package policy

import "math"

// deficitEpsilon treats deficits this close as equal: shares like 0.2 times
// a pod count are not exact in float64, and a tie must stay a tie.
const deficitEpsilon = 1e-9

// Balance chooses the target for the next pod of a routing unit from the
// unit's live pod counts, so the unit's split tracks the weights as
// closely as whole pods allow: 10 pods at 20 percent give 2 canary pods.
//
// counts[i] is the number of the unit's pods on Targets[i] (live pods plus
// pods admitted but not yet seen); down[i] marks a target that must not be
// chosen now (nil: every target is available). It is a pure function of its
// arguments: draw only breaks exact ties, so concurrent router replicas
// that see the same counts do not all make the same choice.
//
// preferred is the target the counts call for with every target
// available; choice is where the pod goes. They differ when the preferred
// target is down, and then the pod is a fallback. When every target with
// weight is down, available targets of weight 0 stand in (the last
// resort, see lastResort); choice is -1 when every target is down.
//
// The rule gives the pod to the target with the largest deficit,
// share × (n+1) − count, n being the unit's pods so far. For two targets
// the count of each target after n pods is w·n rounded to the nearest
// whole pod, whatever the starting counts converge from; with more targets
// every count stays within one pod of its share (see the property test).
func (p *Policy) Balance(counts []int, down []bool, draw uint64) (choice, preferred int) {
	preferred = largestDeficit(p.Targets, counts, nil, draw)
	if preferred < 0 || !isDown(down, preferred) {
		return preferred, preferred
	}
	return largestDeficit(p.Targets, counts, down, draw), preferred
}

// largestDeficit returns the index of the eligible target with the largest
// deficit, an exact tie broken by draw, or -1 when no target is eligible.
// Shares are renormalised over the eligible targets (see eligibleWeight),
// and n counts only their pods, so a down target's pods neither hold back
// nor inflate the others.
func largestDeficit(targets []Target, counts []int, down []bool, draw uint64) int {
	last := lastResort(targets, down)
	var weights float64
	n := 0
	for i, t := range targets {
		if w := eligibleWeight(t, i, down, last); w > 0 {
			weights += w
			n += counts[i]
		}
	}
	if weights == 0 {
		return -1
	}
	best, ties := math.Inf(-1), 0
	for i, t := range targets {
		w := eligibleWeight(t, i, down, last)
		if w <= 0 {
			continue
		}
		d := deficit(w/weights, n, counts[i])
		switch {
		case d > best+deficitEpsilon:
			best, ties = d, 1
		case d >= best-deficitEpsilon:
			ties++
		}
	}
	// The draw's top bits pick among the tied targets in index order; the
	// second pass finds that one without a slice of candidates.
	k := int((draw >> 32) % uint64(ties))
	for i, t := range targets {
		w := eligibleWeight(t, i, down, last)
		if w <= 0 {
			continue
		}
		if deficit(w/weights, n, counts[i]) >= best-deficitEpsilon {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return -1 // unreachable: at least one target reached best
}

func deficit(share float64, n, count int) float64 {
	return share*float64(n+1) - float64(count)
}

func isDown(down []bool, i int) bool { return i < len(down) && down[i] }

// lastResort reports whether down leaves no target with weight available
// while some target of weight 0 is: the policy lists that target, so it
// stands in rather than the pod being refused, which would stop every pod
// in the managed namespaces.
func lastResort(targets []Target, down []bool) bool {
	if down == nil {
		return false
	}
	spare := false
	for i, t := range targets {
		switch {
		case isDown(down, i):
		case t.Weight > 0:
			return false
		default:
			spare = true
		}
	}
	return spare
}

// eligibleWeight is the weight target i competes with: 0 when it is down,
// its own weight normally, and in the last resort 1 for each available
// target of weight 0 (they share evenly what nothing else can take).
func eligibleWeight(t Target, i int, down []bool, last bool) float64 {
	switch {
	case isDown(down, i):
		return 0
	case last:
		if t.Weight == 0 {
			return 1
		}
		return 0
	}
	return t.Weight
}
