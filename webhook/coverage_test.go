package webhook

import (
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/view/nsview"
)

// chartCluster is cluster() with the selectors Istio's charts render, so
// the injection check can judge pods; defaultTag adds the `default` tag on
// stable.
func chartCluster(defaultTag bool, ready ...string) *istio.State {
	configs := []istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable", Webhooks: istio.ChartWebhooks("stable", false)},
		{Name: "istio-sidecar-injector-canary", Rev: "canary", Webhooks: istio.ChartWebhooks("canary", false)},
	}
	if defaultTag {
		configs = append(configs, istio.Config{Name: "istio-revision-tag-default", Rev: "stable", Tag: "default",
			Webhooks: istio.ChartWebhooks("default", true)})
	}
	var eps []istio.Endpoints
	for _, r := range ready {
		eps = append(eps, istio.Endpoints{Service: "istiod-" + r, Ready: true})
	}
	return istio.NewState(configs, eps, "istio-system", "canary-router")
}

// fakeNamespaces answers SelectedLabels from a map, through nsview's
// Selected as the real view does: a map that holds a label the pod
// webhook's selector rules out plays a cache that lags a relabelling.
type fakeNamespaces map[string]map[string]string

func (f fakeNamespaces) SelectedLabels(name string) (nsview.Selected, bool) {
	l, ok := f[name]
	return nsview.Selected(l), ok
}

