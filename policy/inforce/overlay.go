package inforce

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/canary-router/canary-router/policy"
)

// OverlayKey is the key of the router's status object (ConfigMap
// canary-router-status, the one the migration keeps its progress in) that
// holds the rollout's weights in force. The leader writes it; every
// replica reads it through an informer, so all of them route by the same
// weights and the operator's policy ConfigMap is never written.
const OverlayKey = "rollout.weights"

// Overlay is what a self-driving rollout (controller/rollout) lays over
// the policy: the weights in force at its current step.
type Overlay struct {
	// ID is the rollout the weights belong to (policy.Policy.RolloutID);
	// weights of another rollout are ignored.
	ID string `json:"id"`
	// Attempt counts retries, so a step entered again after a rollback is
	// a new migration generation rather than "already restarted".
	Attempt int `json:"attempt"`
	// Step is the step index (0-based) the weights belong to, recorded in
	// each decision annotation.
	Step int `json:"step"`
	// Phase is the rollout's phase, for status.
	Phase   string          `json:"phase"`
	Weights []policy.Target `json:"weights"`
	// Reason explains a paused or rolled-back rollout; pods routed
	// meanwhile carry it in an admission warning.
	Reason string `json:"reason,omitempty"`
}

// Warning is the admission warning for pods routed while the rollout is
// stopped (Paused, RollingBack, Aborted), "" otherwise: the user should
// know their pod went by weights a failed gate or an operator set.
func (o *Overlay) Warning() string {
	if o == nil {
		return ""
	}
	switch o.Phase {
	case "Paused", "RollingBack", "Aborted":
		return "canary-router: the control-plane rollout is " + o.Phase + " at step " + strconv.Itoa(o.Step+1) +
			" (" + o.Reason + "); this pod was routed by the weights in force. See `canary-router rollout status`"
	}
	return ""
}

// Encode renders the overlay for OverlayKey.
func (o Overlay) Encode() string {
	b, _ := json.Marshal(o) // plain struct: cannot fail
	return string(b)
}

// DecodeOverlay reads OverlayKey; "" or garbage is no overlay, so a
// damaged status object routes by the policy's own weights.
func DecodeOverlay(s string) *Overlay {
	if s == "" {
		return nil
	}
	var o Overlay
	if json.Unmarshal([]byte(s), &o) != nil || len(o.Weights) == 0 {
		return nil
	}
	return &o
}

// Apply returns p routing by the overlay's weights; ok is false, and p
// returned as is, when the overlay does not belong to p (see withOverlay).
// `canary-router status` and the migrate CLI read the weights in force
// through it, as the router does.
func (o *Overlay) Apply(p *policy.Policy) (*policy.Policy, bool) {
	if o == nil || p == nil {
		return p, false
	}
	if p.Rollout == nil {
		// A completed rollout's weights outlive its block, over the same
		// revisions, until the leader sees the targets agree and removes
		// them (controller/rollout): removing the block must not send
		// routing, and so the migration, back to stale targets.
		if o.Phase != "Complete" || !policy.SameRevisions(o.Weights, p.Targets) {
			return p, false
		}
		return p.WithWeights(o.Weights)
	}
	if o.ID != p.RolloutID() {
		return p, false
	}
	return p.WithWeights(o.Weights)
}

// withOverlay returns the snapshot routing by o's weights, or base itself
// when o does not apply: no overlay, a policy without a rollout block
// (an operator who deletes the block takes routing back, except from a
// completed rollout: see Apply), or weights of
// another rollout or another set of targets (the policy changed under a
// stale status; the leader writes new weights on its next pass).
//
// The effective snapshot gets a digest of its own, over the document and
// the weights, so the migration treats each step as a new policy
// generation and restarts each workload at most once per step.
func withOverlay(base *Snapshot, o *Overlay) *Snapshot {
	if base == nil {
		return base
	}
	p, ok := o.Apply(base.Policy)
	if !ok {
		return base
	}
	h := sha256.New()
	h.Write(base.sum[:])
	h.Write([]byte(o.ID + "/" + strconv.Itoa(o.Attempt)))
	for _, t := range p.Targets {
		h.Write([]byte("/" + t.Revision + "=" + strconv.FormatFloat(t.Weight, 'g', -1, 64)))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	eff := *base
	eff.Policy = p
	eff.Digest = hex.EncodeToString(sum[:4])
	eff.Rollout = o
	eff.sum = sum
	return &eff
}

func overlayEqual(a, b *Overlay) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Attempt == b.Attempt && a.Step == b.Step && a.Phase == b.Phase && a.Reason == b.Reason && slices.Equal(a.Weights, b.Weights)
}
