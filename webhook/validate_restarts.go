package webhook

import (
	"fmt"

	"github.com/canary-router/canary-router/policy"
)

// DefaultWarnRestartShare is serve --warn-restart-share's default: an
// edit whose dry-run plan moves more than a quarter of the workloads the
// router places earns a warning at `kubectl apply` time.
const DefaultWarnRestartShare = 0.25

// RestartEstimate is a dry-run migration plan's count for a policy edit.
type RestartEstimate struct {
	// Moves counts the workloads the edit moves that the policy in force
	// would not have moved anyway; Workloads those the router places.
	Moves, Workloads int
	// Migrates: the edit enables the migration, so the moves are
	// restarts; otherwise they happen when each workload next restarts.
	Migrates bool
}

// RestartEstimator dry-runs the migration plan of a policy edit over
// this replica's views of pods and namespaces. old is nil on a create.
// ok is false while the views have not synced.
type RestartEstimator interface {
	EstimateRestarts(old, cur *policy.Policy) (est RestartEstimate, ok bool)
}

// restartWarning is the warning for an edit's estimate, "" when the
// share moved is within threshold. A threshold of 1 or more never warns.
func restartWarning(e RestartEstimate, threshold float64) string {
	if e.Moves == 0 || e.Workloads == 0 {
		return ""
	}
	share := float64(e.Moves) / float64(e.Workloads)
	if share <= threshold {
		return ""
	}
	above := fmt.Sprintf("above the %.3g%% warn threshold (serve --warn-restart-share)", threshold*100)
	if e.Migrates {
		return fmt.Sprintf("this edit would restart %d of %d workloads (%.0f%%) through the migration, %s", e.Moves, e.Workloads, share*100, above)
	}
	return fmt.Sprintf("this edit would move %d of %d workloads (%.0f%%) to another revision when their pods next restart "+
		"(no migration block is enabled, so nothing restarts now), %s", e.Moves, e.Workloads, share*100, above)
}

// restartWarnings dry-runs the edit when an estimator is set. Both
// policies are planned with the rollout's weights in force laid over them
// where those apply (inforce.Overlay.Apply): mid-rollout, or after a completed
// rollout's block is removed, the router routes by those weights, not by
// the document's targets.
func (v *PolicyValidator) restartWarnings(old, cur *policy.Policy) []string {
	if v.Restarts == nil {
		return nil
	}
	if v.Overlay != nil {
		o := v.Overlay()
		old, _ = o.Apply(old)
		cur, _ = o.Apply(cur)
	}
	est, ok := v.Restarts.EstimateRestarts(old, cur)
	if !ok {
		return []string{"the workloads this edit would restart could not be counted: this replica's views of pods and namespaces have not synced yet"}
	}
	if w := restartWarning(est, v.WarnRestartShare); w != "" {
		return []string{w}
	}
	return nil
}
