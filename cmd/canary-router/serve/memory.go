package serve

import (
	"context"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"
)

// releaseMemory returns the garbage of a first list to the OS. Decoding
// every pod's metadata (kilobytes each, managedFields included) to keep a
// few hundred bytes of it leaves the heap at its high-water mark, and the
// runtime gives idle memory back only slowly: without this, a replica's
// RSS after a sync of 100,000 pods stays near that peak rather than near
// what it holds (docs/limits.md). One forced collection; called after the
// pod view's first list and after each leadership term's first lists.
func releaseMemory(log *zap.Logger) {
	began := time.Now()
	debug.FreeOSMemory()
	log.Info("returned the first list's memory to the OS", zap.Duration("took", time.Since(began)))
}

// releaseAfterSync calls releaseMemory once synced reports true, unless
// ctx ends first.
func releaseAfterSync(ctx context.Context, synced func() bool, log *zap.Logger) {
	if cache.WaitForCacheSync(ctx.Done(), synced) {
		releaseMemory(log)
	}
}
