package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// usePolicy restarts the router with a new policy and returns the parsed
// policy, which the tests use to compute the expected sticky choices.
func usePolicy(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	if err := env.router.start(harness.Context(t, time.Minute), yaml); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNamespaceGranularity(t *testing.T) {
	for _, pct := range []float64{0, 50, 100} {
		t.Run(fmt.Sprintf("canary-%g-percent", pct), func(t *testing.T) {
			p := usePolicy(t, policyYAML("namespace", 100-pct, pct))
			const n = 40
			canary, mismatches := 0, 0
			for i := range n {
				name := fmt.Sprintf("nsg-%g-%02d", pct, i)
				ns := env.CreateNamespace(t, name, map[string]string{"istio-injection": "enabled"})
				rev := ns.Labels["istio.io/rev"]
				if _, ok := ns.Labels["istio-injection"]; ok {
					t.Errorf("%s: istio-injection not removed: %v", name, ns.Labels)
				}
				d, ok := harness.DecisionOf(t, ns.ObjectMeta)
				if !ok || d.Revision != rev || d.Reason != "sticky" {
					t.Errorf("%s: decision %+v (present %v) does not match label istio.io/rev=%q", name, d, ok, rev)
				}
				if want := p.Pick("namespace/" + name); rev != want {
					t.Errorf("%s: routed to %q, the seeded hash says %q", name, rev, want)
				}
				// Istio's namespace-selector webhook must inject the
				// revision the router wrote on the namespace.
				env.WaitServiceAccount(t, name)
				pod := createPod(t, name, "probe", nil, nil)
				if got := fakeistio.InjectedRevision(pod); got != rev {
					t.Errorf("%s: pod injected by %q, namespace routed to %q", name, got, rev)
					mismatches++
				}
				if rev == "canary" {
					canary++
				}
			}
			report(t, "namespace granularity", pct/100, canary, n, mismatches)
			share := float64(canary) / n
			// 0 and 100 percent are exact; 50 percent is a hash of 40
			// names, within 4 standard deviations of a fair split.
			if tol := 4 * math.Sqrt(pct/100*(1-pct/100)/n); math.Abs(share-pct/100) > tol {
				t.Errorf("canary share %.2f, target %.2f (tolerance %.2f)", share, pct/100, tol)
			}
			if mismatches != 0 {
				t.Errorf("%d routed-vs-injected mismatches", mismatches)
			}
		})
	}
}

func TestPodGranularity(t *testing.T) {
	usePolicy(t, policyYAML("pod", 80, 20))
	managedNamespace(t, "podg")
	env.WaitServiceAccount(t, "podg")
	env.RollOut(t, harness.Deployment("podg", "web", 50))
	pods := env.ListPods(t, "podg", "app=web")
	if len(pods) != 50 {
		t.Fatalf("%d pods, want 50", len(pods))
	}
	perRevision, mismatches := harness.RoutedPods(t, pods)
	for _, p := range pods {
		if d, _ := harness.DecisionOf(t, p.ObjectMeta); d.Reason != "balanced" {
			t.Errorf("pod %s: reason %q, want balanced", p.Name, d.Reason)
		}
	}
	report(t, "pod granularity, 1 Deployment x 50 replicas", 0.20, perRevision["canary"], len(pods), mismatches)
	if perRevision["canary"]+perRevision["stable"] != len(pods) {
		t.Errorf("pods injected by something else: %v", perRevision)
	}
	// The router balances each ReplicaSet against its live pods, so 50
	// replicas at 20 percent are exactly 10 canary pods.
	if c := perRevision["canary"]; c != 10 {
		t.Errorf("%d canary pods of 50 at 20 percent, want exactly 10", c)
	}
}

func TestWorkloadGranularity(t *testing.T) {
	p := usePolicy(t, policyYAML("workload", 70, 30))
	managedNamespace(t, "wlg")
	env.WaitServiceAccount(t, "wlg")
	const n, replicas = 10, 3
	ctx := harness.Context(t, 3*time.Minute)
	for i := range n {
		d := harness.Deployment("wlg", fmt.Sprintf("app-%d", i), replicas)
		if _, err := env.Cluster.Client.AppsV1().Deployments("wlg").Create(ctx, d, metaCreate); err != nil {
			t.Fatal(err)
		}
	}
	canary, totalMismatches, pods := 0, 0, 0
	for i := range n {
		name := fmt.Sprintf("app-%d", i)
		env.WaitAvailable(t, ctx, "wlg", name, replicas)
		list := env.ListPods(t, "wlg", "app="+name)
		perRevision, mismatches := harness.RoutedPods(t, list)
		totalMismatches += mismatches
		pods += len(list)
		want := p.Pick("wlg/Deployment/" + name)
		if perRevision[want] != replicas {
			t.Errorf("deployment %s: pods per revision %v, want all %d on %q", name, perRevision, replicas, want)
		}
		for _, pod := range list {
			if d, _ := harness.DecisionOf(t, pod.ObjectMeta); d.Reason != "sticky" || d.Unit != "Deployment/"+name {
				t.Errorf("pod %s: decision %+v, want reason sticky and unit Deployment/%s", pod.Name, d, name)
			}
		}
		if want == "canary" {
			canary++
		}
	}
	report(t, fmt.Sprintf("workload granularity, %d Deployments x %d replicas (%d pods)", n, replicas, pods), 0.30, canary, n, totalMismatches)
}

func TestExplicitChoicesLeftAlone(t *testing.T) {
	usePolicy(t, policyYAML("pod", 50, 50))
	managedNamespace(t, "explicit")
	env.WaitServiceAccount(t, "explicit")

	cases := []struct {
		name, ns     string
		labels       map[string]string
		wantInjected string
	}{
		{"pinned", "explicit", map[string]string{"istio.io/rev": "canary"}, "canary"},
		{"opted-out", "explicit", map[string]string{"sidecar.istio.io/inject": "false"}, ""},
		{"system", "kube-system", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := createPod(t, c.ns, "explicit-"+c.name, c.labels, nil)
			if d, ok := harness.DecisionOf(t, pod.ObjectMeta); ok {
				t.Errorf("router changed the pod: %+v", d)
			}
			if got := fakeistio.InjectedRevision(pod); got != c.wantInjected {
				t.Errorf("injected by %q, want %q", got, c.wantInjected)
			}
		})
	}

	t.Run("namespaces", func(t *testing.T) {
		for name, labels := range map[string]map[string]string{
			"ns-disabled": {"istio-injection": "disabled"},
			"ns-pinned":   {"istio.io/rev": "canary"},
		} {
			ns := env.CreateNamespace(t, name, labels)
			if d, ok := harness.DecisionOf(t, ns.ObjectMeta); ok {
				t.Errorf("%s: router changed the namespace: %+v", name, d)
			}
			for k, v := range labels {
				if ns.Labels[k] != v {
					t.Errorf("%s: label %s=%q, want %q", name, k, ns.Labels[k], v)
				}
			}
		}
		env.WaitServiceAccount(t, "ns-pinned")
		if got := fakeistio.InjectedRevision(createPod(t, "ns-pinned", "probe", nil, nil)); got != "canary" {
			t.Errorf("pod in pinned namespace injected by %q, want canary", got)
		}
	})
}
