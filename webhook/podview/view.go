// Package podview is the router's live view of pods: how many pods of each
// controller run on each revision, fed by a metadata-only informer, plus
// the pods this replica admitted that the informer has not shown yet. It
// places each new pod of a unit with policy.Balance under one lock, so
// concurrent admissions see each other's choices.
package podview

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/webhook/policy"
)

// Defaults for Options.
const (
	// DefaultTTL is how long an admitted pod counts before the informer
	// shows it. After the router answers, the rest of the webhook chain
	// (Istio's injector has a 10 s timeout) and the write to etcd come
	// first; the watch event then follows in milliseconds. A pod refused
	// further down the chain never appears and stops counting after this.
	DefaultTTL = 30 * time.Second
	// DefaultSyncGrace is how long readiness waits for the first list of
	// pods. Past it the router serves, placing pods by draw (reason
	// policy) until the list completes: a router that never turns ready
	// would block every pod in its namespaces, which is worse than a
	// less accurate split.
	DefaultSyncGrace = 30 * time.Second
)

// Options configures a View.
type Options struct {
	// Now is the clock for reservations and the sync grace.
	Now func() time.Time
	// TTL: see DefaultTTL.
	TTL time.Duration
	// SyncGrace: see DefaultSyncGrace.
	SyncGrace time.Duration
	Log       *zap.Logger
}

// View counts live pods per unit and revision, with reservations for pods
// admitted but not yet seen. The zero value is not usable: call New.
type View struct {
	o       Options
	started time.Time
	trim    trimmer
	// hasSynced reports the informer's first list; nil until Run.
	hasSynced atomic.Pointer[func() bool]
	graceLog  sync.Once

	mu    sync.Mutex
	units map[Key]*unit
	// pairs counts live pods by (routed, injected) revision, for metrics.
	pairs map[[2]string]int
}

// unit is one controller's pods.
type unit struct {
	live     []revCount
	reserved []reservation
}

type revCount struct {
	rev string
	n   int
}

// reservation is a pod this replica admitted to rev, counted until the
// informer shows a pod of the unit on rev or the reservation expires.
type reservation struct {
	rev     string
	expires time.Time
}

// New returns an empty View; Run feeds it.
func New(o Options) *View {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.SyncGrace <= 0 {
		o.SyncGrace = DefaultSyncGrace
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &View{o: o, started: o.Now(), units: map[Key]*unit{}, pairs: map[[2]string]int{}}
}

// Synced reports whether the informer has delivered its first full list.
func (v *View) Synced() bool {
	f := v.hasSynced.Load()
	return f != nil && (*f)()
}

// Ready is a readiness check: it fails until the first list of pods, or
// until the sync grace has passed.
func (v *View) Ready() error {
	if v.Synced() {
		return nil
	}
	if v.o.Now().Sub(v.started) >= v.o.SyncGrace {
		v.graceLog.Do(func() {
			v.o.Log.Warn("pod view not synced: serving anyway; per-pod routing uses random draws (reason policy) until the first list of pods completes",
				zap.Duration("waited", v.o.SyncGrace))
		})
		return nil
	}
	return errors.New("waiting for the first list of pods (metadata only), which per-pod routing balances against")
}

// Place chooses the target for a new pod of unit k from the unit's live
// pods plus this replica's reservations (policy.Balance) and, when reserve
// is set, reserves it, all under one lock, so concurrent admissions of one
// unit each see the others' choices. ok is false while the view is not
// synced: counts from a partial list would skew the split. A dry run must
// not reserve: it admits nothing.
func (v *View) Place(k Key, p *policy.Policy, down []bool, draw uint64, reserve bool) (choice, preferred int, ok bool) {
	if !v.Synced() {
		return -1, -1, false
	}
	now := v.o.Now()
	var buf [8]int
	counts := buf[:0]
	if len(p.Targets) > len(buf) {
		counts = make([]int, 0, len(p.Targets))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	u := v.units[k]
	if u != nil {
		u.expire(now)
	}
	for _, t := range p.Targets {
		counts = append(counts, u.count(t.Revision))
	}
	choice, preferred = p.Balance(counts, down, draw)
	if reserve && choice >= 0 {
		if u == nil {
			// The key's strings come from the request, whose buffers are
			// reused: the map keeps its own copies.
			u = &unit{}
			v.units[Key{strings.Clone(k.Namespace), strings.Clone(k.Kind), strings.Clone(k.Name)}] = u
		}
		u.reserved = append(u.reserved, reservation{rev: p.Targets[choice].Revision, expires: now.Add(v.o.TTL)})
	}
	v.dropIfEmpty(k, u)
	return choice, preferred, true
}

// Counts returns unit k's pods per revision as Place sees them now (live
// plus reserved), for tests and debugging.
func (v *View) Counts(k Key) map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int{}
	u := v.units[k]
	if u == nil {
		return out
	}
	u.expire(v.o.Now())
	for _, c := range u.live {
		out[c.rev] += c.n
	}
	for _, r := range u.reserved {
		out[r.rev]++
	}
	return out
}

// RevisionCount is the number of live pods routed to one revision and
// injected by another (the same one, when all is well).
type RevisionCount struct {
	Routed, Injected string
	Pods             int
}

// Revisions returns live pods by routed and injected revision; pods with
// neither are left out.
func (v *View) Revisions() []RevisionCount {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]RevisionCount, 0, len(v.pairs))
	for k, n := range v.pairs {
		out = append(out, RevisionCount{Routed: k[0], Injected: k[1], Pods: n})
	}
	return out
}

