package controller

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"
)

// RunPasses runs pass for the one key of a controller that reconciles its
// whole world per pass (the migration, the rollout), until ctx ends. A
// ticker adds the key every tick, because the policy and the Istio state
// reach these controllers as snapshots rather than events; a pass that
// asks to come back (requeueAfter > 0) is added after that delay; a failed
// pass is retried with the queue's backoff. The queue is shut down on
// return.
func RunPasses(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], key string, tick time.Duration,
	log *zap.Logger, what string, pass func(context.Context) (requeueAfter time.Duration, err error)) {
	defer q.ShutDown()
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			q.Add(key)
			select {
			case <-ctx.Done():
				q.ShutDown()
				return
			case <-t.C:
			}
		}
	}()
	for {
		k, quit := q.Get()
		if quit {
			return
		}
		after, err := pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn(what+" pass failed; retrying", zap.Error(err))
			q.AddRateLimited(k)
		case after > 0:
			q.Forget(k)
			q.AddAfter(k, after)
		default:
			q.Forget(k)
		}
		q.Done(k)
	}
}
