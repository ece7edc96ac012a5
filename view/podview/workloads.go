package podview

import "k8s.io/client-go/tools/cache"

// WorkloadPods is one workload's live pods as the view holds them, keyed
// by policy.WorkloadOf's unit (a Deployment, not its ReplicaSets).
type WorkloadPods struct {
	Key
	// Injected counts pods by the revision that injected them; "" counts
	// pods without a sidecar.
	Injected map[string]int
	// Pinned counts pods whose owner set istio.io/rev itself.
	Pinned int
}

// Workloads returns every workload's live pods, read from the informer's
// cache: a walk over all pods, for the policy validator's dry run, never
// for an admission. ok is false until the first list of pods is in.
func (v *View) Workloads() (out []WorkloadPods, ok bool) {
	sp := v.store.Load()
	if sp == nil || !v.Synced() {
		return nil, false
	}
	index := map[Key]int{}
	for _, obj := range (*sp).List() {
		r, ok := recordFrom(obj)
		if !ok || !r.live {
			continue
		}
		k, ok := r.workload()
		if !ok {
			continue
		}
		i, seen := index[k]
		if !seen {
			i = len(out)
			index[k] = i
			out = append(out, WorkloadPods{Key: k, Injected: map[string]int{}})
		}
		out[i].Injected[r.injected]++
		if r.pinned {
			out[i].Pinned++
		}
	}
	return out, true
}

// setStore keeps the informer's store for Workloads.
func (v *View) setStore(s cache.Store) { v.store.Store(&s) }
