package podview

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

func (v *View) unitCount() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		n += len(s.units)
		s.mu.Unlock()
	}
	return n
}

func (v *View) pairCount() int {
	v.pairsMu.Lock()
	defer v.pairsMu.Unlock()
	return len(v.pairs)
}

// checkInvariants fails unless every unit's sums match its counts and
// rings, and the View's count of reserving units matches the units.
func checkInvariants(t *testing.T, v *View) {
	t.Helper()
	reserving := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		for k, u := range s.units {
			live, reserved := 0, 0
			for _, rc := range u.revs {
				inRing := 0
				if rc.ring != nil {
					for _, b := range rc.ring {
						inRing += int(b)
					}
				}
				if inRing != rc.reserved || rc.live < 0 || rc.reserved < 0 {
					t.Errorf("%v on %s: %d live, %d reserved, %d in the ring", k, rc.rev, rc.live, rc.reserved, inRing)
				}
				live += rc.live
				reserved += rc.reserved
			}
			if live != u.live || reserved != u.reserved {
				t.Errorf("%v: sums %d live %d reserved, counts say %d and %d", k, u.live, u.reserved, live, reserved)
			}
			if reserved > 0 {
				reserving++
			}
		}
		s.mu.Unlock()
	}
	if got := v.reserving.Load(); got != int64(reserving) {
		t.Errorf("reserving units counted %d, there are %d", got, reserving)
	}
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// TestReservationsExpireByBucket: a reservation expires with its bucket,
// TTL after the bucket began (buckets of 2 s at a 30 s TTL), so it counts
// for between 28 and 30 s, however many others are outstanding.
func TestReservationsExpireByBucket(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 50)
	at := func(d time.Duration) { c.mu.Lock(); c.t = time.Unix(1000, 0).Add(d); c.mu.Unlock() }
	at(500 * time.Millisecond)
	place(t, v, rs, p, 0)
	at(1900 * time.Millisecond)
	place(t, v, rs, p, 0)
	at(2 * time.Second)
	place(t, v, rs, p, 0)
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{
		{29999 * time.Millisecond, 3},
		{30 * time.Second, 1},
		{31999 * time.Millisecond, 1},
		{32 * time.Second, 0},
	} {
		at(tt.at)
		if got := total(v.Counts(rs)); got != tt.want {
			t.Errorf("at +%v: %d reservations, want %d", tt.at, got, tt.want)
		}
		checkInvariants(t, v)
	}
}

// TestClockJumps: a jump past the TTL expires everything at once; a clock
// read that goes back (a placement that read the time before another took
// the lock) counts in the newest bucket rather than being lost.
func TestClockJumps(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 50)
	at := func(d time.Duration) { c.mu.Lock(); c.t = time.Unix(1000, 0).Add(d); c.mu.Unlock() }
	for i := range 30 {
		at(time.Duration(i) * time.Second)
		place(t, v, rs, p, 0)
	}
	at(10 * time.Second)
	place(t, v, rs, p, 0)
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{
		// The buckets that began at 0 to 14 s have expired: the pods
		// placed at 16 to 29 s remain, and the one placed back in time.
		{44 * time.Second, 15},
		{57999 * time.Millisecond, 3},
		{58 * time.Second, 0},
	} {
		at(tt.at)
		if got := total(v.Counts(rs)); got != tt.want {
			t.Errorf("at +%v: %d reservations, want %d", tt.at, got, tt.want)
		}
	}
	place(t, v, rs, p, 0)
	at(time.Hour)
	if got := v.Counts(rs); len(got) != 0 {
		t.Errorf("an hour later: %v", got)
	}
	checkInvariants(t, v)
	place(t, v, rs, p, 0)
	if got := total(v.Counts(rs)); got != 1 {
		t.Errorf("after the jump, a new placement counts %d", got)
	}
}

