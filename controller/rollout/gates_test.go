package rollout

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

func istioState(ready ...string) *istio.State {
	var eps []istio.Endpoints
	for _, r := range ready {
		eps = append(eps, istio.Endpoints{Service: "istiod-" + r, Ready: true})
	}
	return istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-1-24", Rev: "1-24"},
		{Name: "istio-sidecar-injector-1-25", Rev: "1-25"},
	}, eps, "istio-system", "canary-router")
}

func gate(gs []GateResult, name string) GateResult {
	for _, g := range gs {
		if g.Name == name {
			return g
		}
	}
	return GateResult{}
}

func TestBuiltinGates(t *testing.T) {
	gates := policy.Gates{MaxMismatches: 1, FailureLimit: 2,
		PodHealth: policy.PodHealth{MinReadyRatio: 0.9, MaxRestartRatio: 2, MinPods: 2}}
	healthy := map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 10, Restarts: 1}, "1-25": {Pods: 4, Ready: 4}}
	base := func() BuiltinInput {
		return BuiltinInput{Canary: "1-25", Stable: []string{"1-24"}, Istio: istioState("1-24", "1-25"), PodsSynced: true,
			Pods:   []podview.RevisionCount{{Routed: "1-25", Injected: "1-25", Pods: 4}, {Routed: "1-24", Injected: "1-24", Pods: 10}},
			Health: healthy, Gates: gates}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*BuiltinInput)
		gate   string
		want   Verdict
		value  float64
		substr string
	}{
		{"injector ready", func(*BuiltinInput) {}, GateInjector, VerdictPass, 1, "answers"},
		{"injector down", func(in *BuiltinInput) { in.Istio = istioState("1-24") }, GateInjector, VerdictFail, 0, "not available"},
		{"istio not synced", func(in *BuiltinInput) { in.Istio = nil }, GateInjector, VerdictUnknown, 0, "not synced"},
		{"no mismatch", func(*BuiltinInput) {}, GateMismatches, VerdictPass, 0, "0 routed-vs-injected"},
		{"mismatches within max", func(in *BuiltinInput) {
			in.Pods = append(in.Pods, podview.RevisionCount{Routed: "1-25", Injected: "", Pods: 1})
		}, GateMismatches, VerdictPass, 1, "at most 1"},
		{"mismatches over max", func(in *BuiltinInput) {
			in.Pods = append(in.Pods, podview.RevisionCount{Routed: "1-25", Injected: "1-24", Pods: 2})
		}, GateMismatches, VerdictFail, 2, ""},
		{"pinned pods are not the router's", func(in *BuiltinInput) {
			in.Pods = append(in.Pods, podview.RevisionCount{Routed: "1-25", Injected: "1-24", Pinned: true, Pods: 9})
		}, GateMismatches, VerdictPass, 0, ""},
		{"pod view not synced", func(in *BuiltinInput) { in.PodsSynced = false }, GateMismatches, VerdictUnknown, 0, ""},
		{"canary as ready as stable", func(*BuiltinInput) {}, GatePodReady, VerdictPass, 1, "canary 4/4 ready, stable 10/10"},
		{"canary pods not turning ready", func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 10}, "1-25": {Pods: 4, Ready: 1}}
		}, GatePodReady, VerdictFail, 0.25, "at least 0.9"},
		{"both equally unready is the cluster, not the canary", func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 5}, "1-25": {Pods: 4, Ready: 2}}
		}, GatePodReady, VerdictPass, 1, ""},
		{"restarts like stable", func(*BuiltinInput) {}, GateProxyRestarts, VerdictPass, 1 / 1.1, ""},
		{"canary proxies crash-looping", func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 10}, "1-25": {Pods: 4, Ready: 4, Restarts: 12}}
		}, GateProxyRestarts, VerdictFail, 4, "at most 2"},
		{"too few canary pods", func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 10}, "1-25": {Pods: 1, Ready: 0}}
		}, GatePodReady, VerdictUnknown, 0, "at least 2 needed"},
		{"health not synced", func(in *BuiltinInput) { in.Health = nil }, GateProxyRestarts, VerdictUnknown, 0, ""},
		{"not judged while pods roll", func(in *BuiltinInput) {
			in.Rolling = true
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 10, Ready: 10}, "1-25": {Pods: 7, Ready: 6}}
		}, GatePodReady, VerdictPass, 1, "not judged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			g := gate(Builtin(in), tc.gate)
			if g.Verdict != tc.want || (tc.want != VerdictUnknown && abs(g.Value-tc.value) > 1e-9) || !strings.Contains(g.Message, tc.substr) {
				t.Fatalf("%s = %s %g %q, want %s %g %q", tc.gate, g.Verdict, g.Value, g.Message, tc.want, tc.value, tc.substr)
			}
			if g.FailureLimit != 2 {
				t.Fatalf("failure limit %d", g.FailureLimit)
			}
		})
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestProxyOf(t *testing.T) {
	ctl := true
	pod := func(ann map[string]string, statuses []corev1.ContainerStatus, native bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-6d4cf56db6", Controller: &ctl}}}}
		if native {
			p.Status.InitContainerStatuses = statuses
		} else {
			p.Status.ContainerStatuses = statuses
		}
		return p
	}
	routed := map[string]string{policy.AnnotationDecision: "{}", "sidecar.istio.io/status": "{}", "istio.io/rev": "1-25"}
	proxy := []corev1.ContainerStatus{{Name: "app", Ready: true}, {Name: "istio-proxy", Ready: true, RestartCount: 3}}
	for _, tc := range []struct {
		name     string
		p        *corev1.Pod
		rev      string
		ready    bool
		restarts int32
		ok       bool
	}{
		{"sidecar container", pod(routed, proxy, false), "1-25", true, 3, true},
		{"native sidecar", pod(routed, proxy, true), "1-25", true, 3, true},
		{"starting", pod(routed, nil, false), "1-25", false, 0, true},
		{"not routed by the router", pod(map[string]string{"sidecar.istio.io/status": "{}", "istio.io/rev": "1-25"}, proxy, false), "", false, 0, false},
		{"not injected", pod(map[string]string{policy.AnnotationDecision: "{}"}, proxy, false), "", false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev, ready, restarts, ok := ProxyOf(tc.p)
			if rev != tc.rev || ready != tc.ready || restarts != tc.restarts || ok != tc.ok {
				t.Fatalf("got %q %v %d %v", rev, ready, restarts, ok)
			}
		})
	}
}
