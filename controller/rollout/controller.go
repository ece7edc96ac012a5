package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/view/progress"
)

const queueKey = "rollout"

// pollEvery brings a pass back while a step's migration moves workloads:
// its progress lands in the status object, which the pass reads.
const pollEvery = 2 * time.Second

// StatusIO reads and merges keys of the status object (the one the
// migration keeps its progress in) and records Events on it.
type StatusIO interface {
	// Load returns nil data (and no error) when the object does not exist.
	Load(ctx context.Context) (map[string]string, error)
	Save(ctx context.Context, data map[string]string) error
	Event(warning bool, reason, message string)
}

// PodCounts is the live pod view (podview.View).
type PodCounts interface {
	Revisions() []podview.RevisionCount
	Synced() bool
}

// HealthSource gives the proxies' health by injected revision, nil until
// synced (HealthInformer).
type HealthSource interface {
	Health() map[string]ProxyHealth
}

// Options configures a Controller.
type Options struct {
	// Base is the operator's policy as applied (inforce.Store.Base);
	// Effective the one routing, with the weights in force
	// (inforce.Store.Load), whose digest the migration works under.
	Base, Effective func() *inforce.Snapshot
	Istio           func() *istio.State
	Pods            PodCounts
	Health          HealthSource
	Querier         Querier
	// PrometheusAllowed is the router's allowlist of Prometheus URLs
	// (serve --prometheus-allowed-url); a plan's URL not on it is never
	// queried and its gates are unknown.
	PrometheusAllowed []string
	Status            StatusIO
	Now               func() time.Time
	Registerer        prometheus.Registerer
	Log               *zap.Logger
}

// Controller walks the rollout: a level-triggered loop over one workqueue
// key. Run it only on the leader, next to the migration.
type Controller struct {
	o       Options
	queue   workqueue.TypedRateLimitingInterface[string]
	metrics *metrics
	// last is the last state this process read or wrote, kept across
	// leadership terms: the leader's own memory that a rollout ran, so a
	// status object deleted under it reads as lost, not as a new rollout.
	last *State
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
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "rollout"})}
}

// With returns a controller for a new leadership term, keeping the
// registered metrics (a registry takes a collector once).
func (c *Controller) With(o Options) *Controller {
	o.Registerer = nil
	n := New(o)
	n.metrics = c.metrics
	n.last = c.last
	return n
}

// Enqueue asks for a pass.
func (c *Controller) Enqueue() { c.queue.Add(queueKey) }

// Run runs passes until ctx ends; a slow tick brings a pass back when no
// requeue does (a policy edit, an operator command).
func (c *Controller) Run(ctx context.Context) {
	controller.RunPasses(ctx, c.queue, queueKey, 5*time.Second, c.o.Log, "rollout", func(ctx context.Context) (time.Duration, error) {
		r, err := c.Pass(ctx)
		return r.RequeueAfter, err
	})
}