// OnAdd is the informer's add handler. A pod the informer shows for the
// first time settles one reservation of its unit and revision, if any: it
// is, or stands in for, a pod this replica admitted.
func (v *View) OnAdd(obj any, _ bool) {
	r, ok := recordFrom(obj)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.apply(r, +1)
	if r.owned && r.routed != "" {
		if u := v.units[r.key]; u != nil {
			u.settle(r.routed)
			v.dropIfEmpty(r.key, u)
		}
	}
}

// OnUpdate is the informer's update handler.
func (v *View) OnUpdate(oldObj, newObj any) {
	or, ok1 := recordFrom(oldObj)
	nr, ok2 := recordFrom(newObj)
	if !ok1 || !ok2 || or == nr {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.apply(or, -1)
	v.apply(nr, +1)
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
	v.mu.Lock()
	defer v.mu.Unlock()
	v.apply(r, -1)
}

var _ cache.ResourceEventHandler = (*View)(nil)

// apply adds (delta +1) or removes (-1) a pod's counts. Caller holds mu.
func (v *View) apply(r record, delta int) {
	if r.live && (r.routed != "" || r.injected != "") {
		pair := [2]string{r.routed, r.injected}
		if v.pairs[pair] += delta; v.pairs[pair] <= 0 {
			delete(v.pairs, pair)
		}
	}
	if !r.counted() {
		return
	}
	u := v.units[r.key]
	if u == nil {
		if delta < 0 {
			return
		}
		u = &unit{}
		v.units[r.key] = u
	}
	u.add(r.routed, delta)
	v.dropIfEmpty(r.key, u)
}

// sweep drops expired reservations and empty units everywhere; Place and
// the handlers only tidy the unit they touch.
func (v *View) sweep() {
	now := v.o.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, u := range v.units {
		u.expire(now)
		v.dropIfEmpty(k, u)
	}
}

func (v *View) dropIfEmpty(k Key, u *unit) {
	if u != nil && len(u.live) == 0 && len(u.reserved) == 0 {
		delete(v.units, k)
	}
}

// count is the unit's live plus reserved pods on rev; a nil unit has none.
func (u *unit) count(rev string) int {
	if u == nil {
		return 0
	}
	n := 0
	for _, c := range u.live {
		if c.rev == rev {
			n += c.n
		}
	}
	for _, r := range u.reserved {
		if r.rev == rev {
			n++
		}
	}
	return n
}

func (u *unit) add(rev string, delta int) {
	for i := range u.live {
		if u.live[i].rev == rev {
			u.live[i].n += delta
			if u.live[i].n <= 0 {
				u.live = append(u.live[:i], u.live[i+1:]...)
			}
			return
		}
	}
	if delta > 0 {
		u.live = append(u.live, revCount{rev: rev, n: delta})
	}
}

// settle removes the oldest reservation on rev.
func (u *unit) settle(rev string) {
	for i, r := range u.reserved {
		if r.rev == rev {
			u.reserved = append(u.reserved[:i], u.reserved[i+1:]...)
			return
		}
	}
}

// expire drops the reservations whose time is up. They are in admission
// order, and every one has the same TTL, so they expire from the front.
func (u *unit) expire(now time.Time) {
	i := 0
	for i < len(u.reserved) && !now.Before(u.reserved[i].expires) {
		i++
	}
	if i > 0 {
		u.reserved = append(u.reserved[:0], u.reserved[i:]...)
	}
}
