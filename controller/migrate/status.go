package migrate

import (
	"encoding/json"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The status object: a ConfigMap the router owns in its own namespace,
// never the operator's policy ConfigMap, so a GitOps tool sees no drift
// there. A ConfigMap rather than a custom resource keeps the install free
// of CRDs and lets a namespaced Role on one resourceName grant an operator
// pause and resume (issue 17's rollout commands use the same object).
const (
	// StatusConfigMap names the status object.
	StatusConfigMap = "canary-router-status"
	// StatusKey holds the Status as JSON; only the leader (or the CLI's
	// --apply) writes it.
	StatusKey = "migration"
	// PausedKey holds "true" while the migration is paused. It is a key of
	// its own so `migrate pause|resume` is a merge patch of one field that
	// never races the leader's writes of StatusKey.
	PausedKey = "migration.paused"
	// PauseReasonKey says who paused, or which failure paused it.
	PauseReasonKey = "migration.pauseReason"
)

// Phase is the migration's state.
type Phase string

// Phases of a migration.
const (
	PhaseIdle     Phase = "Idle"     // no migration block, or nothing to do yet
	PhaseRunning  Phase = "Running"  // a batch is rolling or the next one waits for its interval
	PhasePaused   Phase = "Paused"   // by an operator or after a failed batch
	PhaseComplete Phase = "Complete" // nothing drifted is left to restart
)

// maxFailures bounds the failures kept, as Sail's SEP75 keeps the last 10.
const maxFailures = 10

// Batch is the batch in flight. RestartedAt is the value written to each
// workload's pod template, kept so a new leader repeats the very same
// patch (a no-op) for a workload the last one may not have reached.
type Batch struct {
	Index       int       `json:"index"`
	Started     time.Time `json:"started"`
	RestartedAt string    `json:"restartedAt"`
	Workloads   []Move    `json:"workloads"`
}

// Failure is a workload whose batch did not complete in time.
type Failure struct {
	Ref
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// Status is the migration's progress, level-triggered: everything a new
// leader needs to carry on where the last one stopped.
type Status struct {
	// Digest is the policy the progress belongs to; a new policy starts a
	// new migration.
	Digest string `json:"digest"`
	Phase  Phase  `json:"phase"`
	// Batch is in flight, nil between batches.
	Batch *Batch `json:"batch,omitempty"`
	// Batches counts completed batches; LastBatchDone is when the last one
	// finished, which the interval counts from.
	Batches       int       `json:"batches"`
	LastBatchDone time.Time `json:"lastBatchDone,omitzero"`
	// Restarted counts workloads restarted for this policy; Done, Pending,
	// Skipped and Reported are from the last plan.
	Restarted int `json:"restarted"`
	Done      int `json:"done"`
	Pending   int `json:"pending"`
	Skipped   int `json:"skipped"`
	Reported  int `json:"reported"`
	// Total is Done + Pending + in flight: the N of M in `status`.
	Total int `json:"total"`
	// PendingByTarget counts the pending moves by destination target
	// ("split" in pod granularity): the drift `canary-router status` shows.
	PendingByTarget map[string]int `json:"pendingByTarget,omitempty"`
	// SkippedByReason counts the skipped workloads by safety rule.
	SkippedByReason map[SkipReason]int `json:"skippedByReason,omitempty"`
	Failures        []Failure          `json:"failures,omitempty"`
	Conditions      []metav1.Condition `json:"conditions,omitempty"`
}

// Control is what an operator sets on the status object.
type Control struct {
	Paused      bool
	PauseReason string
}

// DecodeStatus reads the status object's data; a missing or unreadable
// status is a fresh one (the plan is recomputed from the cluster anyway).
func DecodeStatus(data map[string]string) (Status, Control) {
	var st Status
	if raw := data[StatusKey]; raw != "" {
		if json.Unmarshal([]byte(raw), &st) != nil {
			st = Status{}
		}
	}
	return st, Control{Paused: data[PausedKey] == "true", PauseReason: data[PauseReasonKey]}
}

// Encode renders the status for StatusKey.
func (s Status) Encode() string {
	b, _ := json.Marshal(s) // plain structs: cannot fail
	return string(b)
}

// setCondition records a condition at now by the injected clock;
// meta.SetStatusCondition moves lastTransitionTime only when the status
// changes.
func (s *Status) setCondition(now time.Time, typ string, ok bool, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)}
	if ok {
		c.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

func (s *Status) addFailures(fs []Failure) {
	s.Failures = append(s.Failures, fs...)
	if n := len(s.Failures); n > maxFailures {
		s.Failures = s.Failures[n-maxFailures:]
	}
}

// Reason is the pause reason while paused, else "".
func (c Control) Reason() string {
	if !c.Paused {
		return ""
	}
	return c.PauseReason
}
