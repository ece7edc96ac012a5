package podview

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPlace measures one reserving placement with a steady backlog:
// the clock moves TTL/n per placement, so as many reservations expire as
// are made and n stay outstanding, the worst case of pods that are never
// created (refused further down the webhook chain, or a load test).
// Placement must cost the same whatever n is.
func BenchmarkPlace(b *testing.B) {
	for _, bc := range []struct {
		name         string
		units, depth int
	}{
		{"reservations=0", 1, 0},
		{"reservations=1k", 1, 1000},
		{"reservations=100k", 1, 100_000},
		{"units=10k/reservations=100k", 10_000, 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keys := make([]Key, bc.units)
			for i := range keys {
				keys[i] = Key{Namespace: "shop", Kind: "ReplicaSet", Name: fmt.Sprintf("web-%08x", i)}
			}
			// A plain variable, not the test clock: its mutex would be
			// measured too.
			now := time.Unix(1000, 0)
			v := New(Options{Now: func() time.Time { return now }})
			yes := func() bool { return true }
			v.hasSynced.Store(&yes)
			p := twoTargets(b, 25)
			outstanding := bc.units * bc.depth
			step := v.o.TTL
			if outstanding > 0 {
				step = v.o.TTL / time.Duration(outstanding)
			}
			i := 0
			placeNext := func() {
				if c, _, ok := v.Place(keys[i%len(keys)], p, nil, uint64(i)*0x9e3779b97f4a7c15, true); !ok || c < 0 {
					b.Fatal("not placed")
				}
				now = now.Add(step)
				i++
			}
			for range outstanding {
				placeNext()
			}
			b.ReportAllocs()
			for b.Loop() {
				placeNext()
			}
		})
	}
}
