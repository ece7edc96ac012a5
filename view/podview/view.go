// Package podview is the router's live view of pods: how many pods of each
// controller run on each revision, fed by a metadata-only informer, plus
// the pods this replica admitted that the informer has not shown yet
// (reservations). It places each new pod of a unit with policy.Balance
// under the lock of the unit's shard, so concurrent admissions of one unit
// see each other's choices.
//
// Placement costs the same however many reservations are outstanding: a
// unit keeps counts per revision, not a record per pod, and its
// reservations expire by time bucket (see ringSlots), so a backlog of pods
// that are never created (refused further down the webhook chain, or a
// load test) neither slows placement nor grows a unit's memory. What can
// grow is the number of units holding reservations, one per controller
// admitted to in the last TTL; Options.MaxReservingUnits caps it, and past
// the cap a pod of a further unit is placed by draw, as before the first
// list of pods (docs/routing.md).
package podview

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
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
	// DefaultMaxReservingUnits bounds the units holding reservations at
	// once. A unit that reserves on two revisions takes about 330 bytes
	// (TestReservingUnitMemory), so reservations stay under about 35 MB.
	// A cluster reaches the cap only if 100k controllers create pods
	// within one TTL; the load tool's pods span 65536 ReplicaSets.
	DefaultMaxReservingUnits = 100_000
)

// Options configures a View.
type Options struct {
	// Now is the clock for reservations and the sync grace.
	Now func() time.Time
	// TTL: see DefaultTTL.
	TTL time.Duration
	// SyncGrace: see DefaultSyncGrace.
	SyncGrace time.Duration
	// MaxReservingUnits: see DefaultMaxReservingUnits.
	MaxReservingUnits int
	Log               *zap.Logger
}

// shardCount spreads units over independently locked maps, so admissions
// of different units and the informer's handlers rarely wait for each
// other. Admissions of one unit must serialise: that is what makes a
// burst split exactly.
const shardCount = 64

// View counts live pods per unit and revision, with reservations for pods
// admitted but not yet seen. The zero value is not usable: call New.
type View struct {
	o       Options
	started time.Time
	// bucket is the time span of one reservation bucket, TTL/ringSlots.
	bucket time.Duration
	trim   trimmer
	// hasSynced reports the informer's first list; nil until Run.
	hasSynced atomic.Pointer[func() bool]
	// store is the informer's cache, for Workloads; nil until Run.
	store    atomic.Pointer[cache.Store]
	graceLog sync.Once

	seed   maphash.Seed
	shards [shardCount]shard
	// reserving counts the units holding reservations, for the cap.
	reserving atomic.Int64

	// listeners are told of every change (Notify).
	listeners listeners

	pairsMu sync.Mutex
	// pairs counts live pods by (routed, injected, pinned), for metrics.
	pairs map[pairKey]int
}

