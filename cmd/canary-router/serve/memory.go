package serve

import (
	"context"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"
)

// releaseAfterSync returns the garbage of the first list of pods to the
// OS once synced reports it is in. Decoding every pod's metadata
// (kilobytes each, managedFields included) to keep a few hundred bytes
// of it leaves the heap at its high-water mark, and the runtime gives
// idle memory back only slowly: without this, a replica's RSS after a
// sync of 100,000 pods stays near that peak rather than near what it
// holds (docs/limits.md). One forced collection after the pod view's
// first list, and one after each leadership term's first lists.
func releaseAfterSync(ctx context.Context, synced func() bool, log *zap.Logger) {
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return synced(), nil
	}); err != nil {
		return
	}
	began := time.Now()
	debug.FreeOSMemory()
	log.Info("returned the first list's memory to the OS", zap.Duration("took", time.Since(began)))
}
