package rollout

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/canary-router/canary-router/policy"
)

// MigrationState is how the migration stands for the weights in force.
type MigrationState int

// Migration states.
const (
	// MigrationPending: not yet started for these weights, or rolling.
	MigrationPending MigrationState = iota
	// MigrationDone: nothing drifted is left for these weights.
	MigrationDone
	// MigrationFailed: a batch failed (Migration.Reason says which).
	MigrationFailed
)

// Migration is the migration's outcome for the weights in force.
type Migration struct {
	State  MigrationState
	Reason string
}

// Input is one pass's view: the plan, the time, the gate measurements
// (nil when none was due, see Due), the migration for the weights in
// force, and the operator's controls.
type Input struct {
	Policy    *policy.Policy
	Now       time.Time
	Gates     []GateResult
	Migration Migration
	Control   Control
	// Lost, with no previous state, says the state of this rollout was
	// lost (Lost): the rollout stops instead of starting again.
	Lost *Lost
}

// Lost describes a rollout whose state the status object no longer
// holds, though something shows it ran: the unreadable key, weights in
// force without a state, or the leader's own memory of it.
type Lost struct {
	// Why says what showed the loss.
	Why string
	// Weights are the weights in force as last known; nil: unknown (the
	// policy's targets route).
	Weights []policy.Target
	Attempt int
}

// Event is an Event to record on the status object.
type Event struct {
	Warning         bool
	Reason, Message string
}

// Result is what a pass asks its caller to do: write State (and its
// weights) to the status object, resume the migration when asked (a
// rollback or a retry needs it running even after one of its batches
// paused it), record Events, and look again after RequeueAfter (0: on
// the next change).
type Result struct {
	// State is nil when the policy has no rollout: the caller removes it,
	// and the policy's own weights route.
	State *State
	// WeightsChanged: new weights are in force; the migration moves the
	// workloads they move (it follows the effective policy on its own).
	WeightsChanged  bool
	ResumeMigration bool
	// PauseMigration, when set, pauses the migration with this reason.
	PauseMigration string
	Events         []Event
	RequeueAfter   time.Duration
}

// Step advances the rollout by one pass. It is pure: the controller feeds
// it from informers, Prometheus and the status object, and a unit test
// drives every transition with a fake clock and fake gate results.
func Step(in Input, prev *State) Result {
	if in.Policy == nil {
		return Result{}
	}
	if in.Policy.Rollout == nil {
		return removed(in, prev)
	}
	m := machine{in: in, plan: in.Policy.Rollout}
	if prev == nil && in.Lost != nil {
		m.stateLost(in.Lost)
		m.res.State = &m.st
		m.st.setCondition(in.Now, "Progressing", false, string(m.st.Phase), m.st.Reason)
		return m.res
	}
	if prev == nil || prev.ID != in.Policy.RolloutID() {
		// No rollout yet, or the canary or the targets changed: a new
		// rollout from step 0.
		// A command already in the status object was meant for an
		// earlier rollout: it must not replay on this one.
		m.st = State{ID: in.Policy.RolloutID(), LastPassed: -1, LastRequest: in.Control.RequestID}
		m.enter(0, "RolloutStarted", "rollout of "+m.plan.Canary+" started")
	} else {
		m.st = prev.clone()
	}
	m.request()
	m.followPlan()
	if m.res.WeightsChanged {
		// The migration's outcome is for the weights before this pass.
		m.in.Migration = Migration{State: MigrationPending}
	}
	m.run()
	m.res.State = &m.st
	m.res.RequeueAfter = m.requeue()
	m.st.setCondition(in.Now, "Progressing", m.st.Phase == PhaseProgressing || m.st.Phase == PhaseHolding, string(m.st.Phase), m.st.Reason)
	return m.res
}

// removed handles a policy whose rollout block is gone. A completed
// rollout keeps routing at its final weights until the policy's targets
// say the same: removing the block is how an operator tidies up after a
// rollout, and sending routing back to stale targets (often the old
// revision at 100) would make the migration restart every workload back.
// Once the targets agree, or name other revisions (a new policy, not a
// tidy-up), the state goes and the targets route.
func removed(in Input, prev *State) Result {
	if prev == nil || prev.Phase != PhaseComplete || slices.Equal(prev.Weights, in.Policy.Targets) ||
		!policy.SameRevisions(prev.Weights, in.Policy.Targets) {
		return Result{}
	}
	st := prev.clone()
	res := Result{State: &st}
	if !st.Retained {
		st.Retained = true
		res.Events = append(res.Events, Event{Warning: true, Reason: "RolloutBlockRemoved",
			Message: fmt.Sprintf("the rollout block was removed after Complete: routing stays at the completed weights %s until targets say the same (they say %s), so no workload is moved back",
				FormatWeights(st.Weights), FormatWeights(in.Policy.Targets))})
	}
	return res
}

// machine is one pass of Step.
type machine struct {
	in   Input
	plan *policy.Rollout
	st   State
	res  Result
}

