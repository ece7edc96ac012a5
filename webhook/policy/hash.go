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
	h := fnvString(p.seedHash(), key)
	return p.rendezvous(fnvByte(h, 0))
}

// pickUnit is Pick(namespace + "/" + unit) without building the key.
func (p *Policy) pickUnit(namespace, unit string) string {
	h := fnvString(p.seedHash(), namespace)
	h = fnvString(fnvByte(h, '/'), unit)
	return p.rendezvous(fnvByte(h, 0))
}

// PickDraw maps uniformly random bits onto the targets' weights. It is for
// per-pod choices, where a fresh draw is wanted rather than stickiness.
func (p *Policy) PickDraw(draw uint64) string {
	u := float64(draw>>11) / twoTo53 * 100
	var cum float64
	last := ""
	for _, t := range p.Targets {
		if t.Weight <= 0 {
			continue
		}
		cum += t.Weight
		if u < cum {
			return t.Revision
		}
		last = t.Revision
	}
	// Weights may sum to a hair under 100 after rounding; the draw then
	// belongs to the last target that can win.
	return last
}

// seedHash is the FNV state after (seed, 0x00), the prefix of every key.
func (p *Policy) seedHash() uint64 {
	return fnvByte(fnvString(fnvOffset, p.Seed), 0)
}

// rendezvous scores every target against the hash state of (seed, key) and
// returns the highest scorer; ties go to the lower index and a zero weight
// never wins.
func (p *Policy) rendezvous(prefix uint64) string {
	best, bestScore := "", 0.0
	for _, t := range p.Targets {
		if t.Weight <= 0 {
			continue
		}
		h := mix64(fnvString(prefix, t.Revision))
		u := (float64(h>>11) + 0.5) / twoTo53
		score := t.Weight / -math.Log(u)
		if best == "" || score > bestScore {
			best, bestScore = t.Revision, score
		}
	}
	return best
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
