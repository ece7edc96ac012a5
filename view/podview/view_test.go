package podview

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func syncedView(t *testing.T, c *clock) *View {
	t.Helper()
	v := New(Options{Now: c.now, TTL: 30 * time.Second})
	yes := func() bool { return true }
	v.hasSynced.Store(&yes)
	return v
}

func twoTargets(t testing.TB, canary float64) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(fmt.Appendf(nil, "granularity: pod\ntargets: [{revision: stable, weight: %g}, {revision: canary, weight: %g}]\n", 100-canary, canary))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var rs = Key{Namespace: "shop", Kind: "ReplicaSet", Name: "web-5d8f"}

// pod is the metadata the informer delivers for a pod of k on rev.
func pod(k Key, name, rev string) *metav1.PartialObjectMetadata {
	yes := true
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: k.Namespace, Labels: map[string]string{labelRev: rev},
		Annotations:     map[string]string{annotationStatus: "{}", annotationRev: rev},
		OwnerReferences: []metav1.OwnerReference{{Kind: k.Kind, Name: k.Name, Controller: &yes}},
	}}
}

// place places one pod and returns its revision.
func place(t *testing.T, v *View, k Key, p *policy.Policy, draw uint64) string {
	t.Helper()
	choice, _, ok := v.Place(k, p, nil, draw, true)
	if !ok || choice < 0 {
		t.Fatalf("Place: choice %d ok %v", choice, ok)
	}
	return p.Targets[choice].Revision
}

func TestPlaceWaitsForSync(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := New(Options{Now: c.now, SyncGrace: time.Minute})
	if _, _, ok := v.Place(rs, twoTargets(t, 20), nil, 0, true); ok {
		t.Fatal("placed before the first list")
	}
	if v.Ready() == nil {
		t.Fatal("ready before the first list")
	}
	c.advance(time.Minute)
	if err := v.Ready(); err != nil {
		t.Fatalf("still not ready after the sync grace: %v", err)
	}
}

