package podview

import "k8s.io/client-go/tools/cache"

var _ cache.ResourceEventHandler = (*View)(nil)

// OnAdd is the informer's add handler. A pod the informer shows for the
// first time settles one reservation of its unit and revision, if any: it
// is, or stands in for, a pod this replica admitted.
func (v *View) OnAdd(obj any, _ bool) {
	r, ok := recordFrom(obj)
	if !ok {
		return
	}
	defer v.notify()
	v.applyPair(r, +1)
	if !r.owned {
		return
	}
	slot := v.slotAt(v.o.Now())
	s := v.shardOf(r.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(r, +1, slot)
	if u := s.units[r.key]; u != nil && r.routed != "" {
		// Expire first, so the pod settles a reservation that still
		// counts rather than one about to go anyway.
		drained := u.advance(slot)
		if u.settle(r.routed) {
			drained = true
		}
		if drained {
			v.reserving.Add(-1)
		}
		s.dropIfEmpty(r.key, u)
	}
}

// OnUpdate is the informer's update handler.
func (v *View) OnUpdate(oldObj, newObj any) {
	or, ok1 := recordFrom(oldObj)
	nr, ok2 := recordFrom(newObj)
	if !ok1 || !ok2 || or == nr {
		return
	}
	defer v.notify()
	v.pairsMu.Lock()
	v.applyPairLocked(or, -1)
	v.applyPairLocked(nr, +1)
	v.pairsMu.Unlock()
	// One lock for both when the pod stays in its unit (the usual case),
	// so Place never sees the pod missing in between.
	slot := v.slotAt(v.o.Now())
	s := v.shardOf(or.key)
	s.mu.Lock()
	s.apply(or, -1, slot)
	if t := v.shardOf(nr.key); t != s {
		s.mu.Unlock()
		s = t
		s.mu.Lock()
	}
	s.apply(nr, +1, slot)
	s.mu.Unlock()
}

// OnDelete is the informer's delete handler.
func (v *View) OnDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	r, ok := recordFrom(obj)
	if !ok {
		return
	}
	defer v.notify()
	v.applyPair(r, -1)
	if !r.counted() {
		return
	}
	s := v.shardOf(r.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(r, -1, v.slotAt(v.o.Now()))
}

// applyPair adds (delta +1) or removes (-1) a pod from the metrics'
// revision pairs.
func (v *View) applyPair(r record, delta int) {
	if !r.live || (r.routed == "" && r.injected == "") {
		return
	}
	v.pairsMu.Lock()
	defer v.pairsMu.Unlock()
	v.applyPairLocked(r, delta)
}

// applyPairLocked is applyPair with pairsMu held.
func (v *View) applyPairLocked(r record, delta int) {
	if !r.live || (r.routed == "" && r.injected == "") {
		return
	}
	pair := pairKey{r.routed, r.injected, r.pinned}
	if v.pairs[pair] += delta; v.pairs[pair] <= 0 {
		delete(v.pairs, pair)
	}
}

// apply adds (delta +1) or removes (-1) a pod from its unit's live counts.
// slot starts a unit the pod creates. Caller holds s.mu.
func (s *shard) apply(r record, delta int, slot int64) {
	if !r.counted() {
		return
	}
	u := s.units[r.key]
	if u == nil {
		if delta < 0 {
			return
		}
		u = newUnit(slot)
		s.units[r.key] = u
	}
	u.add(r.routed, delta)
	s.dropIfEmpty(r.key, u)
}

// dropIfEmpty forgets unit k once it has neither pods nor reservations.
// Caller holds s.mu.
func (s *shard) dropIfEmpty(k Key, u *unit) {
	if u.empty() {
		delete(s.units, k)
	}
}