// Pass reads the world, steps the rollout and writes what the step asks,
// all in one merge patch of the status object: the state, the weights in
// force and, when asked, the migration's resume. A crash before the patch
// repeats the pass; after it, the next pass reads what was written.
func (c *Controller) Pass(ctx context.Context) (Result, error) {
	base := c.o.Base()
	if base == nil {
		return Result{}, nil
	}
	data, err := c.o.Status.Load(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("reading the status object: %w", err)
	}
	prev, ctl := Decode(data)
	now := c.o.Now()
	in := Input{Policy: base.Policy, Now: now, Control: ctl}
	if prev == nil && base.Policy.Rollout != nil {
		in.Lost = c.lost(data, base.Policy)
	}
	if plan := base.Policy.Rollout; plan != nil && in.Lost == nil {
		in.Migration = c.migration(data, prev, now)
		if prev == nil || Due(prev, plan, ctl, now) {
			// Pods are judged whenever the step's migration is done, in a
			// pause too: a pause for missing pod data that measured
			// "not judged" would resume, find no data in the hold, and
			// pause again, round and round.
			rolling := prev == nil || prev.Phase == PhaseProgressing || in.Migration.State != MigrationDone
			in.Gates = c.measure(ctx, base.Policy, rolling, prev)
		}
	}
	res := Step(in, prev)
	write := map[string]string{}
	if res.State == nil {
		for _, k := range []string{StateKey, WeightsKey} {
			if data[k] != "" {
				write[k] = "" // the plan was removed: the policy's weights route
			}
		}
	} else {
		if enc := res.State.Encode(); enc != data[StateKey] {
			write[StateKey] = enc
		}
		if enc := res.State.Overlay().Encode(); enc != data[WeightsKey] {
			write[WeightsKey] = enc
		}
	}
	if res.ResumeMigration && data[migrate.PausedKey] == "true" {
		write[migrate.PausedKey], write[migrate.PauseReasonKey] = "false", ""
	}
	if res.PauseMigration != "" {
		write[migrate.PausedKey], write[migrate.PauseReasonKey] = "true", res.PauseMigration
	}
	if len(write) > 0 {
		if err := c.o.Status.Save(ctx, write); err != nil {
			return res, fmt.Errorf("writing the status object: %w", err)
		}
	}
	c.last = nil
	if res.State != nil {
		st := res.State.clone()
		c.last = &st
	}
	c.metrics.observe(base.Policy, res.State, res.Events)
	for _, e := range res.Events {
		c.o.Status.Event(e.Warning, e.Reason, e.Message)
		log := c.o.Log.Info
		if e.Warning {
			log = c.o.Log.Warn
		}
		log("rollout: "+e.Message, zap.String("reason", e.Reason))
	}
	if st := res.State; st != nil && (st.Phase == PhaseProgressing || st.Phase == PhaseRollingBack || st.Phase == PhaseHolding) {
		if res.RequeueAfter == 0 || res.RequeueAfter > pollEvery {
			res.RequeueAfter = pollEvery
		}
	}
	return res, nil
}

// lost tells a rollout whose state is gone from one never started, when
// the status object holds no readable state for a plan: an unreadable
// state key, weights in force without a state, this process's memory of
// the same rollout, or this replica still routing by its weights each
// show it ran. With none of them (a new plan, or a status object deleted
// while no replica remembered) it is a new rollout.
func (c *Controller) lost(data map[string]string, p *policy.Policy) *Lost {
	id := p.RolloutID()
	var why string
	var l Lost
	overlay := inforce.DecodeOverlay(data[WeightsKey])
	eff := c.o.Effective()
	switch {
	case data[StateKey] != "":
		why = "the rollout state in the status object is unreadable"
	case data[WeightsKey] != "":
		why = "the status object holds weights in force but no rollout state"
	case c.last != nil && c.last.ID == id:
		why = "the rollout state disappeared from the status object"
		if data == nil {
			why = "the status object was deleted"
		}
	case eff != nil && eff.Rollout != nil && eff.Rollout.ID == id:
		why = "the status object holds no rollout state, yet this replica routes by its weights"
	default:
		return nil
	}
	l.Why = why
	switch {
	case c.last != nil && c.last.ID == id:
		l.Weights, l.Attempt = c.last.Weights, c.last.Attempt
	case overlay != nil && overlay.ID == id:
		l.Weights, l.Attempt = overlay.Weights, overlay.Attempt
	case eff != nil && eff.Rollout != nil && eff.Rollout.ID == id:
		l.Weights, l.Attempt = eff.Rollout.Weights, eff.Rollout.Attempt
	}
	return &l
}

