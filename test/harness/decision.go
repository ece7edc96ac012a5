package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// DecisionAnnotation is where the router records why it routed an object.
const DecisionAnnotation = "canary-router.io/decision"

// Decision is the router's decision annotation, with every field a suite
// reads.
type Decision struct {
	Revision     string `json:"revision"`
	Reason       string `json:"reason"`
	Unit         string `json:"unit"`
	Generation   int64  `json:"generation"`
	Policy       string `json:"policy"`
	TagRevision  string `json:"tagRevision"`
	Avoided      string `json:"avoided"`
	Cause        string `json:"cause"`
	BalancedOver string `json:"balancedOver"`
	PodView      string `json:"podView"`
}

// ParseDecision reads an object's decision; ok is false when it has none
// or one that is not JSON. Unlike DecisionOf it is safe off the test's
// goroutine.
func ParseDecision(m metav1.ObjectMeta) (d Decision, ok bool) {
	raw, ok := m.Annotations[DecisionAnnotation]
	if !ok {
		return Decision{}, false
	}
	return d, json.Unmarshal([]byte(raw), &d) == nil
}

// DecisionOf reads an object's decision; ok is false when it has none,
// and a decision that is not JSON fails the test.
func DecisionOf(t testing.TB, m metav1.ObjectMeta) (Decision, bool) {
	t.Helper()
	raw, ok := m.Annotations[DecisionAnnotation]
	if !ok {
		return Decision{}, false
	}
	var d Decision
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("%s: decision annotation %q is not JSON: %v", m.Name, raw, err)
	}
	return d, true
}

// Digest is the policy digest the router writes in its decisions.
func Digest(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:4])
}

// maxPodErrors caps the errors RoutedPods reports one by one, so a load
// of hundreds of pods does not bury the summary.
const maxPodErrors = 10

// RoutedPods checks pods the router should have routed: each has a
// decision, a non-empty istio.io/rev label naming the decided revision,
// and was injected by that revision. It returns the pods per injected
// revision and how many break the rule, and reports each of the first
// few as a test error.
func RoutedPods(t testing.TB, pods []corev1.Pod) (perRevision map[string]int, mismatches int) {
	t.Helper()
	perRevision = map[string]int{}
	for i := range pods {
		p := &pods[i]
		d, routed := ParseDecision(p.ObjectMeta)
		injected := fakeistio.InjectedRevision(p)
		label := p.Labels["istio.io/rev"]
		if !routed || label == "" || d.Revision != label || injected != label {
			mismatches++
			if mismatches <= maxPodErrors {
				t.Errorf("pod %s/%s: label istio.io/rev=%q, decision %+v (present %v), injected by %q",
					p.Namespace, p.Name, label, d, routed, injected)
			}
		}
		perRevision[injected]++
	}
	if mismatches > maxPodErrors {
		t.Errorf("%d more pods not routed or injected by another revision", mismatches-maxPodErrors)
	}
	return perRevision, mismatches
}
