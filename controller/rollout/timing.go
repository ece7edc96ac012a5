package rollout

import (
	"time"

	"github.com/canary-router/canary-router/policy"
)

// holdEnd is when the step's hold ends; ok is false for a manual hold not
// yet promoted.
func (m *machine) holdEnd() (time.Time, bool) {
	return HoldEnd(&m.st, m.plan)
}

// HoldEnd is when the hold of the step in force ends; ok is false before
// its migration completes and for a manual hold not yet promoted.
func HoldEnd(st *State, plan *policy.Rollout) (time.Time, bool) {
	switch {
	case st.Phase != PhaseHolding || st.Step >= len(plan.Steps):
		return time.Time{}, false
	case !st.Promoted.IsZero():
		return st.Promoted, true
	case plan.Steps[st.Step].Manual:
		return time.Time{}, false
	}
	return st.HoldStarted.Add(plan.Steps[st.Step].Hold), true
}

// Due reports whether the gates should be measured this pass: every
// Interval while the rollout moves or waits for data, and once more when
// a hold ends, so an advance always rests on a fresh measurement.
//
// A new operator command makes a measurement due too, so a promote
// advances at once when the gates pass.
func Due(st *State, plan *policy.Rollout, ctl Control, now time.Time) bool {
	if st == nil || plan == nil {
		return false
	}
	if ctl.RequestID != "" && ctl.RequestID != st.LastRequest {
		return true
	}
	switch st.Phase {
	case PhaseProgressing, PhaseHolding:
	case PhasePaused:
		if !st.AutoResume {
			return false
		}
	default:
		return false
	}
	if heldUnmeasured(st) {
		return true
	}
	if st.LastMeasured.IsZero() || !now.Before(st.LastMeasured.Add(plan.Interval)) {
		return true
	}
	end, ok := HoldEnd(st, plan)
	return ok && !now.Before(end) && st.LastMeasured.Before(end)
}

// requeue is when the next pass is needed without an event: the next
// measurement or the end of the hold. Migration progress and operator
// commands arrive as changes of the status object.
func (m *machine) requeue() time.Duration {
	switch m.st.Phase {
	case PhaseProgressing, PhaseHolding:
	case PhasePaused:
		if !m.st.AutoResume {
			return 0
		}
	default:
		return 0
	}
	if heldUnmeasured(&m.st) {
		return time.Second
	}
	next := m.st.LastMeasured.Add(m.plan.Interval)
	if end, ok := m.holdEnd(); ok && end.Before(next) && m.st.LastMeasured.Before(end) {
		next = end
	}
	return max(next.Sub(m.in.Now), time.Second)
}

// heldUnmeasured: a hold began and no measurement was taken in it yet.
// Its first one is due at once, since the last was taken while the
// migration ran and cannot complete the step.
func heldUnmeasured(st *State) bool {
	return st.Phase == PhaseHolding && !st.LastMeasured.After(st.HoldStarted)
}
