package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

const head = "granularity: workload\ntargets: [{revision: \"1-24\", weight: 100}, {revision: \"1-25\", weight: 0}]\n"

const plan = head + `rollout:
  interval: 10s
  onFailure: %s
  steps:
    - {canary: 5, hold: 1m}
    - {canary: 25, hold: manual}
    - {canary: 100}
`

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planWith(t *testing.T, onFailure string) *policy.Policy {
	return mustPolicy(t, strings.Replace(plan, "%s", onFailure, 1))
}

var (
	pass    = []GateResult{{Name: "injector", Value: 1, Verdict: VerdictPass}, {Name: "xds-rejects", Value: 0, Verdict: VerdictPass, FailureLimit: 1}}
	bad     = []GateResult{{Name: "injector", Value: 1, Verdict: VerdictPass}, {Name: "xds-rejects", Value: 7, Verdict: VerdictFail, FailureLimit: 1, Message: "7 > max 0"}}
	unknown = []GateResult{{Name: "injector", Value: 1, Verdict: VerdictPass}, {Name: "xds-rejects", Verdict: VerdictUnknown, FailureLimit: 1, Message: "Prometheus unreachable"}}
	done    = Migration{State: MigrationDone}
	pending = Migration{State: MigrationPending}
)

// driver runs passes with a fake clock, as the controller would.
type driver struct {
	t   *testing.T
	p   *policy.Policy
	now time.Time
	st  *State
	ctl Control
	res Result
}

func newDriver(t *testing.T, p *policy.Policy) *driver {
	return &driver{t: t, p: p, now: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
}

// pass runs one pass; gates are given only when Due says a measurement
// is due, as the controller does.
func (d *driver) pass(after time.Duration, gates []GateResult, mig Migration) *State {
	d.t.Helper()
	d.now = d.now.Add(after)
	in := Input{Policy: d.p, Now: d.now, Migration: mig, Control: d.ctl}
	if d.st == nil || Due(d.st, d.p.Rollout, d.ctl, d.now) {
		in.Gates = gates
	}
	d.res = Step(in, d.st)
	// Through the status object and back, as a new leader would read it.
	if d.res.State != nil {
		st, _ := Decode(map[string]string{StateKey: d.res.State.Encode()})
		d.st = st
	} else {
		d.st = nil
	}
	return d.st
}

func (d *driver) want(phase Phase, step int, canary float64) {
	d.t.Helper()
	if d.st == nil {
		d.t.Fatalf("no state, want %s step %d", phase, step)
	}
	if d.st.Phase != phase || d.st.Step != step || d.st.Weights[1].Weight != canary {
		d.t.Fatalf("phase %s step %d weights %s (%s), want %s step %d canary %g",
			d.st.Phase, d.st.Step, FormatWeights(d.st.Weights), d.st.Reason, phase, step, canary)
	}
}

// start begins the rollout and completes step 0's migration: Holding.
func (d *driver) start() {
	d.t.Helper()
	d.pass(0, pass, done)
	d.want(PhaseProgressing, 0, 5) // the outcome given is for the old weights
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 0, 5)
}

func (d *driver) request(action, id string) { d.ctl.Action, d.ctl.RequestID = action, id }

func TestHealthyPath(t *testing.T) {
	d := newDriver(t, planWith(t, "pause"))
	d.pass(0, pass, pending)
	d.want(PhaseProgressing, 0, 5)
	if !d.res.WeightsChanged || d.res.Events[0].Reason != "RolloutStarted" {
		t.Fatalf("start: %+v", d.res)
	}
	d.pass(5*time.Second, pass, pending)
	d.want(PhaseProgressing, 0, 5) // the migration rolls
	d.pass(5*time.Second, pass, done)
	d.want(PhaseHolding, 0, 5)
	hold := d.st.HoldStarted
	d.pass(50*time.Second, pass, done)
	d.want(PhaseHolding, 0, 5) // 50 s of a 1 m hold
	if d.res.RequeueAfter != 10*time.Second {
		t.Fatalf("requeue %s, want the hold's end in 10s", d.res.RequeueAfter)
	}
	d.pass(10*time.Second, pass, done)
	d.want(PhaseProgressing, 1, 25)
	if d.st.LastPassed != 0 || d.st.StepStarted.Sub(hold) != time.Minute {
		t.Fatalf("advance: %+v", d.st)
	}
	d.pass(time.Second, pass, done) // the migration of step 1 (its own digest) ran
	d.want(PhaseHolding, 1, 25)
	d.pass(time.Hour, pass, done)
	d.want(PhaseHolding, 1, 25) // manual: waits for promote
	d.request(ActionPromote, "p1")
	d.pass(time.Second, pass, done)
	d.want(PhaseProgressing, 2, 100)
	d.pass(time.Second, pass, pending)
	d.want(PhaseProgressing, 2, 100)
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 2, 100)
	d.pass(10*time.Second, pass, done) // last step: no hold, a fresh measurement
	d.want(PhaseComplete, 2, 100)
	d.pass(time.Hour, bad, done)
	d.want(PhaseComplete, 2, 100) // done is done
	if d.res.RequeueAfter != 0 {
		t.Fatalf("a complete rollout requeues after %s", d.res.RequeueAfter)
	}
}

