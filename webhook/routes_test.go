package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

// fixedState is an IstioState that always answers with one State.
type fixedState struct{ s *istio.State }

func (f fixedState) Current() *istio.State { return f.s }

// fakePlacer records Place calls and answers with fixed results.
type fakePlacer struct {
	choice, preferred int
	ok, synced        bool
	calls             []podview.Key
	reserved          []bool
}

func (f *fakePlacer) Synced() bool { return f.synced }

func (f *fakePlacer) Place(k podview.Key, _ *policy.Policy, _ []bool, _ uint64, reserve bool) (int, int, bool) {
	f.calls = append(f.calls, k)
	f.reserved = append(f.reserved, reserve)
	return f.choice, f.preferred, f.ok
}

// cluster builds an Istio State with revisions stable and canary, tag prod
// on canary, and ready istiod endpoints for the revisions in ready.
func cluster(own string, ready ...string) *istio.State {
	configs := []istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
		{Name: "istio-revision-tag-prod", Rev: "canary", Tag: "prod"},
	}
	var eps []istio.Endpoints
	for _, r := range ready {
		eps = append(eps, istio.Endpoints{Service: "istiod-" + r, Ready: true})
	}
	return istio.NewState(configs, eps, "istio-system", own)
}

func gated(t testing.TB, doc string, s *istio.State, pods PodPlacer) *fixture {
	t.Helper()
	f := newFixture(t, doc)
	f.admitter.cluster.istio = fixedState{s}
	f.admitter.cluster.pods = pods
	return f
}

type decisionJSON struct {
	Revision, Reason, Unit, TagRevision, Avoided, Cause, BalancedOver, PodView, Policy string
	Generation                                                                         int64
}

// admitPodResult posts pod and returns the response and, when allowed, the
// patched pod's istio.io/rev label and decision.
func admitPodResult(t *testing.T, f *fixture, pod *corev1.Pod, dryRun bool) (*responseView, string, decisionJSON) {
	t.Helper()
	_, resp := post(t, f.admitter.PodHandler(), reviewBody(t, "pods", "CREATE", pod.Namespace, pod, dryRun), "application/json")
	rv := &responseView{allowed: resp.Allowed, warnings: resp.Warnings}
	if resp.Result != nil {
		rv.code, rv.message = resp.Result.Code, resp.Result.Message
	}
	if !resp.Allowed {
		return rv, "", decisionJSON{}
	}
	var out corev1.Pod
	applyPatch(t, pod, resp, &out)
	var d decisionJSON
	if raw, ok := out.Annotations[policy.AnnotationDecision]; ok {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("decision %q: %v", raw, err)
		}
	}
	return rv, out.Labels[policy.LabelIstioRev], d
}

type responseView struct {
	allowed  bool
	code     int32
	message  string
	warnings []string
}

func (r *responseView) warned(sub string) bool {
	for _, w := range r.warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

const workload5050 = "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"

// canaryUnit returns a Deployment whose sticky choice under workload5050
// is canary.
func canaryUnit(t *testing.T) *corev1.Pod {
	t.Helper()
	p, _ := policy.Parse([]byte(workload5050))
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if p.Pick("shop/Deployment/"+name) == "canary" {
			return deploymentPod("shop", name, "5d8f7c", nil)
		}
	}
	t.Fatal("no test deployment hashes to canary")
	return nil
}

