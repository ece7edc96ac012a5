package podview

import "sync"

// Units returns every live pod's unit as policy.WorkloadOf names it (a
// Deployment rather than its ReplicaSets; a pod without a controller is
// its own unit of kind Pod) with its pods counted by the revision that
// injected them ("" for no sidecar): what the leader's migration plans
// from. It walks the informer's cache, so the leader needs no pod
// informer of its own. ok is false until the first list of pods is in.
func (v *View) Units() (out map[Key]map[string]int, ok bool) {
	sp := v.store.Load()
	if sp == nil || !v.Synced() {
		return nil, false
	}
	out = map[Key]map[string]int{}
	for _, obj := range (*sp).List() {
		p, isSlim := obj.(*slimPod)
		if !isSlim || !p.rec.live {
			continue
		}
		k, owned := p.rec.workload()
		if !owned {
			if p.rec.owned {
				continue // a controller's pod whose unit the record could not keep
			}
			k = Key{Namespace: p.namespace, Kind: "Pod", Name: p.name}
		}
		c := out[k]
		if c == nil {
			c = map[string]int{}
			out[k] = c
		}
		c[p.rec.injected]++
	}
	return out, true
}

// listeners are the functions Notify registered.
type listeners struct {
	mu   sync.Mutex
	next int
	fs   map[int]func()
}

// Notify calls f after every change the informer delivers (a pod added,
// changed as the view records it, or deleted), on the informer's
// goroutine, until stop is called: how the leader's migration learns that
// pods moved. f must return at once (enqueue, not work).
func (v *View) Notify(f func()) (stop func()) {
	l := &v.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fs == nil {
		l.fs = map[int]func(){}
	}
	id := l.next
	l.next++
	l.fs[id] = f
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.fs, id)
	}
}

func (v *View) notify() {
	l := &v.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.fs {
		f()
	}
}
