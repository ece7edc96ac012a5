package migrate

import (
	"fmt"
	"time"

	"github.com/canary-router/canary-router/policy"
)

// pollEvery is how often a rolling batch is looked at when no informer
// event brings the pass back sooner.
const pollEvery = 2 * time.Second

// Settings pace a migration (policy.Migration, or the CLI's flags).
type Settings struct {
	BatchSize        int
	Interval         time.Duration
	ReadinessTimeout time.Duration
}

// SettingsOf returns the pace a policy's migration block sets.
func SettingsOf(m policy.Migration) Settings {
	return Settings{BatchSize: m.BatchSize, Interval: m.Interval, ReadinessTimeout: m.ReadinessTimeout}
}

// Result is what one Step asks its caller to do, in this order: write
// Status (before any restart, so a crash after it repeats the same
// restarts rather than forgetting them), relabel the namespaces, restart
// the workloads, record Failed as Warning Events and pause with Pause as
// the reason, then look again after RequeueAfter (0: on the next change).
type Result struct {
	Status       Status
	Relabel      []NamespaceMove
	Restart      []Move
	RestartedAt  string
	Failed       []Failure
	Pause        string
	RequeueAfter time.Duration
}

// Step advances the migration by one pass: it is pure, so the controller,
// the CLI's --apply and a rollout step machine drive the same transitions,
// and a unit test drives them with a fake clock. plan must be NewPlan of
// in.
func Step(in Input, plan Plan, st Status, ctl Control, set Settings, now time.Time) Result {
	if st.Digest != plan.Digest {
		// A new policy: a new migration. A batch of the old one still
		// rolling finishes on its own; nothing waits for it.
		st = Status{Digest: plan.Digest}
	}
	st.Pending, st.Skipped, st.Reported, st.Done = len(plan.Moves), len(plan.Skipped), len(plan.Reported), len(plan.Done)
	st.PendingByTarget, st.SkippedByReason = nil, nil
	if len(plan.Pending) > 0 {
		st.PendingByTarget = plan.Pending
	}
	for _, s := range plan.Skipped {
		if st.SkippedByReason == nil {
			st.SkippedByReason = map[SkipReason]int{}
		}
		st.SkippedByReason[s.Reason]++
	}
	res := Result{}
	if ctl.Paused {
		st.Phase = PhasePaused
		st.setCondition(now, "Paused", true, "Paused", ctl.PauseReason)
		res.Status = st
		return res
	}
	st.setCondition(now, "Paused", false, "Resumed", "")
	res.Relabel = plan.Namespaces
	if st.Batch != nil {
		if r, waiting := stepBatch(in, &st, set, now); waiting {
			r.Relabel = res.Relabel
			return r
		} else if r.Pause != "" {
			return r
		}
	}
	inFlight := 0
	if st.Batch != nil {
		inFlight = len(st.Batch.Workloads)
	}
	st.Total = st.Done + st.Pending + inFlight
	if len(plan.Moves) == 0 {
		st.Phase = PhaseComplete
		st.setCondition(now, "Complete", true, "NoDrift", fmt.Sprintf("%d workloads restarted for this policy; %d skipped, %d reported", st.Restarted, st.Skipped, st.Reported))
		res.Status = st
		return res
	}
	st.Phase = PhaseRunning
	st.setCondition(now, "Complete", false, "Pending", fmt.Sprintf("%d workloads to restart", len(plan.Moves)))
	if wait := st.LastBatchDone.Add(set.Interval).Sub(now); wait > 0 {
		res.Status, res.RequeueAfter = st, wait
		return res
	}
	// Workloads an earlier batch restarted that still roll (a batch of the
	// previous policy, cut short by the change) count against the batch
	// size, so no more than BatchSize ever roll at once.
	room := max(set.BatchSize, 1) - stillRolling(in, st)
	if room <= 0 {
		res.Status, res.RequeueAfter = st, pollEvery
		return res
	}
	batch := plan.Moves[:min(room, len(plan.Moves))]
	st.Batch = &Batch{Index: st.Batches + 1, Started: now, RestartedAt: now.UTC().Format(time.RFC3339), Workloads: batch}
	st.Restarted += len(batch)
	st.Pending -= len(batch)
	res.Status, res.Restart, res.RestartedAt, res.RequeueAfter = st, batch, st.Batch.RestartedAt, pollEvery
	return res
}

