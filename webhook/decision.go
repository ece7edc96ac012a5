package webhook

import (
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// setDecision sets the decision annotation (inforce.AppendAnnotation) on
// p, rendered without an intermediate string.
func (p *patchBuilder) setDecision(n inforce.Note, snap *inforce.Snapshot) {
	var scratch [256]byte
	p.setAnnotationBytes(policy.AnnotationDecision, inforce.AppendAnnotation(scratch[:0], n, snap))
}