func (m *machine) event(warning bool, reason, msg string) {
	m.res.Events = append(m.res.Events, Event{Warning: warning, Reason: reason, Message: msg})
}

func (m *machine) setPhase(p Phase, reason string) {
	if m.st.Phase != p {
		m.st.LastTransition = m.in.Now
	}
	m.st.Phase, m.st.Reason = p, reason
}

func (m *machine) setWeights(w []policy.Target) {
	if !slices.Equal(m.st.Weights, w) {
		m.st.Weights = slices.Clone(w)
		m.res.WeightsChanged = true
	}
}

// enter puts step i's weights in force and starts it afresh.
func (m *machine) enter(i int, reason, msg string) {
	m.st.Step = i
	m.setWeights(m.plan.Steps[i].Weights)
	m.setPhase(PhaseProgressing, "")
	m.st.StepStarted, m.st.HoldStarted, m.st.Promoted = m.in.Now, time.Time{}, time.Time{}
	m.st.AutoResume, m.st.ByOperator = false, false
	m.st.UnknownSince = time.Time{}
	m.st.Failures = nil
	m.event(false, reason, fmt.Sprintf("%s: step %d of %d, weights %s", msg, i+1, len(m.plan.Steps), FormatWeights(m.st.Weights)))
}

// stateLost stops a rollout whose state is gone, at the weights last
// known to be in force, and stops the migration: memory loss must not
// become action (a restart from step 0 would move every workload the
// earlier steps moved, and an Aborted bad canary would start again). The
// step is the one whose weights those are; resume continues there, retry
// starts over.
func (m *machine) stateLost(l *Lost) {
	w := l.Weights
	if len(w) == 0 {
		w = m.in.Policy.Targets
	}
	step := -1
	for i, s := range m.plan.Steps {
		if slices.Equal(s.Weights, w) {
			step = i
		}
	}
	where := "weights matching no step: resume enters step 1"
	if step >= 0 {
		where = fmt.Sprintf("the weights of step %d", step+1)
	}
	m.st = State{ID: m.in.Policy.RolloutID(), Attempt: l.Attempt, Step: max(step, 0), LastPassed: -1,
		LastRequest: m.in.Control.RequestID, StepStarted: m.in.Now}
	m.setWeights(w)
	m.setPhase(PhasePaused, fmt.Sprintf("state lost: %s; routing stays at %s (%s) and the migration is paused until an operator resumes or retries",
		l.Why, FormatWeights(w), where))
	m.res.PauseMigration = "rollout state lost"
	m.event(true, "RolloutStateLost", m.st.Reason)
}

// request acts once on the operator's last one-shot command.
func (m *machine) request() {
	c := m.in.Control
	if c.RequestID == "" || c.RequestID == m.st.LastRequest {
		return
	}
	m.st.LastRequest = c.RequestID
	switch ph := m.st.Phase; {
	case c.Action == ActionAbort && ph != PhaseAborted:
		m.rollback("aborted by operator", policy.RollbackToZero)
	case c.Action == ActionRetry && (ph == PhaseAborted || ph == PhasePaused || ph == PhaseRollingBack):
		// Retry starts over, as Argo Rollouts' does: every step's gates
		// are passed again. A new attempt is a new migration generation,
		// so workloads moved back are moved forward again.
		m.st.Attempt++
		m.st.LastPassed = -1
		m.res.ResumeMigration = true
		m.enter(0, "RolloutRetried", "rollout retried by operator")
	case c.Action == ActionResume && ph == PhasePaused:
		m.resume("RolloutResumed", "rollout resumed by operator")
	case c.Action == ActionPromote && ph == PhaseHolding:
		m.st.Promoted = m.in.Now
		m.event(false, "RolloutPromoted", fmt.Sprintf("hold of step %d ended by operator; the gates still decide", m.st.Step+1))
	default:
		m.event(false, "RolloutRequestIgnored", fmt.Sprintf("%s has no meaning while the rollout is %s", c.Action, ph))
	}
}

// resume re-enters the step in force: its migration runs again (a no-op
// when done) and its hold restarts, since gates must pass for a whole hold.
func (m *machine) resume(reason, msg string) {
	m.res.ResumeMigration = true
	m.enter(m.st.Step, reason, msg)
}

// followPlan applies the operator's pause and an edited plan.
func (m *machine) followPlan() {
	c := m.in.Control
	active := m.st.Phase == PhaseProgressing || m.st.Phase == PhaseHolding
	switch {
	case c.Paused && active:
		m.pause("paused by operator: "+orDefault(c.PauseReason, "no reason given"), false)
		m.st.ByOperator = true
		return
	case !c.Paused && m.st.Phase == PhasePaused && m.st.ByOperator:
		m.resume("RolloutResumed", "rollout resumed by operator")
		return
	}
	if n := len(m.plan.Steps); m.st.Step >= n {
		m.st.Step = n - 1
	}
	if active && !slices.Equal(m.st.Weights, m.plan.Steps[m.st.Step].Weights) {
		m.enter(m.st.Step, "RolloutPlanChanged", "the plan changed the weights of the step in force; the step starts again")
	}
}

