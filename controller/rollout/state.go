package rollout

import (
	"encoding/json"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// Keys of the status object (migrate.StatusConfigMap) the rollout uses.
// Like the migration's, the operator's controls are keys of their own, so
// a command is a merge patch of one or two fields that never races the
// leader's writes of StateKey.
const (
	// StateKey holds the State as JSON; only the leader writes it.
	StateKey = "rollout"
	// WeightsKey holds the weights in force (inforce.Overlay), written in
	// the same patch as StateKey and read by every replica.
	WeightsKey = inforce.OverlayKey
	// PausedKey holds "true" while an operator holds the rollout.
	PausedKey = "rollout.paused"
	// PauseReasonKey says who paused it and why.
	PauseReasonKey = "rollout.pauseReason"
	// RequestKey holds the operator's last one-shot command as
	// "<action>/<id>"; the leader acts on an id once (State.LastRequest).
	RequestKey = "rollout.request"
)

// Phase is where a rollout stands.
type Phase string

// Phases of a rollout.
const (
	// PhaseProgressing: the step's weights are in force and the migration
	// moves workloads to them.
	PhaseProgressing Phase = "Progressing"
	// PhaseHolding: the step's migration is done; its weights hold while
	// the gates are measured, until the hold ends (or a promote).
	PhaseHolding Phase = "Holding"
	// PhasePaused: an operator, a failed gate (onFailure: pause), a failed
	// migration or unknown gate data stopped it at the weights in force.
	PhasePaused Phase = "Paused"
	// PhaseRollingBack: a gate failed (onFailure: rollback) or an operator
	// aborted; the weights went back and the migration moves workloads back.
	PhaseRollingBack Phase = "RollingBack"
	// PhaseAborted: rolled back and done moving; retry starts again.
	PhaseAborted Phase = "Aborted"
	// PhaseComplete: the last step held with every gate passing.
	PhaseComplete Phase = "Complete"
)

// Verdict is a gate measurement's outcome.
type Verdict string

// Verdicts of a gate measurement.
const (
	VerdictPass Verdict = "pass"
	VerdictFail Verdict = "fail"
	// VerdictUnknown: no data (Prometheus unreachable, no sample). A
	// rollout never advances on it.
	VerdictUnknown Verdict = "unknown"
)

// GateResult is one gate's measurement.
type GateResult struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Verdict Verdict `json:"verdict"`
	// Message says what was measured against what, or why it is unknown.
	Message string `json:"message,omitempty"`
	// FailureLimit is how many failures in a row the gate tolerates.
	FailureLimit int `json:"failureLimit,omitempty"`
}

// State is the rollout's progress: everything a new leader needs to carry
// on at the same step without running finished migrations again.
type State struct {
	// ID is policy.Policy.RolloutID of the plan walked.
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
	Step    int    `json:"step"`
	Phase   Phase  `json:"phase"`
	// Weights are the weights in force (also in WeightsKey).
	Weights []policy.Target `json:"weights"`
	// LastPassed is the last step whose hold passed, -1 for none.
	LastPassed int `json:"lastPassed"`
	// Reason explains a Paused, RollingBack or Aborted phase.
	Reason string `json:"reason,omitempty"`
	// AutoResume marks a pause for unknown gate data: it ends on its own
	// when every gate is measured again. ByOperator marks a pause an
	// operator set (PausedKey): it ends when they clear it.
	AutoResume bool `json:"autoResume,omitempty"`
	ByOperator bool `json:"byOperator,omitempty"`
	// UnknownSince is when the gates turned unknown; past the plan's
	// maxUnknown the pause stops waiting for data (AutoResume false).
	UnknownSince time.Time `json:"unknownSince,omitzero"`
	// StepStarted is when the step's weights came into force; HoldStarted
	// when its migration completed (zero before); Promoted when an
	// operator ended the hold.
	StepStarted time.Time `json:"stepStarted"`
	HoldStarted time.Time `json:"holdStarted,omitzero"`
	Promoted    time.Time `json:"promoted,omitzero"`
	// LastMeasured is when the gates were last measured; Gates holds those
	// measurements and Failures each gate's failures in a row.
	LastMeasured time.Time      `json:"lastMeasured,omitzero"`
	Gates        []GateResult   `json:"gates,omitempty"`
	Failures     map[string]int `json:"failures,omitempty"`
	// LastTransition is when Phase last changed.
	LastTransition time.Time `json:"lastTransition"`
	// Retained marks a Complete rollout whose block was removed while the
	// targets still disagreed with its final weights: those weights keep
	// routing until the targets agree.
	Retained bool `json:"retained,omitempty"`
	// LastRequest is the id of the last operator command acted on.
	LastRequest string             `json:"lastRequest,omitempty"`
	Conditions  []metav1.Condition `json:"conditions,omitempty"`
}

// Control is what an operator sets on the status object.
type Control struct {
	Paused      bool
	PauseReason string
	// Action and RequestID are the last one-shot command.
	Action, RequestID string
}

// Actions an operator may request with RequestKey.
const (
	ActionResume  = "resume"
	ActionPromote = "promote"
	ActionAbort   = "abort"
	ActionRetry   = "retry"
)

// Decode reads the status object's data; a missing or unreadable state
// is no state. The controller then tells a lost state (the rollout stops,
// Controller.lost) from a rollout never started (it starts at step 0).
func Decode(data map[string]string) (*State, Control) {
	ctl := Control{Paused: data[PausedKey] == "true", PauseReason: data[PauseReasonKey]}
	if req := data[RequestKey]; req != "" {
		ctl.Action, ctl.RequestID, _ = strings.Cut(req, "/")
	}
	raw := data[StateKey]
	if raw == "" {
		return nil, ctl
	}
	var st State
	if json.Unmarshal([]byte(raw), &st) != nil {
		return nil, ctl
	}
	return &st, ctl
}

// Encode renders the state for StateKey.
func (s State) Encode() string {
	b, _ := json.Marshal(s) // plain structs: cannot fail
	return string(b)
}

// Overlay is the weights in force as every replica reads them.
func (s State) Overlay() inforce.Overlay {
	return inforce.Overlay{ID: s.ID, Attempt: s.Attempt, Step: s.Step, Phase: string(s.Phase), Weights: s.Weights, Reason: s.Reason}
}

// setCondition records a condition at now by the injected clock;
// meta.SetStatusCondition moves lastTransitionTime only when the status
// changes.
func (s *State) setCondition(now time.Time, typ string, ok bool, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)}
	if ok {
		c.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&s.Conditions, c)
}