func TestGateFailurePausesAfterItsLimit(t *testing.T) {
	d := newDriver(t, planWith(t, "pause"))
	d.start()
	d.pass(10*time.Second, bad, done)
	d.want(PhaseHolding, 0, 5) // failureLimit 1: one failure tolerated
	d.pass(5*time.Second, bad, done)
	d.want(PhaseHolding, 0, 5) // not due: no measurement, no count
	d.pass(5*time.Second, bad, done)
	d.want(PhasePaused, 0, 5)
	if !strings.Contains(d.st.Reason, "gate xds-rejects failed at step 1 (2 times in a row): 7 > max 0") || !d.res.Events[0].Warning {
		t.Fatalf("pause: %q %+v", d.st.Reason, d.res.Events)
	}
	d.pass(time.Hour, pass, done)
	d.want(PhasePaused, 0, 5) // a gate pause waits for an operator
	d.request(ActionResume, "r1")
	d.pass(time.Second, pass, done)
	if !d.res.ResumeMigration {
		t.Fatal("resume must resume a migration a failed batch paused")
	}
	d.want(PhaseHolding, 0, 5) // re-entered; its migration is done, the hold restarts
	if !d.st.HoldStarted.Equal(d.now) {
		t.Fatal("the hold did not restart")
	}
}

func TestGateFailureRollsBackToZeroThenRetry(t *testing.T) {
	d := newDriver(t, planWith(t, "rollback"))
	d.start()
	d.pass(time.Minute, pass, done)
	d.want(PhaseProgressing, 1, 25)
	d.pass(time.Second, pass, done)
	d.pass(10*time.Second, bad, done)
	d.pass(10*time.Second, bad, done)
	d.want(PhaseRollingBack, 1, 0)
	if !d.res.WeightsChanged || !d.res.ResumeMigration {
		t.Fatalf("rollback: %+v", d.res)
	}
	d.pass(time.Second, pass, pending)
	d.want(PhaseRollingBack, 1, 0) // workloads moving back
	d.pass(time.Second, pass, done)
	d.want(PhaseAborted, 1, 0)
	d.request(ActionRetry, "t1")
	d.pass(time.Second, pass, pending)
	d.want(PhaseProgressing, 0, 5)
	if d.st.Attempt != 1 || d.st.LastPassed != -1 {
		t.Fatalf("retry: %+v", d.st)
	}
}

func TestRollbackToLastPassed(t *testing.T) {
	p := mustPolicy(t, strings.Replace(strings.Replace(plan, "%s", "rollback", 1), "interval: 10s", "interval: 10s\n  rollbackTo: lastPassed", 1))
	d := newDriver(t, p)
	d.start()
	d.pass(time.Minute, pass, done)
	d.pass(time.Second, pass, Migration{State: MigrationFailed, Reason: "ns/Deployment/a not ready"})
	d.want(PhaseRollingBack, 1, 5)
	if !strings.Contains(d.st.Reason, "the migration of step 2 failed: ns/Deployment/a not ready") {
		t.Fatalf("reason %q", d.st.Reason)
	}
	d.pass(time.Second, pass, Migration{State: MigrationFailed, Reason: "still"})
	d.want(PhasePaused, 1, 5) // a rollback that cannot move back waits for an operator
}

func TestUnknownGatePausesAndResumesOnData(t *testing.T) {
	d := newDriver(t, planWith(t, "rollback"))
	d.start()
	d.pass(50*time.Second, unknown, done)
	d.want(PhasePaused, 0, 5)
	if !d.st.AutoResume || !strings.Contains(d.st.Reason, "unknown at step 1, not advancing without data: Prometheus unreachable") {
		t.Fatalf("pause: %+v", d.st)
	}
	d.pass(10*time.Second, unknown, done) // the hold's end passes meanwhile
	d.want(PhasePaused, 0, 5)
	if d.res.RequeueAfter == 0 {
		t.Fatal("an automatic pause must keep measuring")
	}
	d.pass(10*time.Second, pass, done)
	d.want(PhaseHolding, 0, 5) // back, with a whole hold ahead
	d.pass(50*time.Second, pass, done)
	d.want(PhaseHolding, 0, 5)
	d.pass(10*time.Second, pass, done)
	d.want(PhaseProgressing, 1, 25)
}

func TestUnknownThenFailedAfterPauseApplies(t *testing.T) {
	d := newDriver(t, planWith(t, "rollback"))
	d.pass(0, unknown, done)
	d.want(PhasePaused, 0, 5)
	d.pass(10*time.Second, bad, done)
	d.pass(10*time.Second, bad, done)
	d.want(PhaseRollingBack, 0, 0)
}