func (m *machine) pause(reason string, auto bool) {
	m.setPhase(PhasePaused, reason)
	m.st.AutoResume = auto
	m.event(true, "RolloutPaused", reason)
}

// rollback takes the weights back and lets the migration move the
// workloads that the lost weight had moved.
func (m *machine) rollback(reason string, to policy.RollbackTarget) {
	w := m.in.Policy.ZeroWeights()
	where := "the canary at 0"
	if to == policy.RollbackToLastPassed && m.st.LastPassed >= 0 {
		w = m.plan.Steps[m.st.LastPassed].Weights
		where = fmt.Sprintf("step %d", m.st.LastPassed+1)
	}
	m.setWeights(w)
	m.setPhase(PhaseRollingBack, reason)
	m.st.AutoResume, m.st.ByOperator = false, false
	m.res.ResumeMigration = true
	m.event(true, "RollingBack", fmt.Sprintf("%s; weights back to %s (%s)", reason, where, FormatWeights(w)))
}

// fail applies the plan's onFailure.
func (m *machine) fail(reason string) {
	if m.plan.OnFailure == policy.OnFailureRollback {
		m.rollback(reason, m.plan.RollbackTo)
		return
	}
	m.pause(reason, false)
}

// run makes the phase's transition.
func (m *machine) run() {
	switch m.st.Phase {
	case PhaseRollingBack:
		switch m.in.Migration.State {
		case MigrationDone:
			m.setPhase(PhaseAborted, m.st.Reason)
			m.event(false, "RolledBack", "rollback complete: every moved workload is back; "+m.st.Reason)
		case MigrationFailed:
			m.pause("the rollback's migration failed: "+m.in.Migration.Reason, false)
		}
	case PhasePaused:
		if !m.st.AutoResume || m.in.Gates == nil {
			return
		}
		m.measure()
		if failed, unknown := m.verdict(); failed != "" {
			m.fail(failed)
		} else if m.allPass() {
			// Resumed only when every gate passes again: a gate failing
			// within its limit keeps counting while the rollout waits.
			m.resume("RolloutResumed", "every gate measured and passing again")
			m.move()
		} else if unknown != "" {
			m.unknownFor(unknown)
		}
	case PhaseProgressing, PhaseHolding:
		if m.in.Gates != nil {
			m.measure()
		}
		m.progress()
	}
}

func (m *machine) progress() {
	if failed, unknown := m.verdict(); failed != "" {
		m.fail(failed)
		return
	} else if unknown != "" && m.in.Gates != nil {
		// Never advance, nor hold on, without data: a hold counts only
		// time with every gate measured and passing.
		m.st.UnknownSince = m.in.Now
		m.pause(unknown, true)
		m.unknownFor(unknown)
		return
	}
	if m.in.Migration.State == MigrationFailed {
		m.fail(fmt.Sprintf("the migration of step %d failed: %s", m.st.Step+1, m.in.Migration.Reason))
		return
	}
	m.move()
}

// move follows the migration into the hold and the hold to the next step.
func (m *machine) move() {
	if m.st.Phase == PhaseProgressing {
		if m.in.Migration.State != MigrationDone {
			return
		}
		m.setPhase(PhaseHolding, "")
		m.st.HoldStarted = m.in.Now
		m.event(false, "StepMigrated", fmt.Sprintf("step %d migrated; holding", m.st.Step+1))
		// This pass's measurement was taken while the migration ran, when
		// pod health is not judged: no step, however short its hold,
		// completes before a measurement of its own hold (Due asks for
		// one at once).
		return
	}
	end, ok := m.holdEnd()
	if !ok || m.in.Now.Before(end) || m.in.Gates == nil || m.in.Migration.State != MigrationDone {
		return
	}
	m.st.LastPassed = m.st.Step
	if m.st.Step == len(m.plan.Steps)-1 {
		m.setPhase(PhaseComplete, "")
		m.event(false, "RolloutComplete", "rollout of "+m.plan.Canary+" complete: "+FormatWeights(m.st.Weights))
		return
	}
	m.enter(m.st.Step+1, "RolloutStep", "gates passed for the hold")
}

func (s *State) clone() State {
	c := *s
	c.Weights = slices.Clone(s.Weights)
	c.Gates = slices.Clone(s.Gates)
	c.Failures = maps.Clone(s.Failures)
	c.Conditions = slices.Clone(s.Conditions)
	return c
}

// FormatWeights renders weights as "1-24=75 1-25=25".
func FormatWeights(w []policy.Target) string {
	parts := make([]string, len(w))
	for i, t := range w {
		parts[i] = fmt.Sprintf("%s=%g", t.Revision, t.Weight)
	}
	return strings.Join(parts, " ")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
