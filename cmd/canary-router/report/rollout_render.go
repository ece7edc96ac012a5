package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
)

// RolloutDocument is `rollout status -o json|yaml`.
type RolloutDocument struct {
	Rollout        *rollout.State `json:"rollout"`
	Paused         bool           `json:"paused"`
	PauseReason    string         `json:"pauseReason,omitempty"`
	PendingRequest string         `json:"pendingRequest,omitempty"`
	Migration      migrate.Status `json:"migration"`
}

// PendingRequest is a command the leader has not acted on yet.
func PendingRequest(st *rollout.State, ctl rollout.Control) string {
	if ctl.RequestID == "" || (st != nil && st.LastRequest == ctl.RequestID) {
		return ""
	}
	return ctl.Action
}

// writeRolloutStatus prints the rollout for a person; pal colours the
// phase and the gates' verdicts (a plain Palette on a pipe or a file).
func writeRolloutStatus(w io.Writer, st *rollout.State, ctl rollout.Control, mst migrate.Status, mctl migrate.Control, pal Palette) {
	if st == nil {
		fmt.Fprintln(w, "No rollout: the policy has no rollout block, or the leader has not started it yet.")
		return
	}
	fmt.Fprintf(w, "Rollout %s, attempt %d\n", st.ID, st.Attempt+1)
	fmt.Fprintf(w, "Phase:    %s since %s\n", pal.phase(st.Phase), st.LastTransition.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Step:     %d (last passed: %d)\n", st.Step+1, st.LastPassed+1)
	fmt.Fprintf(w, "Weights:  %s\n", rollout.FormatWeights(st.Weights))
	if st.Reason != "" {
		fmt.Fprintf(w, "Reason:   %s\n", st.Reason)
	}
	if ctl.Paused {
		fmt.Fprintf(w, "Held by an operator: %s\n", ctl.PauseReason)
	}
	if p := PendingRequest(st, ctl); p != "" {
		fmt.Fprintf(w, "Pending:  %s (not yet acted on by the leader)\n", p)
	}
	if !st.HoldStarted.IsZero() && st.Phase == rollout.PhaseHolding {
		fmt.Fprintf(w, "Holding since %s\n", st.HoldStarted.UTC().Format(time.RFC3339))
	}
	mig := string(mst.Phase)
	if mig == "" {
		mig = "not started"
	}
	// The migration's counts are those of the plan for the weights in
	// force (this step's moves), not of the whole rollout: say so, or
	// "1 of 1" reads wrong after four workloads moved over three steps.
	fmt.Fprintf(w, "Migration: %s, this step's plan: %d of %d %s moved", mig, mst.Done, mst.Total, plural(mst.Total, "workload", "workloads"))
	if mctl.Paused {
		fmt.Fprintf(w, ", paused: %s", mctl.PauseReason)
	}
	fmt.Fprintln(w)
	if len(st.Gates) == 0 {
		return
	}
	fmt.Fprintf(w, "Gates measured %s:\n", st.LastMeasured.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  GATE\tVERDICT\tVALUE\tFAILURES\tDETAIL")
	for _, g := range st.Gates {
		fmt.Fprintf(tw, "  %s\t%s\t%.4g\t%d/%d\t%s\n", g.Name, pal.verdict(g.Verdict), g.Value, st.Failures[g.Name], g.FailureLimit+1, g.Message)
	}
	_ = tw.Flush()
}
