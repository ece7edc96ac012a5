package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

func TestAdmitPod(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	bare := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "shop"},
	}
	cases := []struct {
		name       string
		policy     string
		namespace  string
		operation  string
		pod        *corev1.Pod
		wantAllow  bool
		wantCode   int32
		wantRev    string // "" = the pod must come out unchanged
		wantReason string
		wantUnit   string
	}{
		{name: "deployment pod gets the workload's sticky revision", policy: testPolicy, namespace: "shop", operation: "CREATE",
			pod: deploymentPod("shop", "web", "5d8f7c", nil), wantAllow: true,
			wantRev: p.Pick("shop/Deployment/web"), wantReason: "sticky", wantUnit: "Deployment/web"},
		{name: "pod without labels or annotations gets both maps", policy: testPolicy, namespace: "shop", operation: "CREATE",
			pod: bare, wantAllow: true, wantRev: p.Pick("shop/Pod/bare"), wantReason: "sticky", wantUnit: "Pod/bare"},
		{name: "pinned pod is left alone", policy: testPolicy, namespace: "shop", operation: "CREATE",
			pod: deploymentPod("shop", "web", "5d8f7c", map[string]string{"istio.io/rev": "canary"}), wantAllow: true},
		{name: "opted-out pod is left alone", policy: testPolicy, namespace: "shop", operation: "CREATE",
			pod: deploymentPod("shop", "web", "5d8f7c", map[string]string{"sidecar.istio.io/inject": "false"}), wantAllow: true},
		{name: "router's own namespace is never routed", policy: testPolicy, namespace: "canary-router-system", operation: "CREATE",
			pod: deploymentPod("canary-router-system", "canary-router", "abc", nil), wantAllow: true},
		{name: "update is not routed", policy: testPolicy, namespace: "shop", operation: "UPDATE",
			pod: deploymentPod("shop", "web", "5d8f7c", nil), wantAllow: true},
		{name: "no policy refuses a pod that needs routing", namespace: "shop", operation: "CREATE",
			pod: deploymentPod("shop", "web", "5d8f7c", nil), wantAllow: false, wantCode: http.StatusServiceUnavailable},
		{name: "no policy still admits a pinned pod", namespace: "shop", operation: "CREATE",
			pod: deploymentPod("shop", "web", "5d8f7c", map[string]string{"istio.io/rev": "stable"}), wantAllow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.policy)
			code, resp := post(t, f.admitter.PodHandler(), reviewBody(t, "pods", c.operation, c.namespace, c.pod, false), "application/json")
			if code != http.StatusOK || string(resp.UID) != "uid-1" || resp.Allowed != c.wantAllow {
				t.Fatalf("HTTP %d uid %q allowed %v (%v), want HTTP 200 uid-1 allowed %v", code, resp.UID, resp.Allowed, resp.Result, c.wantAllow)
			}
			if !c.wantAllow {
				if resp.Result == nil || resp.Result.Code != c.wantCode || resp.Result.Message == "" {
					t.Fatalf("result %+v, want code %d with a message", resp.Result, c.wantCode)
				}
				return
			}
			onlyMetadataPaths(t, resp.Patch)
			var out corev1.Pod
			applyPatch(t, c.pod, resp, &out)
			if c.wantRev == "" {
				if len(resp.Patch) != 0 {
					t.Fatalf("pod changed by %s", resp.Patch)
				}
				return
			}
			if got := out.Labels[policy.LabelIstioRev]; got != c.wantRev {
				t.Errorf("label istio.io/rev=%q, want %q", got, c.wantRev)
			}
			var d struct {
				Revision, Reason, Unit, Policy string
				Generation                     int64
			}
			if err := json.Unmarshal([]byte(out.Annotations[policy.AnnotationDecision]), &d); err != nil {
				t.Fatalf("decision annotation %q: %v", out.Annotations[policy.AnnotationDecision], err)
			}
			if d.Revision != c.wantRev || d.Reason != c.wantReason || d.Unit != c.wantUnit || d.Generation != 1 || len(d.Policy) != 8 {
				t.Errorf("decision %+v, want revision %s reason %s unit %s generation 1", d, c.wantRev, c.wantReason, c.wantUnit)
			}
			for k, v := range c.pod.Labels {
				if out.Labels[k] != v {
					t.Errorf("label %s changed from %q to %q", k, v, out.Labels[k])
				}
			}
		})
	}
}

func TestDryRunIsNotCounted(t *testing.T) {
	f := newFixture(t, testPolicy)
	pod := deploymentPod("shop", "web", "5d8f7c", nil)
	rev := f.store.Load().Policy.Pick("shop/Deployment/web")
	counter := f.metrics.decisions.WithLabelValues(resourcePods, rev, "sticky")

	_, resp := post(t, f.admitter.PodHandler(), reviewBody(t, "pods", "CREATE", "shop", pod, true), "application/json")
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("dry run must still be routed: %+v", resp)
	}
	if got := testutil.ToFloat64(counter); got != 0 {
		t.Fatalf("dry run counted: %v", got)
	}
	post(t, f.admitter.PodHandler(), reviewBody(t, "pods", "CREATE", "shop", pod, false), "application/json")
	if got := testutil.ToFloat64(counter); got != 1 {
		t.Fatalf("decision count %v, want 1", got)
	}
}

func TestPanicBecomes500WithUID(t *testing.T) {
	f := newFixture(t, testPolicy)
	f.admitter.draw = func() uint64 { panic("boom") }
	code, resp := post(t, f.admitter.PodHandler(), reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "1", nil), false), "application/json")
	if code != http.StatusInternalServerError || string(resp.UID) != "uid-1" || resp.Allowed || resp.Result.Code != 500 {
		t.Fatalf("HTTP %d, response %+v", code, resp)
	}
	if got := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(resourcePods, causeInternal)); got != 1 {
		t.Fatalf("internal rejections %v, want 1", got)
	}
}

// TestRefusalNamesThePolicyInForce: a router installed in another
// namespace (the Helm chart's release namespace) names its own policy
// ConfigMap when it refuses a pod, not the default install's.
func TestRefusalNamesThePolicyInForce(t *testing.T) {
	store := inforce.NewStore(time.Now, nil, nil)
	a := NewAdmitter(AdmitterConfig{Store: store, Metrics: NewMetrics(prometheus.NewRegistry(), "test"), Log: zap.NewNop(),
		Draw: func() uint64 { return 1 }, OwnNamespace: "mesh-routing", PolicyRef: "mesh-routing/canary-router-policy"})
	_, resp := post(t, a.PodHandler(), reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "5d8f7c", nil), false), "application/json")
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "ConfigMap mesh-routing/canary-router-policy,") ||
		strings.Contains(resp.Result.Message, "canary-router-system") {
		t.Errorf("refusal %+v, want one naming ConfigMap mesh-routing/canary-router-policy", resp.Result)
	}
}
