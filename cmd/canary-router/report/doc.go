// Package report is what the operator commands (status, rollout, migrate)
// and the dashboard share: reading the cluster and the status object,
// rendering them as text or as -o json|yaml documents, and writing an
// operator's rollout request to the status object. It is not a command:
// each command's package imports it, and it imports none of them.
package report