// stepBatch looks at the batch in flight. waiting is true while it rolls
// within its timeout; a completed batch is cleared from st; a timed-out
// one is cleared and pauses the migration (r.Pause).
func stepBatch(in Input, st *Status, set Settings, now time.Time) (r Result, waiting bool) {
	b := st.Batch
	idx := make(map[Ref]*Workload, len(b.Workloads))
	for i := range in.Workloads {
		idx[in.Workloads[i].Ref] = &in.Workloads[i]
	}
	var unfinished []Failure
	for _, m := range b.Workloads {
		w, ok := idx[m.Ref]
		if !ok {
			continue // deleted meanwhile: nothing left to move
		}
		if w.Migrated != st.Digest {
			// Recorded but not patched: the last leader stopped between the
			// two writes. The same patch again is safe.
			r.Restart = append(r.Restart, m)
			unfinished = append(unfinished, Failure{Ref: m.Ref, Reason: "restart not yet written", Time: now})
			continue
		}
		if why := notDone(in, w); why != "" {
			unfinished = append(unfinished, Failure{Ref: m.Ref, Reason: why, Time: now})
		}
	}
	st.Phase = PhaseRunning
	if len(unfinished) == 0 {
		st.Batches++
		st.LastBatchDone = now
		st.Batch = nil
		return r, false
	}
	if elapsed := now.Sub(b.Started); elapsed < set.ReadinessTimeout {
		r.RestartedAt = b.RestartedAt
		r.Status, r.RequeueAfter = *st, min(pollEvery, set.ReadinessTimeout-elapsed)
		return r, true
	}
	r.Restart = nil
	for i := range unfinished {
		unfinished[i].Reason = fmt.Sprintf("not done %s after its restart: %s", set.ReadinessTimeout, unfinished[i].Reason)
	}
	st.addFailures(unfinished)
	st.Batch = nil
	st.Phase = PhasePaused
	r.Failed = unfinished
	r.Pause = fmt.Sprintf("batch %d failed: %s %s", b.Index, unfinished[0].Ref, unfinished[0].Reason)
	if len(unfinished) > 1 {
		r.Pause += fmt.Sprintf(" (and %d more)", len(unfinished)-1)
	}
	st.setCondition(now, "Paused", true, "BatchFailed", r.Pause)
	r.Status = *st
	return r, false
}

// notDone says why a restarted workload has not finished moving, "" when
// it has: its rollout is complete and its pods sit where the policy routes
// them.
func notDone(in Input, w *Workload) string {
	if !Complete(*w) {
		return fmt.Sprintf("%d of %d replicas updated and %d available (generation %d observed %d)",
			w.Updated, w.Replicas, w.Available, w.Generation, w.ObservedGeneration)
	}
	target := ""
	if in.Policy.Granularity == policy.GranularityNamespace {
		target = NamespaceChoice(in.Policy, w.Namespace)
	}
	if d := unitDrift(in, target, w.Ref); d.Drifted {
		return d.Why
	}
	return ""
}

// stillRolling counts workloads the migration restarted (marked with any
// policy digest) whose rollout has not completed, leaving out this
// migration's failures: a workload that failed stays paused for the
// operator and must not hold the others back after a resume.
func stillRolling(in Input, st Status) int {
	failed := make(map[Ref]bool, len(st.Failures))
	for _, f := range st.Failures {
		failed[f.Ref] = true
	}
	n := 0
	for _, w := range in.Workloads {
		if w.Migrated != "" && !failed[w.Ref] && !Complete(w) {
			n++
		}
	}
	return n
}
