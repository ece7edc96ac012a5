package migrate

// EditImpact is what a policy edit would do to the workloads the router
// places, from two dry-run plans over the same pods: one under the policy
// in force, one under the edit.
type EditImpact struct {
	// Workloads counts the restartable workloads the router places under
	// the edit (managed namespace, not pinned): the share's denominator.
	Workloads int
	// Moves counts the workloads the edit's plan moves that the plan in
	// force would not have moved anyway. With Migrates they are restarted
	// by the migration; without, they move when their pods next restart.
	Moves int
	// Migrates: the edit has an enabled migration block, so its plan runs.
	Migrates bool
}

// Share is Moves over Workloads, 0 when there are none.
func (e EditImpact) Share() float64 {
	if e.Workloads == 0 {
		return 0
	}
	return float64(e.Moves) / float64(e.Workloads)
}

// DryRunEdit plans cur (the edit) and old (the policy in force, a nil
// Policy when there is none) with NewPlan, the migration's own planner,
// and counts what the edit adds. A workload the plan in force restarts
// already (its migration is on) is not the edit's doing; nor, when the
// edit does not migrate, is one that would move on its next restart under
// either policy.
func DryRunEdit(old, cur Input) EditImpact {
	var out EditImpact
	p := cur.Policy
	if p == nil {
		return out
	}
	out.Migrates = p.Migration != nil && p.Migration.Enabled
	managed := managedNamespaces(cur, &Plan{})
	for _, w := range cur.Workloads {
		if _, ok := managed[w.Namespace]; ok && !w.Pinned && restartable[w.Kind] {
			out.Workloads++
		}
	}
	already := map[Ref]bool{}
	if old.Policy != nil && (!out.Migrates || (old.Policy.Migration != nil && old.Policy.Migration.Enabled)) {
		for _, m := range NewPlan(old, 1).Moves {
			already[m.Ref] = true
		}
	}
	for _, m := range NewPlan(cur, 1).Moves {
		if !already[m.Ref] {
			out.Moves++
		}
	}
	return out
}

// PodWorkload is a workload as only its pods show it (a replica's pod
// view, without the leader's workload informers): fully rolled out at its
// pod count, neither paused nor opted out. A dry run over such workloads
// counts what a migration would restart when each is healthy, an upper
// bound of what the leader's plan restarts at once.
func PodWorkload(r Ref, pods PodCounts, pinned bool) Workload {
	n := int32(pods.Total())
	return Workload{Ref: r, Replicas: n, StatusReplicas: n, Updated: n, Available: n, Pinned: pinned}
}
