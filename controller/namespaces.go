package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
)

// Namespaces is the reconciler's view of namespaces (nsview.View).
type Namespaces interface {
	Get(name string) (nsview.Namespace, bool)
	List() []nsview.Namespace
	HasSynced() bool
}

// NamespacePatcher writes a JSON merge patch to a namespace.
type NamespacePatcher interface {
	PatchNamespace(ctx context.Context, name string, mergePatch []byte) error
}

var _ Namespaces = (*nsview.View)(nil)

// NamespaceOptions configures a NamespaceReconciler.
type NamespaceOptions struct {
	Namespaces Namespaces
	Patcher    NamespacePatcher
	// Policy returns the policy in force, nil before the first one.
	Policy func() *inforce.Snapshot
	// Istio returns the live Istio state, nil before the first lists.
	Istio func() *istio.State
	// OwnNamespace is never touched.
	OwnNamespace string
	// Resync re-examines every namespace this often, and Poll is how
	// often the policy and Istio state are compared with the last pass
	// (and sampled for outages).
	Resync, Poll time.Duration
	// Now is the clock outages are timed by; nil is time.Now.
	Now        func() time.Time
	Registerer prometheus.Registerer
	Log        *zap.Logger
}

// NamespaceReconciler converts namespaces the namespace webhook missed and
// moves router-routed namespaces off revisions that stopped answering
// (policy.RepairNamespace). Without it a namespace created while the
// router was down, or opted in with a label it already carried, would stay
// unrouted until some later UPDATE.
type NamespaceReconciler struct {
	o NamespaceOptions
	// queue is the running term's, nil between terms: a queue that was
	// shut down takes nothing more, so each term has its own.
	queue   atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]
	patches *prometheus.CounterVec
	// outages is the running term's own record of revision health;
	// pace spaces the namespace moves an outage causes.
	outages atomic.Pointer[outages]
	pace    pacer
}

// Reconcile outcomes, the label values of the patches metric.
const (
	outcomeRouted   = "routed"
	outcomeOptedIn  = "opted_in"
	outcomeConflict = "error"
)

// NewNamespaceReconciler returns a reconciler; Run starts it.
func NewNamespaceReconciler(o NamespaceOptions) *NamespaceReconciler {
	if o.Resync == 0 {
		o.Resync = time.Minute
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &NamespaceReconciler{
		o: o,
		patches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canary_router_namespace_repairs_total",
			Help: "Namespaces the reconciler changed (routed, opted_in) or failed to change (error): ones the namespace webhook missed, or routed to a revision that stopped answering.",
		}, []string{"outcome"}),
	}
	for _, o := range []string{outcomeRouted, outcomeOptedIn, outcomeConflict} {
		r.patches.WithLabelValues(o)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.patches)
	}
	return r
}

// Enqueue asks for one namespace to be examined (dropped between terms:
// each term starts by examining every namespace).
func (r *NamespaceReconciler) Enqueue(name string) {
	if q := r.queue.Load(); q != nil {
		(*q).Add(name)
	}
}

// Run reconciles until ctx ends. Call it only while holding the leader
// Lease: it writes, each write checked against term (nil: unfenced).
func (r *NamespaceReconciler) Run(ctx context.Context, term *Term) {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespaces"})
	r.queue.Store(&q)
	// A new term trusts no outage it did not watch itself.
	r.outages.Store(newOutages())
	defer func() {
		r.queue.CompareAndSwap(&q, nil)
		q.ShutDown()
	}()
	go r.watchInputs(ctx, q)
	for r.next(ctx, q, term) {
	}
}

// watchInputs re-examines every namespace when the policy or the Istio
// state changes, and every Resync. Both are immutable snapshots, so a
// pointer comparison tells a change.
func (r *NamespaceReconciler) watchInputs(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) {
	poll := time.NewTicker(r.o.Poll)
	defer poll.Stop()
	var lastSnap *inforce.Snapshot
	var lastState *istio.State
	lastAll := time.Time{}
	for {
		snap, state := r.o.Policy(), r.o.Istio()
		if snap != nil {
			for _, t := range snap.Policy.Targets {
				r.outages.Load().observe(state, r.o.Now(), t.Revision)
			}
		}
		if r.o.Namespaces.HasSynced() && (snap != lastSnap || state != lastState || time.Since(lastAll) >= r.o.Resync) {
			lastSnap, lastState, lastAll = snap, state, time.Now()
			for _, ns := range r.o.Namespaces.List() {
				q.Add(ns.Name)
			}
		}
		select {
		case <-ctx.Done():
			// Run waits in q.Get: without this a term whose queue is
			// empty never ends, and the replica never campaigns again.
			q.ShutDown()
			return
		case <-poll.C:
		}
	}
}

