package podview

// ringSlots is how many time buckets a unit's reservations expire in.
// Each bucket spans TTL/ringSlots (2 s at the default TTL), so a
// reservation counts for between TTL - TTL/ringSlots and TTL; fewer
// buckets would save memory per unit at the cost of earlier expiry.
const ringSlots = 15

// unit is one controller's pods: live counts per revision from the
// informer, and this replica's outstanding reservations per revision,
// bucketed by the time they were made. Counting is O(revisions) however
// many reservations are outstanding, and a unit's memory does not grow
// with them. The shard that holds the unit guards it.
type unit struct {
	revs []revCounts
	// last is the newest slot (see View.slotAt) the ring has advanced to:
	// bucket s%ringSlots holds the reservations made in slot s, for s in
	// (last-ringSlots, last].
	last int64
	// live and reserved are the sums over revs, so that emptiness and the
	// View's count of reserving units are O(1).
	live, reserved int
}

// revCounts is a unit's pods on one revision.
type revCounts struct {
	rev            string
	live, reserved int
	// ring holds reserved by bucket; nil until the unit first reserves on
	// rev, and dropped by the sweep once nothing is reserved.
	ring *[ringSlots]int32
}

func newUnit(slot int64) *unit { return &unit{last: slot} }

func (u *unit) empty() bool { return u.live == 0 && u.reserved == 0 }

// find returns the index of rev's counts, or -1.
func (u *unit) find(rev string) int {
	for i := range u.revs {
		if u.revs[i].rev == rev {
			return i
		}
	}
	return -1
}

// count is the unit's live plus reserved pods on rev; a nil unit has none.
func (u *unit) count(rev string) int {
	if u == nil {
		return 0
	}
	if i := u.find(rev); i >= 0 {
		return u.revs[i].live + u.revs[i].reserved
	}
	return 0
}

// advance moves the ring to slot, expiring the buckets that fall out of
// it: at most ringSlots buckets whatever the backlog, and none while time
// stays within one bucket. A slot before last (a clock read before a
// concurrent placement took the lock) changes nothing. drained reports
// that the unit's last reservation expired.
func (u *unit) advance(slot int64) (drained bool) {
	if slot <= u.last {
		return false
	}
	if u.reserved > 0 {
		from := u.last + 1
		for i := range u.revs {
			rc := &u.revs[i]
			switch {
			case rc.reserved == 0:
			case slot-u.last >= ringSlots:
				*rc.ring = [ringSlots]int32{}
				u.reserved -= rc.reserved
				rc.reserved = 0
			default:
				for s := from; s <= slot; s++ {
					b := &rc.ring[s%ringSlots]
					rc.reserved -= int(*b)
					u.reserved -= int(*b)
					*b = 0
				}
			}
		}
		drained = u.reserved == 0
	}
	u.last = slot
	return drained
}

// reserve counts one pod admitted to rev in the current bucket. The
// caller has advanced the ring. first reports that the unit had no
// reservations before.
func (u *unit) reserve(rev string) (first bool) {
	i := u.find(rev)
	if i < 0 {
		u.revs = append(u.revs, revCounts{rev: rev})
		i = len(u.revs) - 1
	}
	rc := &u.revs[i]
	if rc.ring == nil {
		rc.ring = new([ringSlots]int32)
	}
	rc.ring[u.last%ringSlots]++
	rc.reserved++
	u.reserved++
	return u.reserved == 1
}

// settle removes the oldest outstanding reservation on rev, if any.
// drained reports that it was the unit's last.
func (u *unit) settle(rev string) (drained bool) {
	i := u.find(rev)
	if i < 0 || u.revs[i].reserved == 0 {
		return false
	}
	rc := &u.revs[i]
	for s := u.last - ringSlots + 1; s <= u.last; s++ {
		if b := &rc.ring[s%ringSlots]; *b > 0 {
			*b--
			rc.reserved--
			u.reserved--
			break
		}
	}
	return u.reserved == 0
}

// add counts delta live pods on rev, never below zero, and forgets a
// revision with nothing left on it.
func (u *unit) add(rev string, delta int) {
	i := u.find(rev)
	if i < 0 {
		if delta <= 0 {
			return
		}
		u.revs = append(u.revs, revCounts{rev: rev})
		i = len(u.revs) - 1
	}
	rc := &u.revs[i]
	delta = max(delta, -rc.live)
	rc.live += delta
	u.live += delta
	if rc.live == 0 && rc.reserved == 0 {
		u.revs = append(u.revs[:i], u.revs[i+1:]...)
	}
}

// prune forgets revisions with nothing on them and the rings of those
// with nothing reserved. Place leaves both, so that a unit that reserves
// again soon does not allocate again.
func (u *unit) prune() {
	kept := u.revs[:0]
	for _, rc := range u.revs {
		if rc.reserved == 0 {
			rc.ring = nil
		}
		if rc.live > 0 || rc.reserved > 0 {
			kept = append(kept, rc)
		}
	}
	clear(u.revs[len(kept):])
	u.revs = kept
}
