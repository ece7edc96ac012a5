package webhook

import (
	"strconv"

	"github.com/canary-router/canary-router/webhook/policy"
	"github.com/canary-router/canary-router/webhook/wire"
)

// decisionNote is what the decision annotation records of one decision.
type decisionNote struct {
	revision string
	reason   policy.Reason
	unit     string
	// tagRevision is the revision a revision tag pointed to when the
	// router wrote the tag; Istio records the revision, so this is what
	// the pod's injection will name.
	tagRevision string
	// avoided is the target the policy chose but that was unavailable
	// (reason fallback), and cause why.
	avoided, cause string
	// balancedKind and balancedName are the controller whose pods the
	// choice balanced.
	balancedKind, balancedName string
	// podView says why a pod that should have been balanced was drawn.
	podView string
}

// decisionAnnotation renders the canary-router.io/decision annotation: a
// small JSON object an operator can read with kubectl or jq, naming the
// revision, the reason, the routing unit and the policy that produced it,
// and, when they apply, the tag's revision, the target fallen back from,
// and what a balanced choice was balanced against.
func decisionAnnotation(n decisionNote, snap *Snapshot) string {
	return string(appendDecision(make([]byte, 0, 160), n, snap))
}

// appendDecision appends the decision annotation's text to b: the
// admission path writes it into the patch through a buffer on its stack.
func appendDecision(b []byte, n decisionNote, snap *Snapshot) []byte {
	b = append(b, `{"revision":`...)
	b = wire.AppendJSONString(b, n.revision)
	b = append(b, `,"reason":`...)
	b = wire.AppendJSONString(b, string(n.reason))
	b = appendOptional(b, "unit", n.unit)
	b = appendOptional(b, "tagRevision", n.tagRevision)
	b = appendOptional(b, "avoided", n.avoided)
	b = appendOptional(b, "cause", n.cause)
	if n.balancedKind != "" {
		b = append(b, `,"balancedOver":"`...)
		b = wire.AppendJSONChars(b, n.balancedKind)
		b = append(b, '/')
		b = wire.AppendJSONChars(b, n.balancedName)
		b = append(b, '"')
	}
	b = appendOptional(b, "podView", n.podView)
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

// setDecision sets the decision annotation on p, rendered without an
// intermediate string.
func (p *patchBuilder) setDecision(n decisionNote, snap *Snapshot) {
	var scratch [256]byte
	p.setAnnotationBytes(policy.AnnotationDecision, appendDecision(scratch[:0], n, snap))
}

// DecisionAnnotation renders the decision annotation for an object the
// router changes outside admission (the namespace reconciler), in the same
// form the webhooks write.
func DecisionAnnotation(revision string, reason policy.Reason, unit, tagRevision string, snap *Snapshot) string {
	return decisionAnnotation(decisionNote{revision: revision, reason: reason, unit: unit, tagRevision: tagRevision}, snap)
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
