package webhook

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAdoptingANamespace: the updates docs/routing.md tells operators to
// make on an existing namespace convert it as a CREATE would.
func TestAdoptingANamespace(t *testing.T) {
	const nsPolicy = "granularity: namespace\ntargets: [{revision: stable, weight: 0}, {revision: canary, weight: 100}]\n"
	tests := []struct {
		name   string
		policy string
		labels map[string]string // as the UPDATE leaves them
		want   map[string]string
	}{
		{"already injected by Istio, router label added", testPolicy,
			map[string]string{"istio-injection": "enabled", "canary-router.io/injection": "enabled"},
			map[string]string{"canary-router.io/injection": "enabled"}},
		{"already injected by Istio, namespace granularity", nsPolicy,
			map[string]string{"istio-injection": "enabled", "canary-router.io/injection": "enabled"},
			map[string]string{"canary-router.io/injection": "enabled", "istio.io/rev": "canary"}},
		{"pin removed, namespace granularity", nsPolicy,
			map[string]string{"canary-router.io/injection": "enabled"},
			map[string]string{"canary-router.io/injection": "enabled", "istio.io/rev": "canary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := gated(t, tt.policy, cluster("canary-router", "stable", "canary"), nil)
			ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: tt.labels}}
			_, resp := post(t, f.admitter.NamespaceHandler(), reviewBody(t, "namespaces", "UPDATE", "", ns, false), "application/json")
			var out corev1.Namespace
			applyPatch(t, ns, resp, &out)
			if len(out.Labels) != len(tt.want) {
				t.Fatalf("labels %v, want %v", out.Labels, tt.want)
			}
			for k, v := range tt.want {
				if out.Labels[k] != v {
					t.Errorf("labels %v, want %v", out.Labels, tt.want)
				}
			}
		})
	}
}