func TestInjectionCheck(t *testing.T) {
	const stableCanary = "targets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"
	gatewayPod := deploymentPod("shop", "ingress", "1", nil)
	gatewayPod.Annotations = map[string]string{"inject.istio.io/templates": "gateway"}
	optedOut := deploymentPod("shop", "batch", "1", map[string]string{"sidecar.istio.io/inject": "false"})
	typo := deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "stabel"})
	pinned := func(rev string) *corev1.Pod {
		return deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": rev})
	}
	for _, tc := range []struct {
		name       string
		doc        string
		state      *istio.State
		namespaces fakeNamespaces
		pod        *corev1.Pod
		wantRev    string // "" with wantCode 0: admitted unlabelled
		untouched  bool   // admitted without a patch
		wantCode   int32
		wantMsg    string
	}{
		{name: "routed pod", doc: "granularity: workload\nseed: s\n" + stableCanary, state: chartCluster(false, "stable", "canary"),
			pod: deploymentPod("shop", "web", "1", nil), wantRev: "any"},
		{name: "gateway without a default tag stays on the first target", doc: "granularity: workload\n" + stableCanary,
			state: chartCluster(false, "stable", "canary"), pod: gatewayPod, wantRev: "stable"},
		{name: "gateway with a default tag stays on default", doc: "granularity: workload\n" + stableCanary,
			state: chartCluster(true, "stable", "canary"), pod: gatewayPod, wantRev: "default"},
		{name: "gateway revision down is refused", doc: "granularity: workload\ngatewayRevision: canary\n" + stableCanary,
			state: chartCluster(false, "stable"), pod: gatewayPod, wantCode: http.StatusServiceUnavailable,
			wantMsg: "injected by revision canary"},
		{name: "gateway revision unknown is refused", doc: "granularity: workload\ngatewayRevision: nope\n" + stableCanary,
			state: chartCluster(false, "stable", "canary"), pod: gatewayPod, wantCode: http.StatusForbidden,
			wantMsg: "set gatewayRevision in the policy to a live revision"},
		{name: "excluded namespace with the opt-in label is refused", doc: "granularity: workload\nnamespaces: {exclude: [shop]}\n" + stableCanary,
			state: chartCluster(true, "stable", "canary"), pod: deploymentPod("shop", "web", "1", nil),
			wantCode: http.StatusForbidden, wantMsg: "namespaces.exclude"},
		{name: "namespace granularity, namespace not routed yet", doc: "granularity: namespace\n" + stableCanary,
			state: chartCluster(true, "stable", "canary"), pod: deploymentPod("shop", "web", "1", nil),
			wantCode: http.StatusForbidden, wantMsg: "not routed yet"},
		// The API server called the pod webhook, so the namespace it sees
		// has no istio.io/rev: a cache that still says "routed" is stale,
		// and no Istio namespace webhook will inject the pod.
		{name: "namespace granularity, stale cache says routed", doc: "granularity: namespace\n" + stableCanary,
			state:      chartCluster(false, "stable", "canary"),
			namespaces: fakeNamespaces{"shop": {"istio.io/rev": "canary", "canary-router.io/injection": "enabled"}},
			pod:        deploymentPod("shop", "web", "1", nil), wantCode: http.StatusForbidden, wantMsg: "not routed yet"},
		{name: "namespace granularity, stale cache says istio-injection", doc: "granularity: namespace\n" + stableCanary,
			state:      chartCluster(true, "stable", "canary"),
			namespaces: fakeNamespaces{"shop": {"istio-injection": "enabled", "canary-router.io/injection": "enabled"}},
			pod:        deploymentPod("shop", "web", "1", nil), wantCode: http.StatusForbidden, wantMsg: "not routed yet"},
		{name: "excluded namespace, stale cache says routed", doc: "granularity: workload\nnamespaces: {exclude: [shop]}\n" + stableCanary,
			state:      chartCluster(true, "stable", "canary"),
			namespaces: fakeNamespaces{"shop": {"istio.io/rev": "stable", "canary-router.io/injection": "enabled"}},
			pod:        deploymentPod("shop", "web", "1", nil), wantCode: http.StatusForbidden, wantMsg: "namespaces.exclude"},
		{name: "workload granularity, stale cache says routed: the router labels the pod", doc: "granularity: workload\nseed: s\n" + stableCanary,
			state:      chartCluster(false, "stable", "canary"),
			namespaces: fakeNamespaces{"shop": {"istio.io/rev": "canary", "canary-router.io/injection": "enabled"}},
			pod:        deploymentPod("shop", "web", "1", nil), wantRev: "any"},
		{name: "namespace granularity, pinned to a live revision", doc: "granularity: namespace\n" + stableCanary,
			state: chartCluster(false, "stable", "canary"), pod: pinned("canary"), wantRev: "canary", untouched: true},
		{name: "namespace granularity, pinned to a typo", doc: "granularity: namespace\n" + stableCanary,
			state: chartCluster(true, "stable", "canary"), pod: typo, wantCode: http.StatusForbidden, wantMsg: `pinned to revision "stabel"`},
		{name: "pinned to a typo", doc: "granularity: workload\n" + stableCanary, state: chartCluster(true, "stable", "canary"),
			pod: typo, wantCode: http.StatusForbidden, wantMsg: `pinned to revision "stabel"`},
		{name: "pinned to a live revision", doc: "granularity: pod\n" + stableCanary, state: chartCluster(false, "stable", "canary"),
			pod: pinned("canary"), wantRev: "canary", untouched: true},
		{name: "pinned to a revision the policy no longer routes to", doc: "granularity: workload\ntargets: [{revision: canary, weight: 100}]\n",
			state: chartCluster(false, "stable", "canary"), pod: pinned("stable"), wantRev: "stable", untouched: true},
		{name: "pinned to a live tag", doc: "granularity: workload\n" + stableCanary, state: chartCluster(true, "stable", "canary"),
			pod: pinned("default"), wantRev: "default", untouched: true},
		{name: "pinned to a removed revision", doc: "granularity: workload\n" + stableCanary, state: chartCluster(true, "stable", "canary"),
			pod: pinned("old"), wantCode: http.StatusForbidden, wantMsg: `pinned to revision "old"`},
		{name: "pinned to a revision whose istiod is down", doc: "granularity: workload\n" + stableCanary, state: chartCluster(false, "stable"),
			pod: pinned("canary"), wantCode: http.StatusServiceUnavailable, wantMsg: "injected by revision canary"},
		{name: "pinned to a typo and opted out is admitted", doc: "granularity: workload\n" + stableCanary, state: chartCluster(false, "stable", "canary"),
			pod:     deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "stabel", "sidecar.istio.io/inject": "false"}),
			wantRev: "stabel", untouched: true},
		{name: "opted out is admitted", doc: "granularity: workload\n" + stableCanary, state: chartCluster(false, "stable", "canary"),
			pod: optedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gated(t, tc.doc, tc.state, nil)
			if tc.namespaces != nil {
				f.admitter.cluster.namespaces = tc.namespaces
			}
			resp, rev, _ := admitPodResult(t, f, tc.pod, false)
			if tc.wantCode != 0 {
				if resp.allowed || resp.code != tc.wantCode || !strings.Contains(resp.message, tc.wantMsg) ||
					!strings.Contains(resp.message, "rather than admitting it without a sidecar") {
					t.Fatalf("allowed %v code %d message %q, want %d containing %q", resp.allowed, resp.code, resp.message, tc.wantCode, tc.wantMsg)
				}
				return
			}
			if !resp.allowed {
				t.Fatalf("refused: %d %s", resp.code, resp.message)
			}
			if (tc.wantRev == "any" && rev == "") || (tc.wantRev != "any" && rev != tc.wantRev) {
				t.Errorf("label istio.io/rev = %q, want %q", rev, tc.wantRev)
			}
			if tc.untouched {
				_, raw := post(t, f.admitter.PodHandler(), reviewBody(t, "pods", "CREATE", tc.pod.Namespace, tc.pod, false), "application/json")
				if len(raw.Patch) != 0 {
					t.Errorf("patched %s, want the pod admitted untouched", raw.Patch)
				}
			}
		})
	}
}

// TestInjectionCheckWithoutPolicy: with no policy loaded a pinned pod is
// admitted without one, but only when its pin names a live revision.
func TestInjectionCheckWithoutPolicy(t *testing.T) {
	f := gated(t, "", chartCluster(true, "stable", "canary"), nil)
	pinned := deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "canary"})
	if resp, _, _ := admitPodResult(t, f, pinned, false); !resp.allowed {
		t.Errorf("pinned to a live revision: refused %d %s", resp.code, resp.message)
	}
	typo := deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "canry"})
	if resp, _, _ := admitPodResult(t, f, typo, false); resp.allowed || resp.code != http.StatusForbidden ||
		!strings.Contains(resp.message, "pod labels istio.io/rev=canry") {
		t.Errorf("pinned to a typo: allowed %v %d %s, want a 403 naming the label", resp.allowed, resp.code, resp.message)
	}
	optedOut := deploymentPod("shop", "web", "1", map[string]string{"istio.io/rev": "canry", "sidecar.istio.io/inject": "false"})
	if resp, _, _ := admitPodResult(t, f, optedOut, false); !resp.allowed {
		t.Errorf("opted out: refused %d %s", resp.code, resp.message)
	}
}
