package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// queueKey is the one item in the queue: every pass plans the whole
// cluster, so events only need to say "look again".
const queueKey = "migration"

// coalesce batches a burst of informer events (a rollout moves every pod
// of a workload) into one pass.
const coalesce = time.Second

// Source is a synced informer-backed list.
type Source[T any] interface {
	HasSynced() bool
	List() T
}

// PodSource gives pod counts per unit.
type PodSource interface {
	HasSynced() bool
	Counts() map[Ref]PodCounts
}

// Options configures a Controller.
type Options struct {
	Policy     func() *inforce.Snapshot
	Istio      func() *istio.State
	Namespaces func() []Namespace
	Workloads  Source[[]Workload]
	Pods       PodSource
	Writer     Writer
	// Settings, when set, overrides the policy's migration block and
	// runs even without one (the CLI's --apply); nil follows the policy,
	// and a policy without an enabled block migrates nothing.
	Settings   *Settings
	Now        func() time.Time
	Registerer prometheus.Registerer
	Log        *zap.Logger
}

// Controller runs the migration: a level-triggered loop over one
// workqueue key. Run it only on the leader.
type Controller struct {
	o       Options
	queue   workqueue.TypedRateLimitingInterface[string]
	metrics *metrics
}

// New returns a Controller; Run starts it.
func New(o Options) *Controller {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &Controller{o: o, metrics: newMetrics(o.Registerer),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "migration"})}
}

// Handler returns an informer handler that asks for a pass.
func (c *Controller) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.Enqueue() },
		UpdateFunc: func(any, any) { c.Enqueue() },
		DeleteFunc: func(any) { c.Enqueue() },
	}
}

// Enqueue asks for a pass soon.
func (c *Controller) Enqueue() { c.queue.AddAfter(queueKey, coalesce) }

// Run runs passes until ctx ends. The policy and Istio state arrive as
// snapshots, not events, so a slow poll brings the pass back too.
func (c *Controller) Run(ctx context.Context) {
	controller.RunPasses(ctx, c.queue, queueKey, 10*time.Second, c.o.Log, "migration", func(ctx context.Context) (time.Duration, error) {
		r, err := c.Pass(ctx)
		return r.RequeueAfter, err
	})
}

// Pass reads the world, steps the migration and writes what the step
// asks. Status goes first: a crash after it repeats the same restarts
// (idempotent) instead of forgetting them.
func (c *Controller) Pass(ctx context.Context) (Result, error) {
	in, set, ok := c.input()
	if !ok {
		return Result{RequeueAfter: time.Second}, nil
	}
	if set == nil {
		if in.Policy == nil {
			return Result{}, nil
		}
		return Result{}, c.observeIdle(ctx, in)
	}
	plan := NewPlan(in, set.BatchSize)
	data, err := c.o.Writer.LoadStatus(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("reading the status object: %w", err)
	}
	st, ctl := DecodeStatus(data)
	r := Step(in, plan, st, ctl, *set, c.o.Now())
	c.metrics.observe(plan, r.Status)
	write := map[string]string{}
	if enc := r.Status.Encode(); enc != data[StatusKey] {
		write[StatusKey] = enc
	}
	if r.Pause != "" {
		write[PausedKey], write[PauseReasonKey] = "true", r.Pause
	}
	if len(write) > 0 {
		if err := c.o.Writer.SaveStatus(ctx, write); err != nil {
			return r, fmt.Errorf("writing the status object: %w", err)
		}
	}
	if err := c.apply(ctx, in, r); err != nil {
		return r, err
	}
	return r, nil
}