func TestHealthGateFallsBack(t *testing.T) {
	f := gated(t, workload5050, cluster("canary-router", "stable"), nil)
	resp, rev, d := admitPodResult(t, f, canaryUnit(t), false)
	if !resp.allowed || rev != "stable" || d.Reason != "fallback" || d.Avoided != "canary" || d.Cause != "not-ready" {
		t.Fatalf("allowed %v label %q decision %+v, want a fallback from canary to stable", resp.allowed, rev, d)
	}
	if !resp.warned("instead of canary") || !resp.warned("istiod-canary in istio-system has no ready endpoints") {
		t.Errorf("warnings %q do not name the target and the cause", resp.warnings)
	}
	if got := testutil.ToFloat64(f.metrics.routing.fallbacks.WithLabelValues("canary", "not-ready")); got != 1 {
		t.Errorf("fallbacks{canary,not-ready} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.metrics.decisions.WithLabelValues(resourcePods, "stable", "fallback")); got != 1 {
		t.Errorf("decisions{stable,fallback} = %v, want 1", got)
	}
	// A dry run decides the same but counts nothing.
	if _, rev, _ := admitPodResult(t, f, canaryUnit(t), true); rev != "stable" {
		t.Errorf("dry run routed to %q", rev)
	}
	if got := testutil.ToFloat64(f.metrics.routing.fallbacks.WithLabelValues("canary", "not-ready")); got != 1 {
		t.Errorf("dry run counted as a fallback: %v", got)
	}
}

func TestNoTargetRefusesPods(t *testing.T) {
	tests := []struct {
		name    string
		state   *istio.State
		mention []string
	}{
		{"no istiod ready", cluster("canary-router"), []string{"stable (not-ready)", "canary (not-ready)", "istiod-stable"}},
		{"not synced yet", nil, []string{"has not read the cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := gated(t, workload5050, tt.state, nil)
			resp, _, _ := admitPodResult(t, f, canaryUnit(t), false)
			if resp.allowed || resp.code != http.StatusServiceUnavailable {
				t.Fatalf("allowed %v code %d, want a 503 refusal", resp.allowed, resp.code)
			}
			for _, m := range append(tt.mention, "no routing target is available", "rather than admitted without a sidecar") {
				if !strings.Contains(resp.message, m) {
					t.Errorf("message %q does not mention %q", resp.message, m)
				}
			}
			if got := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(resourcePods, causeNoTarget)); got != 1 {
				t.Errorf("rejected{no_target} = %v", got)
			}
			// Explicit choices need no target.
			resp, _, _ = admitPodResult(t, f, deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "stable"}), false)
			if !resp.allowed {
				t.Errorf("pinned pod refused: %s", resp.message)
			}
		})
	}
}

func TestTagTarget(t *testing.T) {
	f := gated(t, "granularity: workload\ntargets: [{revision: prod, weight: 100}]\n", cluster("canary-router", "canary"), nil)
	resp, rev, d := admitPodResult(t, f, deploymentPod("shop", "web", "1", nil), false)
	if !resp.allowed || rev != "prod" || d.Revision != "prod" || d.TagRevision != "canary" || d.Reason != "sticky" {
		t.Fatalf("label %q decision %+v, want tag prod recorded as revision canary", rev, d)
	}
}

func TestWebhookOrderWarning(t *testing.T) {
	f := gated(t, workload5050, cluster("zz-canary-router", "stable", "canary"), nil)
	resp, rev, _ := admitPodResult(t, f, canaryUnit(t), false)
	if rev == "" || !resp.warned("zz-canary-router sorts after Istio injector config istio-revision-tag-prod") {
		t.Errorf("routed pod warnings %q lack the order problem", resp.warnings)
	}
	resp, _, _ = admitPodResult(t, f, deploymentPod("shop", "web", "1", map[string]string{"sidecar.istio.io/inject": "false"}), false)
	if len(resp.warnings) != 0 {
		t.Errorf("a pod the router left alone was warned: %q", resp.warnings)
	}
}

func TestPodGranularityBalances(t *testing.T) {
	const podPolicy = "granularity: pod\ntargets: [{revision: stable, weight: 80}, {revision: canary, weight: 20}]\n"
	pod := deploymentPod("shop", "web", "5d8f7c", nil)

	placer := &fakePlacer{choice: 1, preferred: 1, ok: true}
	f := gated(t, podPolicy, cluster("canary-router", "stable", "canary"), placer)
	_, rev, d := admitPodResult(t, f, pod, false)
	if rev != "canary" || d.Reason != "balanced" || d.BalancedOver != "ReplicaSet/web-5d8f7c" || d.Unit != "Pod" {
		t.Errorf("label %q decision %+v, want balanced onto canary over ReplicaSet/web-5d8f7c", rev, d)
	}
	admitPodResult(t, f, pod, true)
	want := podview.Key{Namespace: "shop", Kind: "ReplicaSet", Name: "web-5d8f7c"}
	if len(placer.calls) != 2 || placer.calls[0] != want || !placer.reserved[0] || placer.reserved[1] {
		t.Errorf("Place calls %v reserve %v, want %v twice, reserving only outside the dry run", placer.calls, placer.reserved, want)
	}

	f = gated(t, podPolicy, cluster("canary-router", "stable", "canary"), &fakePlacer{ok: false})
	_, rev, d = admitPodResult(t, f, pod, false)
	if rev == "" || d.Reason != "policy" || d.PodView != "not-synced" {
		t.Errorf("decision %+v, want a draw that says the pod view is not synced", d)
	}

	f = gated(t, podPolicy, cluster("canary-router", "stable", "canary"), &fakePlacer{ok: false, synced: true})
	_, rev, d = admitPodResult(t, f, pod, false)
	if rev == "" || d.Reason != "policy" || d.PodView != "reservations-full" {
		t.Errorf("decision %+v, want a draw that says the reserving units are at their cap", d)
	}

	f = gated(t, podPolicy, cluster("canary-router", "stable"), &fakePlacer{choice: 0, preferred: 1, ok: true})
	resp, rev, d := admitPodResult(t, f, pod, false)
	if rev != "stable" || d.Reason != "fallback" || d.Avoided != "canary" || !resp.warned("instead of canary") {
		t.Errorf("label %q decision %+v warnings %q, want a balanced fallback to stable", rev, d, resp.warnings)
	}
}