func TestOperatorPauseAbortAndIgnoredRequests(t *testing.T) {
	d := newDriver(t, planWith(t, "pause"))
	d.start()
	d.ctl.Paused, d.ctl.PauseReason = true, "change freeze"
	d.pass(time.Hour, pass, done)
	d.want(PhasePaused, 0, 5)
	if d.st.Reason != "paused by operator: change freeze" {
		t.Fatalf("reason %q", d.st.Reason)
	}
	d.ctl.Paused = false
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 0, 5)

	d.request(ActionPromote, "x1")
	d.pass(time.Second, pass, done)
	d.want(PhaseProgressing, 1, 25) // promote ends a timed hold too
	d.request(ActionPromote, "x2")
	d.pass(0, pass, pending)
	if d.res.Events[0].Reason != "RolloutRequestIgnored" {
		t.Fatalf("promote while progressing: %+v", d.res.Events)
	}
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 1, 25) // the same request id is acted on once
	d.request(ActionAbort, "x3")
	d.pass(time.Second, pass, done)
	d.want(PhaseRollingBack, 1, 0)
	if d.st.Reason != "aborted by operator" {
		t.Fatalf("reason %q", d.st.Reason)
	}
}

func TestPlanEditedMidRollout(t *testing.T) {
	d := newDriver(t, planWith(t, "pause"))
	d.start()
	d.pass(time.Minute, pass, done)
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 1, 25)

	// The step in force gets other weights: it starts again at them.
	d.p = mustPolicy(t, head+"rollout: {interval: 10s, steps: [{canary: 5, hold: 1m}, {canary: 30, hold: 2m}, {canary: 100}]}\n")
	d.pass(time.Second, pass, pending)
	d.want(PhaseProgressing, 1, 30)
	if d.res.Events[0].Reason != "RolloutPlanChanged" || !d.res.WeightsChanged {
		t.Fatalf("edit: %+v", d.res)
	}
	d.pass(time.Second, pass, done)
	d.want(PhaseHolding, 1, 30)

	// Only the hold changed: the step goes on, with the new hold.
	d.p = mustPolicy(t, head+"rollout: {interval: 10s, steps: [{canary: 5, hold: 1m}, {canary: 30, hold: 20s}, {canary: 100}]}\n")
	d.pass(10*time.Second, pass, done)
	d.want(PhaseHolding, 1, 30)
	d.pass(10*time.Second, pass, done)
	d.want(PhaseProgressing, 2, 100)

	// A shorter plan clamps the step in force to its last step.
	d.p = mustPolicy(t, head+"rollout: {interval: 10s, steps: [{canary: 50}]}\n")
	d.pass(time.Second, pass, pending)
	d.want(PhaseProgressing, 0, 50)

	// A paused rollout stays paused whatever the edit.
	d.ctl.Paused = true
	d.pass(time.Second, pass, done)
	d.p = mustPolicy(t, head+"rollout: {interval: 10s, steps: [{canary: 60}]}\n")
	d.pass(time.Second, pass, done)
	d.want(PhasePaused, 0, 50)
	d.ctl.Paused = false
	d.pass(time.Second, pass, done)
	d.want(PhaseProgressing, 0, 60) // resumed at the edited weights, which must migrate first

	// Another canary is another rollout: step 0 again.
	d.p = mustPolicy(t, "granularity: workload\ntargets: [{revision: \"1-24\", weight: 100}, {revision: \"1-26\", weight: 0}]\n"+
		"rollout: {steps: [{canary: 10, hold: 1m}, {canary: 100}]}\n")
	d.pass(time.Second, pass, pending)
	d.want(PhaseProgressing, 0, 10)
	if d.st.ID != "1-26:1-24,1-26" {
		t.Fatalf("id %q", d.st.ID)
	}

	// The block removed: no rollout, the policy's weights route.
	d.p = mustPolicy(t, head)
	d.pass(time.Second, pass, done)
	if d.st != nil {
		t.Fatalf("state %+v without a plan", d.st)
	}
}

func TestStatusRoundTripAndControls(t *testing.T) {
	st, ctl := Decode(map[string]string{StateKey: "{not json", PausedKey: "true", PauseReasonKey: "x", RequestKey: "promote/abc"})
	if st != nil || !ctl.Paused || ctl.PauseReason != "x" || ctl.Action != ActionPromote || ctl.RequestID != "abc" {
		t.Fatalf("decode: %+v %+v", st, ctl)
	}
	o := State{ID: "a", Step: 2, Phase: PhaseHolding, Weights: []policy.Target{{Revision: "x", Weight: 100}}}.Overlay()
	if o.Step != 2 || o.Phase != "Holding" || o.ID != "a" {
		t.Fatalf("overlay %+v", o)
	}
}

func TestOldRequestDoesNotReplayOnANewRollout(t *testing.T) {
	d := newDriver(t, planWith(t, "pause"))
	d.request(ActionAbort, "from-an-earlier-rollout")
	d.pass(0, pass, pending)
	d.want(PhaseProgressing, 0, 5)
	for _, e := range d.res.Events {
		if e.Reason != "RolloutStarted" {
			t.Fatalf("event %+v on a new rollout", e)
		}
	}
}
