package controller

import (
	"context"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease timings. A replica that stops cleanly releases the Lease at once;
// one that dies holds it until LeaseDuration passes, which bounds how long
// its controllers' work waits for the next leader.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
)

// LeaderOptions configures RunAsLeader.
type LeaderOptions struct {
	Client kubernetes.Interface
	// Namespace and Name locate the Lease.
	Namespace, Name string
	// Identity names this replica in the Lease (its pod name).
	Identity string
	Log      *zap.Logger
	// OnLeading runs while this replica leads; its context ends when
	// leadership is lost or ctx ends.
	OnLeading func(ctx context.Context)
}

// RunAsLeader takes part in leader election until ctx ends, running
// OnLeading each time this replica becomes the leader. Only one replica of
// the router writes; every replica keeps serving admissions.
func RunAsLeader(ctx context.Context, o LeaderOptions) {
	lock := &resourcelock.LeaseLock{
		Client:     o.Client.CoordinationV1(),
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   LeaseDuration,
			RenewDeadline:   RenewDeadline,
			RetryPeriod:     RetryPeriod,
			ReleaseOnCancel: true,
			Name:            o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					o.Log.Info("leading: controllers started", zap.String("lease", o.Namespace+"/"+o.Name), zap.String("identity", o.Identity))
					o.OnLeading(ctx)
				},
				OnStoppedLeading: func() {
					o.Log.Info("no longer leading: controllers stopped", zap.String("identity", o.Identity))
				},
			},
		})
		if err != nil {
			o.Log.Error("leader election misconfigured; controllers do not run", zap.Error(err))
			return
		}
		le.Run(ctx)
	}
}