// TestConcurrentBurst: 20 pods admitted at once, none seen by the informer
// yet, split exactly: the reservations make each admission see the others.
func TestConcurrentBurst(t *testing.T) {
	for _, tt := range []struct {
		canary     float64
		n, wantCan int
	}{{25, 20, 5}, {20, 10, 2}, {10, 50, 5}, {20, 50, 10}} {
		t.Run(fmt.Sprintf("%d at %g%%", tt.n, tt.canary), func(t *testing.T) {
			v := syncedView(t, &clock{t: time.Unix(1000, 0)})
			p := twoTargets(t, tt.canary)
			var wg sync.WaitGroup
			var mu sync.Mutex
			got := map[string]int{}
			for range tt.n {
				wg.Go(func() {
					rev := place(t, v, rs, p, rand.Uint64())
					mu.Lock()
					got[rev]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if got["canary"] != tt.wantCan || got["stable"] != tt.n-tt.wantCan {
				t.Errorf("split %v, want %d canary of %d", got, tt.wantCan, tt.n)
			}
		})
	}
}

func TestReservationLifecycle(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 50)

	first := place(t, v, rs, p, 0)
	if got := v.Counts(rs); got[first] != 1 {
		t.Fatalf("after one placement: %v", got)
	}
	// A dry run decides but reserves nothing.
	if _, _, ok := v.Place(rs, p, nil, 0, false); !ok {
		t.Fatal("dry run not placed")
	}
	if got := v.Counts(rs); got[first]+got[other(first)] != 1 {
		t.Fatalf("dry run reserved: %v", got)
	}
	// The informer shows the pod: the reservation becomes a live pod, and
	// the count does not double.
	v.OnAdd(pod(rs, "web-5d8f-a", first), false)
	if got := v.Counts(rs); got[first] != 1 {
		t.Fatalf("after the informer showed the pod: %v", got)
	}
	// A second pod is refused further down the chain and never appears:
	// it counts until the TTL, then not at all.
	second := place(t, v, rs, p, 0)
	if got := v.Counts(rs); got[first]+got[second] != 2 || second == first {
		t.Fatalf("after a second placement: %v (%s then %s)", got, first, second)
	}
	c.advance(29 * time.Second)
	if got := v.Counts(rs); got[second] != 1 {
		t.Fatalf("reservation gone before its TTL: %v", got)
	}
	c.advance(time.Second)
	if got := v.Counts(rs); got[second] != 0 || got[first] != 1 {
		t.Fatalf("reservation outlived its TTL: %v", got)
	}
	// Terminating, then deleted (as a tombstone): the pod stops counting
	// as soon as it is terminating.
	live := pod(rs, "web-5d8f-a", first)
	gone := live.DeepCopy()
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	v.OnUpdate(live, gone)
	if got := v.Counts(rs); got[first] != 0 {
		t.Fatalf("terminating pod still counted: %v", got)
	}
	v.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/web-5d8f-a", Obj: gone})
	units, pairs := v.unitCount(), v.pairCount()
	if units != 0 || pairs != 0 {
		t.Errorf("state left after every pod went: %d units, %d revision pairs", units, pairs)
	}
}

func other(rev string) string {
	if rev == "canary" {
		return "stable"
	}
	return "canary"
}

func TestSweepDropsForgottenUnits(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	v := syncedView(t, c)
	p := twoTargets(t, 50)
	for i := range 10 {
		place(t, v, Key{"ns", "Job", fmt.Sprint("job-", i)}, p, 0)
	}
	c.advance(time.Minute)
	v.sweep()
	if n := v.unitCount(); n != 0 {
		t.Errorf("%d units left after their reservations expired", n)
	}
}

func TestRevisionsCountsRoutedAndInjected(t *testing.T) {
	v := syncedView(t, &clock{t: time.Unix(1000, 0)})
	v.OnAdd(pod(rs, "a", "canary"), true)
	v.OnAdd(pod(rs, "b", "canary"), true)
	tagged := pod(rs, "c", "prod")
	tagged.Annotations[annotationRev] = "canary"
	v.OnAdd(tagged, true)
	got := map[[2]string]int{}
	for _, rc := range v.Revisions() {
		got[[2]string{rc.Routed, rc.Injected}] = rc.Pods
	}
	want := map[[2]string]int{{"canary", "canary"}: 2, {"prod", "canary"}: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Revisions = %v, want %v", got, want)
	}
}

// TestReplicasRacing runs k Views (router replicas) against one simulated
// API server: admissions go to random replicas, and each replica's
// informer shows a pod only when the test delivers it. A burst that no
// informer delivers until it is over ends within k - 1/2 pods of the
// target (docs/routing.md); once the informers catch up, the next pods
// correct the split.
func TestReplicasRacing(t *testing.T) {
	for k := 1; k <= 4; k++ {
		t.Run(fmt.Sprintf("%d replicas", k), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(k), 1))
			p := twoTargets(t, 25)
			for trial := range 200 {
				c := &clock{t: time.Unix(1000, 0)}
				views := make([]*View, k)
				for i := range views {
					views[i] = syncedView(t, c)
				}
				var created []*metav1.PartialObjectMetadata
				burst := func(n int) {
					for range n {
						rev := place(t, views[rng.IntN(k)], rs, p, rng.Uint64())
						created = append(created, pod(rs, fmt.Sprint("web-", len(created)), rev))
					}
				}
				deliver := func(from int) {
					for _, v := range views {
						for _, o := range created[from:] {
							v.OnAdd(o, false)
						}
					}
				}
				canary := func() int {
					n := 0
					for _, o := range created {
						if o.Labels[labelRev] == "canary" {
							n++
						}
					}
					return n
				}
				burst(20)
				if dev := math.Abs(float64(canary()) - 5); dev > float64(k)-0.5 {
					t.Fatalf("trial %d: %d canary of 20, more than %d - 1/2 off", trial, canary(), k)
				}
				deliver(0)
				// Caught up: 20 more pods, placed one at a time with the
				// informers delivering each, restore the exact split.
				for range 20 {
					burst(1)
					deliver(len(created) - 1)
				}
				if canary() != 10 {
					t.Fatalf("trial %d: %d canary of 40 after the informers caught up, want 10", trial, canary())
				}
			}
		})
	}
}
