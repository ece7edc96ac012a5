package webhook

import (
	"strconv"

	"github.com/canary-router/canary-router/webhook/policy"
)

// decisionAnnotation renders the canary-router.io/decision annotation: a
// small JSON object an operator can read with kubectl or jq, naming the
// revision, the reason, the routing unit and the policy that produced it.
func decisionAnnotation(revision string, reason policy.Reason, unit string, snap *Snapshot) string {
	b := make([]byte, 0, 128)
	b = append(b, `{"revision":`...)
	b = appendJSONString(b, revision)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(reason))
	if unit != "" {
		b = append(b, `,"unit":`...)
		b = appendJSONString(b, unit)
	}
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, snap.Generation, 10)
	b = append(b, `,"policy":`...)
	b = appendJSONString(b, snap.Digest)
	b = append(b, '}')
	return string(b)
}