// migration reads the migration's outcome for the weights in force. It
// counts only when every link holds: this replica's store routes by the
// weights the state put in force (the overlay went through the API
// server and back), and the migration's status is for that snapshot's
// digest. Anything else is pending: a stale "done" must never advance.
func (c *Controller) migration(data map[string]string, st *State, now time.Time) Migration {
	eff := c.o.Effective()
	if st == nil || eff == nil || eff.Rollout == nil || eff.Rollout.ID != st.ID ||
		eff.Rollout.Attempt != st.Attempt || !slices.Equal(eff.Rollout.Weights, st.Weights) {
		return Migration{State: MigrationPending}
	}
	mst, mctl := migrate.DecodeStatus(data)
	if mst.Digest != eff.Digest {
		return Migration{State: MigrationPending}
	}
	// A batch that failed pauses the migration with "batch N failed: ...";
	// an operator's `migrate pause` is a wait, not a failure.
	if mctl.Paused && strings.HasPrefix(mctl.PauseReason, "batch ") {
		return Migration{State: MigrationFailed, Reason: mctl.PauseReason}
	}
	if mst.Phase != migrate.PhaseComplete || mctl.Paused {
		return Migration{State: MigrationPending}
	}
	if mst.Skipped == 0 {
		return Migration{State: MigrationDone}
	}
	// Skips by reason, read from the JSON so this also works with a
	// status written before the migration recorded reasons.
	var reasons struct {
		SkippedByReason map[string]int `json:"skippedByReason"`
	}
	if json.Unmarshal([]byte(data[migrate.StatusKey]), &reasons) == nil && reasons.SkippedByReason != nil {
		// An unavailable workload or a target that is down has not moved:
		// the step waits (the stuck-rollout alert says so after an hour).
		// Opted-out, paused and zero-replica workloads are the operator's
		// choice and do not hold the step.
		if n := reasons.SkippedByReason[string(migrate.SkipUnavailable)] + reasons.SkippedByReason[string(migrate.SkipTargetDown)]; n > 0 {
			return Migration{State: MigrationPending}
		}
		return Migration{State: MigrationDone}
	}
	{
		// Without reasons: a workload skipped as unavailable may only be
		// finishing a rollout, and the migration moves it on a later
		// pass, so a complete migration with skips counts once it has
		// stayed complete for skipSettle.
		since := time.Time{}
		for _, cond := range mst.Conditions {
			if cond.Type == "Complete" && cond.Status == "True" {
				since = cond.LastTransitionTime.Time
			}
		}
		if since.IsZero() || now.Sub(since) < skipSettle {
			return Migration{State: MigrationPending}
		}
	}
	return Migration{State: MigrationDone}
}

// skipSettle is how long a migration that skipped workloads must stay
// complete before its step counts as migrated: longer than the
// migration's own re-plan tick (10 s), so a workload skipped while still
// rolling is moved first.
const skipSettle = 30 * time.Second

// measure runs every gate of the plan.
func (c *Controller) measure(ctx context.Context, p *policy.Policy, rolling bool, prev *State) []GateResult {
	plan := p.Rollout
	state := c.o.Istio()
	var stable []string
	for _, t := range p.Targets {
		if t.Revision != plan.Canary {
			stable = append(stable, t.Revision)
		}
	}
	idle := prev != nil
	if prev != nil {
		for _, t := range prev.Weights {
			if t.Revision == plan.Canary && t.Weight > 0 {
				idle = false
			}
		}
	}
	in := BuiltinInput{Canary: plan.Canary, Istio: state, Stable: stable, Gates: plan.Gates, Rolling: rolling, Idle: idle}
	if c.o.Pods != nil {
		in.Pods, in.PodsSynced = c.o.Pods.Revisions(), c.o.Pods.Synced()
	}
	if c.o.Health != nil {
		in.Health = c.o.Health.Health()
	}
	out := Builtin(in)
	if plan.Gates.Prometheus != nil && c.o.Querier != nil {
		var resolve progress.Resolver
		if state != nil {
			resolve = func(name string) string { return state.Target(name).Revision }
		}
		vars := policy.QueryVars{Revision: progress.Expected(plan.Canary, resolve), Canary: plan.Canary}
		if len(stable) > 0 {
			vars.Stable = progress.Expected(stable[0], resolve)
		}
		out = append(out, Queries(ctx, c.o.Querier, plan.Gates.Prometheus, vars, c.o.PrometheusAllowed)...)
	}
	return out
}