// apply makes the step's writes: relabels, restarts, failure Events.
func (c *Controller) apply(ctx context.Context, in Input, r Result) error {
	snap, state := c.o.Policy(), c.o.Istio()
	nsVersion := make(map[string]string, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		nsVersion[ns.Name] = ns.ResourceVersion
	}
	for _, ns := range r.Relabel {
		tagRev := ""
		if st := state.Target(ns.To); st.Tag {
			tagRev = st.Revision
		}
		decision := inforce.DecisionAnnotation(ns.To, policy.ReasonSticky, "Namespace", tagRev, snap)
		if err := c.o.Writer.Relabel(ctx, ns.Name, nsVersion[ns.Name], ns.To, decision); err != nil {
			return fmt.Errorf("relabelling namespace %s: %w", ns.Name, err)
		}
		c.o.Log.Info("namespace relabelled for migration", zap.String("namespace", ns.Name), zap.String("from", ns.From), zap.String("to", ns.To))
	}
	version := make(map[Ref]string, len(in.Workloads))
	for _, w := range in.Workloads {
		version[w.Ref] = w.ResourceVersion
	}
	for _, m := range r.Restart {
		if err := c.o.Writer.Restart(ctx, m.Ref, version[m.Ref], in.Digest, r.RestartedAt); err != nil {
			return fmt.Errorf("restarting %s: %w", m.Ref, err)
		}
		c.metrics.restarts.Inc()
		to := m.To
		if to == "" {
			to = "the policy's split"
		}
		c.o.Writer.Event(m.Ref, false, "MigrationRestart", fmt.Sprintf("canary-router restarted it to move its pods to %s: %s", to, m.Why))
		c.o.Log.Info("workload restarted for migration", zap.Stringer("workload", m.Ref), zap.String("to", m.To), zap.String("why", m.Why))
	}
	for _, f := range r.Failed {
		c.o.Writer.Event(f.Ref, true, "MigrationFailed", "canary-router paused the migration: "+f.Reason)
		c.o.Log.Warn("migration paused: batch failed", zap.Stringer("workload", f.Ref), zap.String("reason", f.Reason))
	}
	return nil
}

// input reads one Input from the caches; ok is false until they have
// synced. set is nil when nothing should migrate.
func (c *Controller) input() (Input, *Settings, bool) {
	snap := c.o.Policy()
	if snap == nil {
		return Input{}, nil, true
	}
	set := c.o.Settings
	if set == nil {
		if m := snap.Policy.Migration; m != nil && m.Enabled {
			s := SettingsOf(*m)
			set = &s
		}
	}
	if c.o.Istio == nil || c.o.Workloads == nil || c.o.Pods == nil {
		return Input{}, nil, true // nothing to read the cluster from
	}
	state := c.o.Istio()
	if state == nil || !c.o.Workloads.HasSynced() || !c.o.Pods.HasSynced() {
		return Input{}, nil, false
	}
	return Input{Policy: snap.Policy, Digest: snap.Digest, Revisions: LiveRevisions(snap.Policy, state),
		Namespaces: c.o.Namespaces(), Workloads: c.o.Workloads.List(), Pods: c.o.Pods.Counts()}, set, true
}

// LiveRevisions maps each available target to the revision that injects
// for it (a tag resolves to its revision).
func LiveRevisions(p *policy.Policy, state *istio.State) map[string]string {
	out := make(map[string]string, len(p.Targets))
	for _, t := range p.Targets {
		st := state.Target(t.Revision)
		if !st.Available() {
			continue
		}
		rev := t.Revision
		if st.Tag && st.Revision != "" {
			rev = st.Revision
		}
		out[t.Revision] = rev
	}
	return out
}

// With returns a controller for a new leadership term with fresh sources,
// keeping the registered metrics (a registry takes a collector once).
func (c *Controller) With(o Options) *Controller {
	n := New(Options{Log: o.Log})
	o.Registerer = nil
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	n.o, n.metrics = o, c.metrics
	return n
}

// observeIdle keeps the drift visible while migration is off: the plan's
// pending moves in the metrics and, when they change, in the status
// object (phase Idle), which `canary-router status` shows. Nothing is
// restarted.
func (c *Controller) observeIdle(ctx context.Context, in Input) error {
	plan := NewPlan(in, 1)
	st := Status{Digest: in.Digest, Phase: PhaseIdle, Pending: len(plan.Moves), Skipped: len(plan.Skipped),
		Reported: len(plan.Reported), Done: len(plan.Done)}
	if len(plan.Pending) > 0 {
		st.PendingByTarget = plan.Pending
	}
	st.Total = st.Done + st.Pending
	c.metrics.observe(plan, st)
	data, err := c.o.Writer.LoadStatus(ctx)
	if err != nil {
		return fmt.Errorf("reading the status object: %w", err)
	}
	old, _ := DecodeStatus(data)
	if old.Digest == st.Digest && old.Phase != PhaseIdle {
		// The operator switched the block off mid-migration: its record
		// stays as it was.
		return nil
	}
	if enc := st.Encode(); enc != data[StatusKey] {
		return c.o.Writer.SaveStatus(ctx, map[string]string{StatusKey: enc})
	}
	return nil
}
