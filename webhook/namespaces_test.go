package webhook

import (
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/policy"
)

func TestAdmitNamespace(t *testing.T) {
	nsPolicy := `granularity: namespace
targets: [{revision: stable, weight: 0}, {revision: canary, weight: 100}]
`
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	cases := []struct {
		name       string
		policy     string
		operation  string
		ns         *corev1.Namespace
		wantLabels map[string]string // nil = namespace unchanged
		wantWarn   bool
	}{
		{name: "namespace granularity replaces istio-injection with a revision", policy: nsPolicy, operation: "CREATE",
			ns:         ns("shop", map[string]string{"istio-injection": "enabled", "team": "a"}),
			wantLabels: map[string]string{"istio.io/rev": "canary", "team": "a"}, wantWarn: true},
		{name: "an update that asks for injection is converted too", policy: nsPolicy, operation: "UPDATE",
			ns:         ns("shop", map[string]string{"istio-injection": "enabled"}),
			wantLabels: map[string]string{"istio.io/rev": "canary"}, wantWarn: true},
		{name: "pod granularity converts to the opt-in label", policy: testPolicy, operation: "CREATE",
			ns:         ns("shop", map[string]string{"istio-injection": "enabled"}),
			wantLabels: map[string]string{"canary-router.io/injection": "enabled"}, wantWarn: true},
		{name: "disabled namespace left alone", policy: testPolicy, operation: "CREATE",
			ns: ns("shop", map[string]string{"istio-injection": "disabled"})},
		{name: "pinned namespace left alone", policy: nsPolicy, operation: "CREATE",
			ns: ns("shop", map[string]string{"istio.io/rev": "stable"})},
		{name: "system namespace left alone", policy: nsPolicy, operation: "UPDATE",
			ns: ns("kube-system", map[string]string{"istio-injection": "enabled"})},
		{name: "own namespace left alone", policy: nsPolicy, operation: "UPDATE",
			ns: ns("canary-router-system", map[string]string{"istio-injection": "enabled"})},
		{name: "no policy leaves the namespace alone with a warning", operation: "CREATE",
			ns: ns("shop", map[string]string{"istio-injection": "enabled"}), wantWarn: true},
		{name: "delete is not touched", policy: nsPolicy, operation: "DELETE",
			ns: ns("shop", map[string]string{"istio-injection": "enabled"})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.policy)
			code, resp := post(t, f.admitter.NamespaceHandler(), reviewBody(t, "namespaces", c.operation, "", c.ns, false), "application/json")
			if code != http.StatusOK || !resp.Allowed || string(resp.UID) != "uid-1" {
				t.Fatalf("HTTP %d, response %+v: namespaces must never be blocked", code, resp)
			}
			if (len(resp.Warnings) > 0) != c.wantWarn {
				t.Errorf("warnings %q, want some: %v", resp.Warnings, c.wantWarn)
			}
			onlyMetadataPaths(t, resp.Patch)
			var out corev1.Namespace
			applyPatch(t, c.ns, resp, &out)
			if c.wantLabels == nil {
				if len(resp.Patch) != 0 {
					t.Fatalf("namespace changed by %s", resp.Patch)
				}
				return
			}
			if len(out.Labels) != len(c.wantLabels) {
				t.Errorf("labels %v, want %v", out.Labels, c.wantLabels)
			}
			for k, v := range c.wantLabels {
				if out.Labels[k] != v {
					t.Errorf("label %s=%q, want %q (all: %v)", k, out.Labels[k], v, out.Labels)
				}
			}
			if out.Annotations[policy.AnnotationDecision] == "" {
				t.Error("no decision annotation")
			}
		})
	}
}
