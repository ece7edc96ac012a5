package inforce

import (
	"strconv"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/webhook/wire"
)

// Note is what the decision annotation records of one decision.
type Note struct {
	Revision string
	Reason   policy.Reason
	Unit     string
	// TagRevision is the revision a revision tag pointed to when the
	// router wrote the tag; Istio records the revision, so this is what
	// the pod's injection will name.
	TagRevision string
	// Avoided is the target the policy chose but that was unavailable
	// (reason fallback), and Cause why.
	Avoided, Cause string
	// BalancedKind and BalancedName are the controller whose pods the
	// choice balanced.
	BalancedKind, BalancedName string
	// PodView says why a pod that should have been balanced was drawn.
	PodView string
}

// Annotation renders the canary-router.io/decision annotation: a small
// JSON object an operator can read with kubectl or jq, naming the
// revision, the reason, the routing unit and the policy that produced it,
// and, when they apply, the tag's revision, the target fallen back from,
// and what a balanced choice was balanced against.
func Annotation(n Note, snap *Snapshot) string {
	return string(AppendAnnotation(make([]byte, 0, 160), n, snap))
}

// AppendAnnotation appends the decision annotation's text to b: the
// admission path writes it into the patch through a buffer on its stack.
func AppendAnnotation(b []byte, n Note, snap *Snapshot) []byte {
	b = append(b, `{"revision":`...)
	b = wire.AppendJSONString(b, n.Revision)
	b = append(b, `,"reason":`...)
	b = wire.AppendJSONString(b, string(n.Reason))
	b = appendOptional(b, "unit", n.Unit)
	b = appendOptional(b, "tagRevision", n.TagRevision)
	b = appendOptional(b, "avoided", n.Avoided)
	b = appendOptional(b, "cause", n.Cause)
	if n.BalancedKind != "" {
		b = append(b, `,"balancedOver":"`...)
		b = wire.AppendJSONChars(b, n.BalancedKind)
		b = append(b, '/')
		b = wire.AppendJSONChars(b, n.BalancedName)
		b = append(b, '"')
	}
	b = appendOptional(b, "podView", n.PodView)
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, snap.Generation, 10)
	b = append(b, `,"policy":`...)
	b = wire.AppendJSONString(b, snap.Digest)
	if snap.Rollout != nil {
		// The rollout step whose weights routed it (0-based), so a pod
		// placed during a rollout can be traced to the step.
		b = append(b, `,"step":`...)
		b = strconv.AppendInt(b, int64(snap.Rollout.Step), 10)
	}
	return append(b, '}')
}

// DecisionAnnotation renders the decision annotation for an object the
// router changes outside admission (the namespace reconciler, the
// migration), in the same form the webhooks write.
func DecisionAnnotation(revision string, reason policy.Reason, unit, tagRevision string, snap *Snapshot) string {
	return Annotation(Note{Revision: revision, Reason: reason, Unit: unit, TagRevision: tagRevision}, snap)
}

// appendOptional appends ,"key":"value" when value is not empty.
func appendOptional(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return wire.AppendJSONString(b, value)
}