func TestGatewayPodsCounted(t *testing.T) {
	f := gated(t, workload5050, cluster("canary-router", "stable", "canary"), nil)
	gw := deploymentPod("shop", "ingress", "1", map[string]string{"sidecar.istio.io/inject": "true"})
	gw.Annotations = map[string]string{"inject.istio.io/templates": "gateway"}
	resp, rev, d := admitPodResult(t, f, gw, false)
	// No default tag here: the gateway stays on the first target, and the
	// user is told the router chose it.
	if !resp.allowed || rev != "stable" || d.Reason != "excluded" || !resp.warned("kept this gateway pod on revision stable") {
		t.Fatalf("gateway pod: allowed %v label %q decision %+v warnings %q, want kept on stable with a warning", resp.allowed, rev, d, resp.warnings)
	}
	if got := testutil.ToFloat64(f.metrics.routing.gateways.WithLabelValues(gatewayExcluded)); got != 1 {
		t.Errorf("gateway_pods_total{excluded} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.metrics.decisions.WithLabelValues(resourcePods, "stable", "excluded")); got != 1 {
		t.Errorf("decisions{excluded} = %v, want 1", got)
	}
}

func TestNamespaceHealthGate(t *testing.T) {
	const nsPolicy = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"
	p, _ := policy.Parse([]byte(nsPolicy))
	name := ""
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if p.Pick("namespace/"+n) == "canary" {
			name = n
			break
		}
	}
	ns := func(labels map[string]string) runtime.Object {
		return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	admit := func(f *fixture, labels map[string]string, op string) (*responseView, corev1.Namespace) {
		obj := ns(labels)
		_, resp := post(t, f.admitter.NamespaceHandler(), reviewBody(t, "namespaces", op, "", obj, false), "application/json")
		rv := &responseView{allowed: resp.Allowed, warnings: resp.Warnings}
		if resp.Result != nil {
			rv.code, rv.message = resp.Result.Code, resp.Result.Message
		}
		var out corev1.Namespace
		if resp.Allowed {
			applyPatch(t, obj, resp, &out)
		}
		return rv, out
	}
	enabled := map[string]string{"istio-injection": "enabled"}

	f := gated(t, nsPolicy, cluster("canary-router", "stable"), nil)
	resp, out := admit(f, enabled, "UPDATE")
	if !resp.allowed || out.Labels["istio.io/rev"] != "stable" || !resp.warned("instead of canary") {
		t.Errorf("update with canary down: labels %v warnings %q, want stable with a fallback warning", out.Labels, resp.warnings)
	}

	f = gated(t, nsPolicy, cluster("canary-router"), nil)
	resp, out = admit(f, enabled, "CREATE")
	if !resp.allowed || out.Labels["istio-injection"] != "enabled" || out.Labels["istio.io/rev"] != "" ||
		!resp.warned("left istio-injection=enabled in place") || !resp.warned("canary (not-ready)") {
		t.Errorf("nothing ready: labels %v warnings %q, want istio-injection kept and warnings naming the causes", out.Labels, resp.warnings)
	}
	resp, _ = admit(f, map[string]string{"canary-router.io/injection": "enabled"}, "CREATE")
	if resp.allowed || resp.code != http.StatusServiceUnavailable || !strings.Contains(resp.message, "namespace "+name+" is refused") {
		t.Errorf("opt-in namespace with nothing ready: %+v, want a 503 refusal", resp)
	}
}

func TestRoutesAreCached(t *testing.T) {
	s := cluster("canary-router", "stable")
	f := gated(t, workload5050, s, nil)
	snap := f.store.Load()
	a, b := f.admitter.cluster.routesFor(snap), f.admitter.cluster.routesFor(snap)
	if a != b {
		t.Error("routes rebuilt for the same policy and state")
	}
	f.admitter.cluster.istio = fixedState{cluster("canary-router", "stable", "canary")}
	if c := f.admitter.cluster.routesFor(snap); c == a || c.down != nil {
		t.Errorf("routes not rebuilt for a new state: down %v", c.down)
	}
}