// shard is one lock and the units it guards.
type shard struct {
	mu    sync.Mutex
	units map[Key]*unit
	// A shard to a cache line, so two shards' locks do not contend.
	_ [48]byte
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
	if o.MaxReservingUnits <= 0 {
		o.MaxReservingUnits = DefaultMaxReservingUnits
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	v := &View{o: o, started: o.Now(), bucket: max(o.TTL/ringSlots, 1), seed: maphash.MakeSeed(), pairs: map[pairKey]int{}}
	for i := range v.shards {
		v.shards[i].units = map[Key]*unit{}
	}
	return v
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
// is set, reserves it, all under the unit's shard lock, so concurrent
// admissions of one unit each see the others' choices. ok is false while
// the view is not synced, since counts from a partial list would skew the
// split, and when the pod would need a reservation in one unit more than
// Options.MaxReservingUnits allows; the caller then draws. A dry run must
// not reserve: it admits nothing.
func (v *View) Place(k Key, p *policy.Policy, down []bool, draw uint64, reserve bool) (choice, preferred int, ok bool) {
	if !v.Synced() {
		return -1, -1, false
	}
	slot := v.slotAt(v.o.Now())
	var buf [8]int
	counts := buf[:0]
	if len(p.Targets) > len(buf) {
		counts = make([]int, 0, len(p.Targets))
	}
	s := v.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[k]
	// reserving changes by the net of the unit's last reservation expiring
	// and its first being made: one atomic add at most, none when a unit
	// whose reservations all expired reserves again.
	var delta int64
	if u != nil && u.advance(slot) {
		delta--
	}
	defer func() {
		if delta != 0 {
			v.reserving.Add(delta)
		}
		if u != nil && u.empty() {
			delete(s.units, k)
		}
	}()
	if reserve && (u == nil || u.reserved == 0) && v.reserving.Load()+delta >= int64(v.o.MaxReservingUnits) {
		return -1, -1, false
	}
	for _, t := range p.Targets {
		counts = append(counts, u.count(t.Revision))
	}
	choice, preferred = p.Balance(counts, down, draw)
	if reserve && choice >= 0 {
		if u == nil {
			u = newUnit(slot)
			s.units[cloneKey(k)] = u
		}
		if u.reserve(p.Targets[choice].Revision) {
			delta++
		}
	}
	return choice, preferred, true
}

// cloneKey copies k's strings into one allocation: they come from the
// request, whose buffers are reused, and the map keeps the key.
func cloneKey(k Key) Key {
	var b strings.Builder
	b.Grow(len(k.Namespace) + len(k.Kind) + len(k.Name))
	b.WriteString(k.Namespace)
	b.WriteString(k.Kind)
	b.WriteString(k.Name)
	s := b.String()
	ns, kind := len(k.Namespace), len(k.Namespace)+len(k.Kind)
	return Key{Namespace: s[:ns], Kind: s[ns:kind], Name: s[kind:]}
}

// slotAt is the reservation bucket that t falls in. Slots count from
// ringSlots rather than 0, so that the ring's oldest slot is never
// negative.
func (v *View) slotAt(t time.Time) int64 {
	return int64(max(t.Sub(v.started), 0)/v.bucket) + ringSlots
}

// shardOf hashes only the name: the shard's map hashes the whole key
// again, and names alone spread units well enough to spread the locks.
func (v *View) shardOf(k Key) *shard {
	return &v.shards[maphash.String(v.seed, k.Name)%shardCount]
}

// Counts returns unit k's pods per revision as Place sees them now (live
// plus reserved), for tests and debugging.
func (v *View) Counts(k Key) map[string]int {
	slot := v.slotAt(v.o.Now())
	s := v.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	u := s.units[k]
	if u == nil {
		return out
	}
	if u.advance(slot) {
		v.reserving.Add(-1)
	}
	for _, rc := range u.revs {
		if n := rc.live + rc.reserved; n > 0 {
			out[rc.rev] = n
		}
	}
	return out
}

// RevisionCount is the number of live pods routed to one revision and
// injected by another (the same one, when all is well).
type RevisionCount struct {
	Routed, Injected string
	// Pinned: the pods' owners set istio.io/rev, not the router.
	Pinned bool
	Pods   int
}

// pairKey is a RevisionCount's key.
type pairKey struct {
	routed, injected string
	pinned           bool
}

// Revisions returns live pods by routed and injected revision; pods with
// neither are left out.
func (v *View) Revisions() []RevisionCount {
	v.pairsMu.Lock()
	defer v.pairsMu.Unlock()
	out := make([]RevisionCount, 0, len(v.pairs))
	for k, n := range v.pairs {
		out = append(out, RevisionCount{Routed: k.routed, Injected: k.injected, Pinned: k.pinned, Pods: n})
	}
	return out
}

// sweep drops expired reservations, idle rings and empty units everywhere,
// one shard at a time; Place and the handlers only tidy the unit they
// touch.
func (v *View) sweep() {
	slot := v.slotAt(v.o.Now())
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		for k, u := range s.units {
			if u.advance(slot) {
				v.reserving.Add(-1)
			}
			u.prune()
			if u.empty() {
				delete(s.units, k)
			}
		}
		s.mu.Unlock()
	}
}
