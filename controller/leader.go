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
	// leadership is lost or ctx ends. Every write it makes goes through
	// the term (Term.Check, Term.Fence).
	OnLeading func(ctx context.Context, term *Term)
	// Now is the clock the term's Lease freshness is judged by; nil is
	// time.Now.
	Now func() time.Time
}

// RunAsLeader takes part in leader election until ctx ends, running
// OnLeading each time this replica becomes the leader. Only one replica of
// the router writes; every replica keeps serving admissions.
//
// client-go's elector starts OnStartedLeading in a goroutine and returns
// without waiting for it when the Lease is lost, so each election here
// runs under its own context and the next one starts only after the last
// term's controllers have returned: two terms of one replica never
// overlap.
func RunAsLeader(ctx context.Context, o LeaderOptions) {
	if o.Now == nil {
		o.Now = time.Now
	}
	for ctx.Err() == nil {
		if !runElection(ctx, o) {
			return
		}
	}
}

// runElection campaigns once, leads if it wins, and returns when that
// term (and every controller of it) is over; false on a misconfiguration.
func runElection(ctx context.Context, o LeaderOptions) bool {
	lock := &trackingLock{now: o.Now, Interface: &resourcelock.LeaseLock{
		Client:     o.Client.CoordinationV1(),
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}}
	electionCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	termDone := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   LeaseDuration,
		RenewDeadline:   RenewDeadline,
		RetryPeriod:     RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(termCtx context.Context) {
				defer close(termDone)
				tok, _ := lock.token()
				term := NewTerm(termCtx, cancel, tok, lock)
				o.Log.Info("leading: controllers started", zap.String("lease", o.Namespace+"/"+o.Name),
					zap.String("identity", o.Identity), zap.Int32("term", tok.Transitions))
				o.OnLeading(termCtx, term)
			},
			OnStoppedLeading: func() {
				o.Log.Info("no longer leading: stopping controllers", zap.String("identity", o.Identity))
			},
		},
	})
	if err != nil {
		o.Log.Error("leader election misconfigured; controllers do not run", zap.Error(err))
		return false
	}
	le.Run(electionCtx)
	if lock.everHeld() {
		// The elector started OnStartedLeading (it does so right after
		// winning) and cancelled its context on the way out.
		<-termDone
		o.Log.Info("term over: controllers stopped", zap.String("identity", o.Identity))
	}
	return true
}
