package serve

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the router's GC target when GOGC is not set.
//
// Go's default (100) collects whenever the heap doubles over what is
// live, and the router's live heap is mostly its informers' caches, so at
// admission rates the collector ran several times a second: in the load
// tool, garbage collection was the largest cost the router added over the
// floor server after decoding. At 200 the heap may reach three times what
// is live before a collection (about 80 MB with a 100,000-pod view), and
// the manifests set GOMEMLIMIT to the container's memory limit, so the
// collector works harder instead of letting the heap pass it. Measured in
// one interleaved run, 4 KB saturation went from 0.87x to 0.93x the floor
// (docs/performance.md).
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless GOGC says otherwise, and
// returns the GC target in force.
func tuneGC() int {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}
