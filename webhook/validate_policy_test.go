package webhook

import (
	"encoding/json"

	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

type fakeRevisions map[string]bool

func (f fakeRevisions) Exists(name string) (bool, bool) { return f[name], true }

func policyConfigMap(name, doc string, hasKey bool) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "canary-router-system"}, Data: map[string]string{"other": "x"}}
	if hasKey {
		cm.Data[PolicyKey] = doc
	}
	return cm
}

func TestPolicyValidator(t *testing.T) {
	v := &PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy", Revisions: fakeRevisions{"stable": true, "canary": true},
		PrometheusAllowed: []string{"http://prometheus.monitoring:9090"}}
	promPlan := func(url string) string {
		return "granularity: pod\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n" +
			"rollout:\n  steps: [{canary: 100}]\n  gates:\n    prometheus:\n      url: " + url + "\n      queries: [{name: q, query: x, max: 0}]\n"
	}
	base := "granularity: pod\nseed: s1\ntargets: [{revision: stable, weight: 90}, {revision: canary, weight: 10}]\n"
	cases := []struct {
		name      string
		operation string
		obj, old  runtime.Object
		wantAllow bool
		wantMsg   []string // substrings of the denial
		wantWarn  []string // substrings, one warning each
	}{
		{name: "valid create", operation: "CREATE", obj: policyConfigMap("canary-router-policy", base, true), wantAllow: true},
		{name: "every bad field named", operation: "UPDATE",
			obj:     policyConfigMap("canary-router-policy", "granularity: pods\ntargets: [{revision: stable, weight: 150}, {revision: '', weight: 0}]\n", true),
			old:     policyConfigMap("canary-router-policy", base, true),
			wantMsg: []string{"ConfigMap canary-router-system/canary-router-policy", "granularity: must be one of", "targets[0].weight: must be between 0 and 100", "targets[1].revision:"}},
		{name: "missing key", operation: "CREATE", obj: policyConfigMap("canary-router-policy", "", false),
			wantMsg: []string{"data.policy.yaml: required"}},
		{name: "other ConfigMaps pass", operation: "CREATE", obj: policyConfigMap("something-else", "garbage", true), wantAllow: true},
		{name: "delete passes", operation: "DELETE", obj: policyConfigMap("canary-router-policy", "", false), wantAllow: true},
		{name: "seed change warns", operation: "UPDATE",
			obj: policyConfigMap("canary-router-policy", strings.Replace(base, "s1", "s2", 1), true), old: policyConfigMap("canary-router-policy", base, true),
			wantAllow: true, wantWarn: []string{`seed changed from "s1" to "s2"`}},
		{name: "weight jump warns", operation: "UPDATE",
			obj:       policyConfigMap("canary-router-policy", "granularity: pod\nseed: s1\ntargets: [{revision: stable, weight: 20}, {revision: canary, weight: 80}]\n", true),
			old:       policyConfigMap("canary-router-policy", base, true),
			wantAllow: true, wantWarn: []string{"targets[0] (stable): weight jumps from 90 to 20", "targets[1] (canary): weight jumps from 10 to 80"}},
		{name: "removed heavy target warns", operation: "UPDATE",
			obj:       policyConfigMap("canary-router-policy", "granularity: pod\nseed: s1\ntargets: [{revision: canary, weight: 100}]\n", true),
			old:       policyConfigMap("canary-router-policy", base, true),
			wantAllow: true, wantWarn: []string{"targets[0] (canary): weight jumps from 10 to 100", "target stable removed"}},
		{name: "removed rollout block warns", operation: "UPDATE",
			obj:       policyConfigMap("canary-router-policy", "granularity: pod\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n", true),
			old:       policyConfigMap("canary-router-policy", "granularity: pod\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\nrollout: {steps: [{canary: 100}]}\n", true),
			wantAllow: true, wantWarn: []string{"rollout block removed: if the rollout completed, routing stays at its final weights (stable=0 canary=100)"}},
		{name: "unknown revision warns", operation: "CREATE",
			obj:       policyConfigMap("canary-router-policy", "granularity: pod\ntargets: [{revision: stable, weight: 50}, {revision: 1-26, weight: 50}]\n", true),
			wantAllow: true, wantWarn: []string{`targets[1].revision: no Istio revision or tag named "1-26"`}},
		{name: "pod to workload granularity is quiet", operation: "UPDATE",
			obj: policyConfigMap("canary-router-policy", strings.Replace(base, "pod", "workload", 1), true), old: policyConfigMap("canary-router-policy", base, true),
			wantAllow: true},
		{name: "pod to namespace granularity warns", operation: "UPDATE",
			obj: policyConfigMap("canary-router-policy", strings.Replace(base, "pod", "namespace", 1), true), old: policyConfigMap("canary-router-policy", base, true),
			wantAllow: true, wantWarn: []string{"granularity changed from pod to namespace"}},
		{name: "gatewayRevision naming no revision warns", operation: "CREATE",
			obj:       policyConfigMap("canary-router-policy", base+"gatewayRevision: stabel\n", true),
			wantAllow: true, wantWarn: []string{`gatewayRevision: no Istio revision or tag named "stabel" exists`}},
		{name: "gatewayRevision naming a revision is quiet", operation: "CREATE",
			obj: policyConfigMap("canary-router-policy", base+"gatewayRevision: stable\n", true), wantAllow: true},
		{name: "allowed Prometheus URL", operation: "CREATE",
			obj: policyConfigMap("canary-router-policy", promPlan("http://prometheus.monitoring:9090/"), true), wantAllow: true},
		{name: "unlisted Prometheus URL refused", operation: "CREATE",
			obj:     policyConfigMap("canary-router-policy", promPlan("http://169.254.169.254:80"), true),
			wantMsg: []string{`rollout.gates.prometheus.url: prometheus URL "http://169.254.169.254:80" is not allowed: the router allows only http://prometheus.monitoring:9090`}},
		{name: "small edit is quiet", operation: "UPDATE",
			obj:       policyConfigMap("canary-router-policy", "granularity: pod\nseed: s1\ntargets: [{revision: stable, weight: 75}, {revision: canary, weight: 25}]\n", true),
			old:       policyConfigMap("canary-router-policy", base, true),
			wantAllow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			body := reviewBodyWithOld(t, "configmaps", c.operation, "canary-router-system", c.obj, c.old)
			code, resp := post(t, f.admitter.PolicyHandler(v), body, "application/json")
			if code != http.StatusOK || resp.Allowed != c.wantAllow {
				t.Fatalf("HTTP %d allowed %v (%+v), want allowed %v", code, resp.Allowed, resp.Result, c.wantAllow)
			}
			if !c.wantAllow {
				if resp.Result.Code != http.StatusUnprocessableEntity {
					t.Errorf("code %d, want 422", resp.Result.Code)
				}
				for _, m := range c.wantMsg {
					if !strings.Contains(resp.Result.Message, m) {
						t.Errorf("message %q lacks %q", resp.Result.Message, m)
					}
				}
			}
			if len(resp.Warnings) != len(c.wantWarn) {
				t.Fatalf("warnings %q, want %d", resp.Warnings, len(c.wantWarn))
			}
			for i, w := range c.wantWarn {
				if !strings.Contains(resp.Warnings[i], w) {
					t.Errorf("warning %q lacks %q", resp.Warnings[i], w)
				}
			}
		})
	}
}

// reviewBodyWithOld is reviewBody with an oldObject, as an UPDATE carries.
func reviewBodyWithOld(t *testing.T, resource, operation, namespace string, obj, old runtime.Object) []byte {
	t.Helper()
	body := reviewBody(t, resource, operation, namespace, obj, false)
	if old == nil {
		return body
	}
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	r.Request.OldObject = runtime.RawExtension{Raw: raw}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
