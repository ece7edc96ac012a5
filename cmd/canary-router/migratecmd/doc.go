// Package migratecmd is `canary-router migrate`: the plan of the
// workloads the policy moves, --apply to restart them from the CLI, and
// migrate pause|resume|status on the status object.
package migratecmd
