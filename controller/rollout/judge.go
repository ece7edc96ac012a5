package rollout

import (
	"fmt"
	"slices"
)

// Judging a step: each measurement's gates counted in a row, the verdict
// that fails a step or leaves it unjudged, and how long unknown may last.

// unknownFor turns a wait for data into a stop once the gates have been
// unknown for longer than the plan's maxUnknown: the rollout stays
// paused until an operator resumes or retries it.
func (m *machine) unknownFor(unknown string) {
	if !m.st.AutoResume || m.in.Now.Sub(m.st.UnknownSince) < m.plan.Gates.MaxUnknown {
		return
	}
	m.st.AutoResume = false
	m.setPhase(PhasePaused, fmt.Sprintf("gates unknown for more than %s (gates.maxUnknown); resume or retry decides: %s",
		m.plan.Gates.MaxUnknown, unknown))
	m.event(true, "RolloutPaused", m.st.Reason)
}

func (m *machine) allPass() bool {
	for _, g := range m.st.Gates {
		if g.Verdict != VerdictPass {
			return false
		}
	}
	return true
}

// measure records a measurement and counts each gate's failures in a row;
// an unknown measurement neither counts nor clears.
func (m *machine) measure() {
	m.st.LastMeasured = m.in.Now
	m.st.Gates = slices.Clone(m.in.Gates)
	if m.st.Failures == nil {
		m.st.Failures = map[string]int{}
	}
	for _, g := range m.in.Gates {
		switch g.Verdict {
		case VerdictPass:
			delete(m.st.Failures, g.Name)
		case VerdictFail:
			m.st.Failures[g.Name]++
		}
	}
}

// verdict returns why the step fails (a gate failed more often in a row
// than its limit) and why it cannot be judged (a gate unknown).
func (m *machine) verdict() (failed, unknown string) {
	for _, g := range m.st.Gates {
		switch {
		case g.Verdict == VerdictFail && m.st.Failures[g.Name] > g.FailureLimit && failed == "":
			failed = fmt.Sprintf("gate %s failed at step %d (%s): %s", g.Name, m.st.Step+1, inARow(m.st.Failures[g.Name]), g.Message)
		case g.Verdict == VerdictUnknown && unknown == "":
			unknown = fmt.Sprintf("gate %s unknown at step %d, not advancing without data: %s", g.Name, m.st.Step+1, g.Message)
		}
	}
	return failed, unknown
}

// inARow words a count of failed measurements: "once", "2 times in a
// row".
func inARow(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times in a row", n)
}
