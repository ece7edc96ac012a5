package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// TestRolloutRestartKeepsExactSplit: pod granularity balances each
// ReplicaSet against the live pods the router sees, so every rollout of 20
// replicas at 25 percent ends with exactly 5 canary pods.
func TestRolloutRestartKeepsExactSplit(t *testing.T) {
	usePolicy(t, policyYAML("pod", 75, 25))
	managedNamespace(t, "restarts")
	env.WaitServiceAccount(t, "restarts")
	env.RollOut(t, harness.Deployment("restarts", "web", 20))
	totalMismatches := 0
	for round := range 4 {
		name := "initial rollout"
		if round > 0 {
			env.RolloutRestart(t, "restarts", "web")
			name = fmt.Sprintf("kubectl rollout restart #%d", round)
		}
		pods := env.LivePods(t, "restarts", "app=web", 20)
		perRevision, mismatches := harness.RoutedPods(t, pods)
		totalMismatches += mismatches
		for _, p := range pods {
			if d, _ := harness.DecisionOf(t, p.ObjectMeta); d.Reason != "balanced" || !strings.HasPrefix(d.BalancedOver, "ReplicaSet/web-") {
				t.Errorf("%s: pod %s decision %+v, want balanced over its ReplicaSet", name, p.Name, d)
			}
		}
		report(t, "pod granularity, 20 replicas at 25%, "+name, 0.25, perRevision["canary"], len(pods), mismatches)
		if perRevision["canary"] != 5 || perRevision["stable"] != 15 {
			t.Errorf("%s: pods per revision %v, want exactly 5 canary and 15 stable", name, perRevision)
		}
	}
	if totalMismatches != 0 {
		t.Errorf("%d routed-vs-injected mismatches", totalMismatches)
	}
}

// gatewayDeployment is a Deployment shaped like an Istio gateway: its
// pods ask for injection with the gateway template.
func gatewayDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	d := harness.Deployment(ns, name, replicas)
	d.Spec.Template.Labels["sidecar.istio.io/inject"] = "true"
	d.Spec.Template.Annotations = map[string]string{"inject.istio.io/templates": "gateway"}
	return d
}

// TestGatewaysStayOnTheirRevision: with gateways: exclude, gateway pods
// are kept out of the split on one revision chosen on purpose (Istio's
// default tag here, or the policy's gatewayRevision), so they are always
// injected: also a gateway pod without sidecar.istio.io/inject=true, which
// no Istio webhook would match once the namespace lost istio-injection.
func TestGatewaysStayOnTheirRevision(t *testing.T) {
	usePolicy(t, policyYAML("pod", 50, 50))
	managedNamespace(t, "gateways")
	env.WaitServiceAccount(t, "gateways")
	const excluded = `canary_router_gateway_pods_total{action="excluded"}`
	before := scrape(t)[excluded]
	env.RollOut(t, gatewayDeployment("gateways", "ingress", 3))
	bare := gatewayDeployment("gateways", "egress", 2)
	delete(bare.Spec.Template.Labels, "sidecar.istio.io/inject")
	env.RollOut(t, bare)
	check := func(selector, wantLabel, wantInjected string) int {
		t.Helper()
		kept := 0
		for _, p := range env.ListPods(t, "gateways", selector) {
			d, ok := harness.DecisionOf(t, p.ObjectMeta)
			got := fakeistio.InjectedRevision(&p)
			if !ok || d.Reason != "excluded" || p.Labels["istio.io/rev"] != wantLabel || got != wantInjected {
				t.Errorf("gateway pod %s: decision %+v label %q injected by %q; want kept on %s (excluded), injected by %s",
					p.Name, d, p.Labels["istio.io/rev"], got, wantLabel, wantInjected)
				continue
			}
			kept++
		}
		return kept
	}
	kept := check("app=ingress", "default", "stable") + check("app=egress", "default", "stable")
	counted := scrape(t)[excluded] - before
	t.Logf("RESULT scenario=%q gateway_pods=5 kept_on_default_and_injected=%d counted_as_excluded=%v", "gateways: exclude", kept, counted)
	if counted != 5 {
		t.Errorf("%s rose by %v, want 5", excluded, counted)
	}

	usePolicy(t, policyYAML("pod", 50, 50)+"gatewayRevision: canary\n")
	env.RollOut(t, gatewayDeployment("gateways", "ingress-canary", 2))
	kept = check("app=ingress-canary", "canary", "canary")
	t.Logf("RESULT scenario=%q gateway_pods=2 kept_on_canary=%d", "gateways: exclude, gatewayRevision: canary", kept)

	usePolicy(t, policyYAML("pod", 50, 50)+"gateways: route\n")
	env.RollOut(t, gatewayDeployment("gateways", "ingress-routed", 4))
	routedGw := env.ListPods(t, "gateways", "app=ingress-routed")
	perRevision, mismatches := harness.RoutedPods(t, routedGw)
	report(t, "gateways: route, 4 gateway replicas at 50%", 0.5, perRevision["canary"], len(routedGw), mismatches)
	if perRevision["canary"] != 2 || mismatches != 0 {
		t.Errorf("routed gateway pods per revision %v, %d mismatches; want 2 canary of 4", perRevision, mismatches)
	}
}

// TestAdoptExistingNamespace follows docs/routing.md: label an existing
// namespace istio-injection=enabled (the router converts the UPDATE as it
// does a CREATE), then move its workloads with kubectl rollout restart.
func TestAdoptExistingNamespace(t *testing.T) {
	usePolicy(t, policyYAML("pod", 80, 20))
	env.CreateNamespace(t, "legacy", nil)
	env.WaitServiceAccount(t, "legacy")
	env.RollOut(t, harness.Deployment("legacy", "web", 10))
	for _, p := range env.ListPods(t, "legacy", "app=web") {
		if _, ok := harness.DecisionOf(t, p.ObjectMeta); ok || fakeistio.InjectedRevision(&p) != "" {
			t.Fatalf("pod %s in an unmanaged namespace was touched", p.Name)
		}
	}

	ctx := harness.Context(t, time.Minute)
	out, err := env.Cluster.Kubectl(ctx, "label", "namespace", "legacy", "istio-injection=enabled")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "canary-router replaced istio-injection=enabled with canary-router.io/injection=enabled") {
		t.Errorf("kubectl label printed no conversion warning:\n%s", out)
	}
	ns, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ns.Labels["istio-injection"]; ok || ns.Labels["canary-router.io/injection"] != "enabled" {
		t.Fatalf("namespace labels after the update: %v", ns.Labels)
	}

	env.RolloutRestart(t, "legacy", "web")
	pods := env.LivePods(t, "legacy", "app=web", 10)
	perRevision, mismatches := harness.RoutedPods(t, pods)
	report(t, "existing namespace adopted, 10 replicas at 20% after rollout restart", 0.2, perRevision["canary"], len(pods), mismatches)
	if perRevision["canary"] != 2 || perRevision["stable"] != 8 || mismatches != 0 {
		t.Errorf("pods per revision %v, %d mismatches; want exactly 2 canary of 10", perRevision, mismatches)
	}
}
