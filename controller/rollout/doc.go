// Package rollout drives a control-plane canary by itself (issue 17): it
// walks the policy's rollout plan step by step, puts each step's weights
// in force, lets the migration move running workloads to them, measures
// gates (built in and Prometheus) before each advance and while a step
// holds, and pauses or rolls back when one fails.
//
// Like the migration it has a pure core and a thin controller:
//   - Step is a pure state machine over State, the plan, the time, the
//     gate measurements and the migration's outcome; it never advances
//     on unknown gate data;
//   - the gates (gates.go, prometheus.go) turn informer data and PromQL
//     answers into GateResults;
//   - the Controller runs on the leader only, keeps State in the router's
//     status object (never the operator's ConfigMap), and writes the
//     weights in force under inforce.OverlayKey, which every replica's
//     store folds into the policy it routes by.
package rollout