func (r *NamespaceReconciler) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], term *Term) bool {
	name, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(name)
	retry, err := r.reconcile(ctx, name, term)
	if err != nil {
		r.patches.WithLabelValues(outcomeConflict).Inc()
		r.o.Log.Warn("namespace not repaired; retrying", zap.String("namespace", name), zap.Error(err))
		q.AddRateLimited(name)
		return ctx.Err() == nil
	}
	q.Forget(name)
	if retry > 0 {
		q.AddAfter(name, retry)
	}
	return true
}

// reconcile examines one namespace and writes what RepairNamespace asks;
// retry is when to look again though nothing changes.
func (r *NamespaceReconciler) reconcile(ctx context.Context, name string, term *Term) (retry time.Duration, err error) {
	ns, ok := r.o.Namespaces.Get(name)
	snap, state := r.o.Policy(), r.o.Istio()
	if !ok || ns.Deleting || name == r.o.OwnNamespace || snap == nil || state == nil {
		return 0, nil
	}
	p := snap.Policy
	down := make([]bool, len(p.Targets))
	for i, t := range p.Targets {
		down[i] = !state.Target(t.Revision).Available()
	}
	rev, home := ns.Labels[policy.LabelIstioRev], ns.Annotations[policy.AnnotationFailoverFrom]
	now := r.o.Now()
	seen := r.outages.Load()
	if seen == nil {
		seen = newOutages() // outside Run (tests): nothing was watched
	}
	seen.observe(state, now, rev, home)
	h := policy.NamespaceHealth{}
	if rev != "" {
		h.Live = state.Target(rev).Available()
		h.DownFor = seen.downFor(rev, now)
	}
	if home != "" {
		h.HomeUpFor = seen.upFor(home, now)
	}
	d := p.RepairNamespace(policy.NamespaceSubject{Name: name, Labels: ns.Labels, Annotations: ns.Annotations, Down: down}, h)
	if d.Action == policy.NamespaceNone {
		return d.Retry, nil
	}
	if d.FailoverFrom != "" || (d.ClearFailover && d.Revision != rev) {
		if wait := r.pace.take(now, p.Failover().MaxPerMinute); wait > 0 {
			return wait, nil
		}
	}
	patch, outcome, err := repairPatch(ns, d, snap, state)
	if err != nil {
		return 0, err
	}
	if term != nil {
		if err := term.Check(); err != nil {
			return 0, err
		}
	}
	if err := r.o.Patcher.PatchNamespace(ctx, name, patch); err != nil {
		return 0, fmt.Errorf("patching namespace %s: %w", name, err)
	}
	r.patches.WithLabelValues(outcome).Inc()
	r.o.Log.Info("namespace repaired", zap.String("namespace", name), zap.String("outcome", outcome),
		zap.String("revision", d.Revision), zap.String("reason", string(d.Reason)), zap.String("failoverFrom", d.FailoverFrom),
		zap.Bool("movedBack", d.ClearFailover), zap.Strings("why", d.Warnings))
	return 0, nil
}

// repairPatch is the merge patch for a decision: the same labels the
// namespace webhook writes, and its decision annotation. It carries the
// resourceVersion the decision was made on, so a namespace changed since
// is not overwritten: the patch fails with a conflict and the namespace is
// examined again.
func repairPatch(ns nsview.Namespace, d policy.NamespaceDecision, snap *inforce.Snapshot, state *istio.State) ([]byte, string, error) {
	labels := map[string]any{}
	if _, ok := ns.Labels[policy.LabelIstioInjection]; ok {
		labels[policy.LabelIstioInjection] = nil
	}
	outcome := outcomeOptedIn
	tagRev := ""
	if d.Action == policy.NamespaceRoute {
		labels[policy.LabelIstioRev] = d.Revision
		outcome = outcomeRouted
		if st := state.Target(d.Revision); st.Tag {
			tagRev = st.Revision
		}
	} else {
		labels[policy.LabelOptIn] = policy.OptInEnabled
	}
	annotations := map[string]any{
		policy.AnnotationDecision: inforce.DecisionAnnotation(d.Revision, d.Reason, "Namespace", tagRev, snap),
	}
	switch {
	case d.FailoverFrom != "":
		annotations[policy.AnnotationFailoverFrom] = d.FailoverFrom
	case d.ClearFailover:
		annotations[policy.AnnotationFailoverFrom] = nil
	}
	patch := map[string]any{"metadata": map[string]any{
		"resourceVersion": ns.ResourceVersion,
		"labels":          labels,
		"annotations":     annotations,
	}}
	b, err := json.Marshal(patch)
	return b, outcome, err
}