// TestSettleTakesTheOldest: a pod the informer shows settles the oldest
// reservation on its revision, so the newer one counts its full TTL.
func TestSettleTakesTheOldest(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p, err := policy.Parse([]byte("granularity: pod\ntargets: [{revision: stable, weight: 100}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	place(t, v, rs, p, 0)
	c.advance(10 * time.Second)
	place(t, v, rs, p, 0)
	v.OnAdd(pod(rs, "web-a", "stable"), false)
	c.advance(20 * time.Second)
	if got := v.Counts(rs)["stable"]; got != 2 {
		t.Errorf("at +30 s: %d stable, want the live pod and the newer reservation", got)
	}
	c.advance(10 * time.Second)
	if got := v.Counts(rs)["stable"]; got != 1 {
		t.Errorf("at +40 s: %d stable, want only the live pod", got)
	}
	checkInvariants(t, v)
}

// TestReservingUnitsCap: past MaxReservingUnits, a pod of a unit without
// reservations is left to the caller's draw (ok false); units already
// reserving, and dry runs, are placed as before; the cap frees up as
// reservations settle or expire.
func TestReservingUnitsCap(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := New(Options{Now: c.now, MaxReservingUnits: 2})
	yes := func() bool { return true }
	v.hasSynced.Store(&yes)
	p := twoTargets(t, 50)
	a, b, d := Key{"ns", "Job", "a"}, Key{"ns", "Job", "b"}, Key{"ns", "Job", "d"}
	rev := place(t, v, a, p, 0)
	place(t, v, b, p, 0)
	if _, _, ok := v.Place(d, p, nil, 0, true); ok {
		t.Fatal("a third unit reserved past a cap of 2")
	}
	if _, _, ok := v.Place(d, p, nil, 0, false); !ok {
		t.Error("a dry run was refused at the cap")
	}
	place(t, v, a, p, 0)
	if n := v.unitCount(); n != 2 {
		t.Errorf("%d units at the cap, want 2", n)
	}
	checkInvariants(t, v)

	v.OnAdd(pod(a, "a-1", rev), false)
	v.OnAdd(pod(a, "a-2", other(rev)), false)
	place(t, v, d, p, 0)
	checkInvariants(t, v)

	c.advance(v.o.TTL)
	v.sweep()
	checkInvariants(t, v)
	if got := v.reserving.Load(); got != 0 {
		t.Errorf("%d units still reserving after the TTL", got)
	}
	if n := v.unitCount(); n != 1 {
		t.Errorf("%d units after the TTL, want only the one with live pods", n)
	}
}

// TestConcurrentUnitsAndHandlers places pods of many units from several
// goroutines while the informer shows some of them and the clock moves
// (run with -race); the counts stay consistent, and once everything has
// expired and every pod has gone, nothing is left.
func TestConcurrentUnitsAndHandlers(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 30)
	keys := make([]Key, 50)
	for i := range keys {
		keys[i] = Key{"ns", "ReplicaSet", fmt.Sprint("rs-", i)}
	}
	var mu sync.Mutex
	var placed []string
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 500 {
				k := keys[rng.IntN(len(keys))]
				choice, _, ok := v.Place(k, p, nil, rng.Uint64(), true)
				if !ok || choice < 0 {
					t.Error("not placed")
					return
				}
				if i%3 == 0 {
					mu.Lock()
					name := fmt.Sprint(k.Name, "-", len(placed))
					placed = append(placed, name)
					mu.Unlock()
					v.OnAdd(pod(k, name, p.Targets[choice].Revision), false)
				}
				if i%50 == 0 {
					c.advance(time.Second)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			v.sweep()
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	checkInvariants(t, v)
	c.advance(v.o.TTL)
	v.sweep()
	checkInvariants(t, v)
	type onRev struct {
		k    Key
		rev  string
		live int
	}
	var left []onRev
	for i := range v.shards {
		for k, u := range v.shards[i].units {
			for _, rc := range u.revs {
				left = append(left, onRev{k, rc.rev, rc.live})
			}
		}
	}
	for _, l := range left {
		for j := range l.live {
			v.OnDelete(pod(l.k, fmt.Sprint("gone-", j), l.rev))
		}
	}
	if n, r := v.unitCount(), v.reserving.Load(); n != 0 || r != 0 {
		t.Errorf("%d units, %d reserving left after every pod went", n, r)
	}
}

// TestReservingUnitMemory measures what a unit holding reservations on
// two revisions costs, the figure behind DefaultMaxReservingUnits.
func TestReservingUnitMemory(t *testing.T) {
	const units = 20_000
	c := &clock{t: time.Unix(1000, 0)}
	v := New(Options{Now: c.now, MaxReservingUnits: units})
	yes := func() bool { return true }
	v.hasSynced.Store(&yes)
	p := twoTargets(t, 50)
	keys := make([]Key, units)
	for i := range keys {
		keys[i] = Key{"shop", "ReplicaSet", fmt.Sprintf("web-5d8f7c%04x", i)}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, k := range keys {
		place(t, v, k, p, 0)
		place(t, v, k, p, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perUnit := float64(after.HeapAlloc-before.HeapAlloc) / units
	t.Logf("%.0f bytes per reserving unit", perUnit)
	if perUnit > 500 {
		t.Errorf("%.0f bytes per reserving unit, DefaultMaxReservingUnits assumes about 330", perUnit)
	}
	runtime.KeepAlive(v)
}

func TestCloneKey(t *testing.T) {
	k := Key{"shop", "ReplicaSet", "web-5d8f"}
	if got := cloneKey(k); got != k {
		t.Errorf("cloneKey = %+v, want %+v", got, k)
	}
	if n := testing.AllocsPerRun(100, func() { cloneKey(k) }); n != 1 {
		t.Errorf("cloneKey allocates %v times, want once", n)
	}
}

// TestPlaceAllocations: with 100k reservations of one unit outstanding,
// a reserving placement allocates nothing (BenchmarkPlace times it).
func TestPlaceAllocations(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 25)
	for i := range 100_000 {
		v.Place(rs, p, nil, uint64(i), true)
	}
	if got := total(v.Counts(rs)); got != 100_000 {
		t.Fatalf("%d reservations, want 100000", got)
	}
	if n := testing.AllocsPerRun(1000, func() { v.Place(rs, p, nil, 0, true) }); n > 0 {
		t.Errorf("Place allocates %v times with 100k reservations outstanding", n)
	}
	checkInvariants(t, v)
}

// TestRingMatchesAReference checks the ring against a list of
// reservations with their expiry times, under random placements, pods
// shown by the informer, and clock steps around the bucket and TTL
// boundaries.
func TestRingMatchesAReference(t *testing.T) {
	type res struct {
		rev     string
		expires time.Time
	}
	start := time.Unix(1000, 0)
	c := &clock{t: start}
	v := syncedView(t, c)
	p := twoTargets(t, 30)
	bucket := v.o.TTL / ringSlots
	var reserved []res
	live := map[string]int{}
	rng := rand.New(rand.NewPCG(7, 7))
	steps := []time.Duration{0, time.Millisecond, bucket - time.Millisecond, bucket, 3 * bucket, v.o.TTL - bucket, v.o.TTL, v.o.TTL + bucket}
	for i := range 5000 {
		switch op := rng.IntN(10); {
		case op < 6:
			rev := place(t, v, rs, p, rng.Uint64())
			began := start.Add(c.now().Sub(start) / bucket * bucket)
			reserved = append(reserved, res{rev, began.Add(v.o.TTL)})
		case op < 8:
			rev := p.Targets[rng.IntN(2)].Revision
			v.OnAdd(pod(rs, fmt.Sprint("web-", i), rev), false)
			live[rev]++
			for j, r := range reserved {
				if r.rev == rev && c.now().Before(r.expires) {
					reserved = append(reserved[:j], reserved[j+1:]...)
					break
				}
			}
		default:
			c.advance(steps[rng.IntN(len(steps))])
		}
		want := map[string]int{}
		for rev, n := range live {
			want[rev] = n
		}
		for _, r := range reserved {
			if c.now().Before(r.expires) {
				want[r.rev]++
			}
		}
		if got := v.Counts(rs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("op %d at +%v: counts %v, want %v", i, c.now().Sub(start), got, want)
		}
	}
	checkInvariants(t, v)
}
