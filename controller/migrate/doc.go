// Package migrate finishes a move: it restarts the running workloads whose
// pods sit where the current policy no longer routes them, in batches,
// and nothing else.
//
// The package has three layers:
//   - a pure planner (Drift, NewPlan) over an Input built from informer
//     caches: which workloads restart, why, and in which batches, and which
//     are skipped or only reported;
//   - a pure batch step (Step) over the Status the router keeps in its own
//     ConfigMap: given the plan, the status and the time, what to restart
//     now, what to record and when to look again. A rollout step machine
//     (issue 17) drives the same Step at each of its steps;
//   - the controller (Controller) that feeds both from informers, writes
//     the restarts and the status, and runs only on the leader.
package migrate
