package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
)

// managedNamespace creates a namespace the way an operator opts one in
// today, with istio-injection=enabled, and checks the router converted it.
func managedNamespace(t *testing.T, name string) {
	t.Helper()
	ns := env.CreateNamespace(t, name, map[string]string{"istio-injection": "enabled"})
	if _, ok := ns.Labels["istio-injection"]; ok || ns.Labels["canary-router.io/injection"] != "enabled" {
		t.Fatalf("namespace %s not converted to the router's opt-in label: %v", name, ns.Labels)
	}
}

// createPod creates a bare pod with labels and annotations.
func createPod(t *testing.T, ns, name string, labels, annotations map[string]string) *corev1.Pod {
	t.Helper()
	p := harness.Pod(name)
	p.Labels, p.Annotations = labels, annotations
	return env.CreatePod(t, ns, p)
}

// report prints one scenario's outcome in the form the acceptance reads.
func report(t *testing.T, scenario string, target float64, canary, total, mismatches int) {
	t.Helper()
	realised := 0.0
	if total > 0 {
		realised = float64(canary) / float64(total)
	}
	t.Logf("RESULT scenario=%q target_canary_share=%.2f realised_canary_share=%.2f (%d/%d) routed_vs_injected_mismatches=%d",
		scenario, target, realised, canary, total, mismatches)
}

var metaCreate = metav1.CreateOptions{}
