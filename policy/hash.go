package policy

import "math"

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// twoTo53 turns the top 53 bits of a hash into a float64 without rounding.
const twoTo53 = 1 << 53

// Pick returns the revision for a sticky unit key by weighted rendezvous
// (highest random weight) hashing seeded with p.Seed.
//
// Each target scores weight / -ln(u) with u a per-(seed, key, revision)
// uniform in (0, 1); that is an exponential race, so a target wins a share
// of keys equal to its weight share. Raising one target's weight raises
// only its own score, so units only ever move towards it, and units of
// targets whose weights did not change stay put. Plain cumulative
// intervals would reshuffle those once there are more than two targets.
func (p *Policy) Pick(key string) string {
	_, preferred := p.pickKey(key, nil)
	return p.revision(preferred)
}

// pickKey is Pick with unavailable targets: see rendezvous.
func (p *Policy) pickKey(key string, down []bool) (choice, preferred int) {
	h := fnvString(p.seedHash(), key)
	return p.rendezvous(fnvByte(h, 0), down)
}

// pickUnit is pickKey(namespace + "/" + unit) without building the key.
func (p *Policy) pickUnit(namespace, unit string, down []bool) (choice, preferred int) {
	h := fnvString(p.seedHash(), namespace)
	h = fnvString(fnvByte(h, '/'), unit)
	return p.rendezvous(fnvByte(h, 0), down)
}

// PickDraw maps uniformly random bits onto the targets' weights. It is for
// per-pod choices, where a fresh draw is wanted rather than stickiness.
func (p *Policy) PickDraw(draw uint64) string {
	_, preferred := p.drawIndex(draw, nil)
	return p.revision(preferred)
}

// drawIndex maps draw onto the cumulative weights of every target
// (preferred) and, when that target is down, onto the cumulative weights
// of the available ones (choice), so the down target's share is spread
// over the others in proportion to their weights. choice is -1 when no
// target is available (see eligibleWeight for targets of weight 0).
func (p *Policy) drawIndex(draw uint64, down []bool) (choice, preferred int) {
	u := float64(draw>>11) / twoTo53
	preferred = p.cumulative(u, nil)
	if preferred < 0 || !isDown(down, preferred) {
		return preferred, preferred
	}
	return p.cumulative(u, down), preferred
}

// cumulative returns the target whose interval of the cumulative eligible
// weights (see eligibleWeight), scaled to [0, 1), holds u; -1 when no
// target is eligible.
func (p *Policy) cumulative(u float64, down []bool) int {
	last := lastResort(p.Targets, down)
	var total float64
	for i, t := range p.Targets {
		total += eligibleWeight(t, i, down, last)
	}
	u *= total
	var cum float64
	found := -1
	for i, t := range p.Targets {
		w := eligibleWeight(t, i, down, last)
		if w <= 0 {
			continue
		}
		cum += w
		if u < cum {
			return i
		}
		found = i
	}
	// Weights may sum to a hair under the total after rounding; the draw
	// then belongs to the last target that can win.
	return found
}

// revision returns the revision of target i, or "" for -1.
func (p *Policy) revision(i int) string {
	if i < 0 {
		return ""
	}
	return p.Targets[i].Revision
}

// seedHash is the FNV state after (seed, 0x00), the prefix of every key.
func (p *Policy) seedHash() uint64 {
	return fnvByte(fnvString(fnvOffset, p.Seed), 0)
}

// rendezvous scores every target against the hash state of (seed, key).
// preferred is the highest scorer; choice the highest scorer among the
// eligible targets (see eligibleWeight). Leaving a down target out of the
// race keeps every other unit where it was, and moves the down target's
// units to their runner-up in proportion to the remaining weights: the
// same monotonic property as a weight change. Ties go to the lower index;
// a zero weight never wins unless it is the last resort; both are -1 when
// no target can win.
func (p *Policy) rendezvous(prefix uint64, down []bool) (choice, preferred int) {
	choice, preferred = -1, -1
	last := lastResort(p.Targets, down)
	var bestScore, bestUp float64
	for i, t := range p.Targets {
		w := eligibleWeight(t, i, down, last)
		if t.Weight <= 0 && w <= 0 {
			continue
		}
		h := mix64(fnvString(prefix, t.Revision))
		u := (float64(h>>11) + 0.5) / twoTo53
		e := -math.Log(u)
		if t.Weight > 0 && (preferred < 0 || t.Weight/e > bestScore) {
			preferred, bestScore = i, t.Weight/e
		}
		if w > 0 && (choice < 0 || w/e > bestUp) {
			choice, bestUp = i, w/e
		}
	}
	return choice, preferred
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * fnvPrime
}

// mix64 is the splitmix64 finaliser. FNV-1a alone leaves the high bits,
// which u is made of, poorly mixed for keys that differ in their last byte.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}
