package serve

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"go.uber.org/zap"
)

// defaultGCPercent is the router's GC target when GOGC is not set and
// the live heap is small.
//
// Go's default (100) collects whenever the heap doubles over what is
// live, and the router's live heap is mostly its informers' caches, so at
// admission rates the collector ran several times a second: in the load
// tool, garbage collection was the largest cost the router added over the
// floor server after decoding. At 200 the heap may reach three times what
// is live before a collection, and the manifests set GOMEMLIMIT to the
// container's memory limit, so the collector works harder instead of
// letting the heap pass it. Measured in one interleaved run, 4 KB
// saturation went from 0.87x to 0.93x the floor (docs/performance.md).
const defaultGCPercent = 200

// gcHeadroom is the garbage the collector may let accumulate between
// collections once the live heap is large: what the throughput gain
// needs is room in bytes, not a multiple of the caches. Three times a
// 100,000-pod leader's live heap was most of its RSS in the scale run
// (docs/limits.md), where 32 MiB of room (the garbage of thousands of
// admissions) keeps collections apart at admission rates.
const gcHeadroom = 32 << 20

// minGCPercent bounds the target from below: past a 64 MiB live heap
// the heap may still grow by half of it between collections.
const minGCPercent = 50

// gcPercentFor is the GC target for a live heap of live bytes: 200 while
// 200 percent is at most gcHeadroom (a live heap up to 16 MiB), then
// gcHeadroom over what is live, never under minGCPercent. At a 100,000-pod
// leader's live heap a collection then comes every 32 MiB allocated:
// seconds apart at the busiest admission rates, for a heap that does
// not double.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return defaultGCPercent
	}
	return int(max(minGCPercent, min(defaultGCPercent, uint64(100)*gcHeadroom/live)))
}

// tuneGC applies defaultGCPercent unless GOGC says otherwise, and
// returns the GC target in force and whether the router adapts it
// (adaptGC) as the live heap grows.
func tuneGC() (percent int, adapt bool) {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, false
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, true
}

// adaptGC sets the GC target from the live heap every interval until ctx
// ends (only when GOGC is not set: the operator's value stands).
func adaptGC(ctx context.Context, every time.Duration, log *zap.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := defaultGCPercent
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		live := sample[0].Value.Uint64()
		if p := gcPercentFor(live); retarget(current, p) {
			debug.SetGCPercent(p)
			log.Info("garbage collector target changed", zap.Int("gcPercent", p), zap.Uint64("liveHeapBytes", live))
			current = p
		}
	}
}

// retarget reports whether the target should move from current to p:
// moves of under 10 points are the live heap's wobble between
// collections, not growth, and would log every interval; reaching either
// bound always counts.
func retarget(current, p int) bool {
	if p == current {
		return false
	}
	return p-current >= 10 || current-p >= 10 || p == minGCPercent || p == defaultGCPercent
}
