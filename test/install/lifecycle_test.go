package install

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

const policyConfigMap = harness.PolicyConfigMap

// routerCLI runs an operator command of the router binary (init,
// uninstall) with the admin kubeconfig and fails the test on an error.
func routerCLI(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := routerCLIResult(ctx, args...)
	if err != nil {
		t.Fatalf("canary-router %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func routerCLIResult(ctx context.Context, args ...string) (string, error) {
	full := append([]string{args[0], "--kubeconfig", env.Cluster.Kubeconfig}, args[1:]...)
	out, err := exec.CommandContext(ctx, env.Bin, full...).CombinedOutput()
	return string(out), err
}

// policyInForce reads the policy ConfigMap and parses it.
func policyInForce(t *testing.T, ctx context.Context) *policy.Policy {
	t.Helper()
	cm, err := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the policy: %v", err)
	}
	p, err := policy.Parse([]byte(cm.Data["policy.yaml"]))
	if err != nil {
		t.Fatalf("policy in the ConfigMap is invalid: %v", err)
	}
	return p
}

func weightOf(p *policy.Policy, target string) float64 {
	for _, t := range p.Targets {
		if t.Revision == target {
			return t.Weight
		}
	}
	return 0
}

// TestReapplyKeepsThePolicy is issue 13 item 5: re-applying the install,
// as an upgrade or a GitOps sync does, client-side, server-side with
// --force-conflicts and through kustomize, never changes the policy in
// force.
func TestReapplyKeepsThePolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	manifests := install(t, ctx, overlays[0])

	doc := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
data:
  policy.yaml: |
    granularity: workload
    targets:
      - revision: "default"
        weight: 70
      - revision: "canary"
        weight: 30
`, policyConfigMap, routerNamespace)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not the kubectl helper: the policy webhook may warn about the weight
	// jump, or be unreachable (the router is not running yet; it fails open).
	if out, err := env.Cluster.Kubectl(ctx, "apply", "-f", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if w := weightOf(policyInForce(t, ctx), "canary"); w != 30 {
		t.Fatalf("canary weight %v after setting it to 30", w)
	}

	overlay := filepath.Join(env.deploy, "overlays", "default")
	reapplies := [][]string{
		{"apply", "-f", manifests},
		{"apply", "--server-side", "--force-conflicts", "-f", manifests},
		{"apply", "-k", overlay},
		{"apply", "--server-side", "--force-conflicts", "-k", overlay},
	}
	for _, args := range reapplies {
		out, err := env.Cluster.Kubectl(ctx, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), policyConfigMap) {
			t.Errorf("kubectl %s touched the policy:\n%s", strings.Join(args, " "), out)
		}
		if w := weightOf(policyInForce(t, ctx), "canary"); w != 30 {
			t.Errorf("kubectl %s: canary weight now %v, want 30 (the re-apply reset the rollout)", strings.Join(args, " "), w)
		}
	}

	// The router started now reads the same policy: the rollout in force.
	kubeconfig, _ := serviceAccountKubeconfig(t, ctx)
	r := startRouter(t, ctx, deploymentArgs(t, ctx), certSelfManaged, kubeconfig)
	var share float64
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		share = r.metric(t, "canary_router_target_share", `revision="canary"`)
		return share == 0.3, nil
	})
	if share != 0.3 {
		t.Errorf("router's canary_router_target_share{revision=\"canary\"} = %v, want 0.3", share)
	}
	t.Logf("RESULT policy after %d re-applies of the install (client-side, server-side --force-conflicts, kustomize both ways): canary weight %v, router target share %v",
		len(reapplies), weightOf(policyInForce(t, ctx), "canary"), share)
}

// TestInitWithoutDefaultTag is issue 13 item 6: on a revisioned Istio
// without a `default` tag, `canary-router init` names the live revision,
// so pods in managed namespaces are routed to it instead of refused.
func TestInitWithoutDefaultTag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	swapIstio(t, ctx, "1-30")

	install(t, ctx, overlays[0]) // runs init --apply
	p := policyInForce(t, ctx)
	if len(p.Targets) != 1 || p.Targets[0].Revision != "1-30" || p.Targets[0].Weight != 100 {
		t.Fatalf("policy written by init --apply: %+v, want 1-30 at 100", p.Targets)
	}
	printed := configMapOf(t, routerCLI(t, ctx, "init", "-o", "json"))
	if !strings.Contains(printed.Data["policy.yaml"], `revision: "1-30"`) {
		t.Errorf("init -o json printed:\n%s", printed.Data["policy.yaml"])
	}

	// An operator's policy is never overwritten by init --apply.
	cm, err := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	edited := "granularity: pod\ntargets: [{revision: \"1-30\", weight: 100}]\n"
	cm.Data["policy.yaml"] = edited
	if _, err := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := routerCLI(t, ctx, "init", "--apply")
	cm, _ = env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyConfigMap, metav1.GetOptions{})
	if cm.Data["policy.yaml"] != edited || !strings.Contains(out, "already exists: left unchanged") {
		t.Errorf("init --apply over an existing policy said %q and left:\n%s", out, cm.Data["policy.yaml"])
	}

	// The router routes a pod in a managed namespace to 1-30 and the
	// stand-in Istio injects it (with a policy naming `default`, it would
	// be refused: no such revision or tag).
	kubeconfig, _ := serviceAccountKubeconfig(t, ctx)
	r := startRouter(t, ctx, deploymentArgs(t, ctx), certSelfManaged, kubeconfig)
	pointWebhooksAtLoopback(t, ctx, r.port, nil)
	waitCABundle(t, ctx)
	ns := "init-tagless"
	env.CreateNamespace(t, ns, map[string]string{"istio-injection": "enabled"})
	t.Cleanup(func() { deleteNamespace(ns) })
	env.WaitServiceAccount(t, ns)
	injected := fakeistio.InjectedRevision(createPod(t, ns, "app", nil, nil, ""))
	if injected != "1-30" {
		t.Errorf("pod in managed namespace %s: injected by %q, want 1-30", ns, injected)
	}

	// Several revisions and no default: init refuses and names them.
	registerRevision(t, ctx, "1-31")
	refusal, err := routerCLIResult(ctx, "init")
	if err == nil || !strings.Contains(refusal, "1-30, 1-31") || !strings.Contains(refusal, "--revision") {
		t.Errorf("init with revisions 1-30 and 1-31 and no default: err %v, output:\n%s", err, refusal)
	}
	chosen := configMapOf(t, routerCLI(t, ctx, "init", "--revision", "1-31"))
	if !strings.Contains(chosen.Data["policy.yaml"], `revision: "1-31"`) {
		t.Errorf("init --revision 1-31 printed:\n%s", chosen.Data["policy.yaml"])
	}
	t.Logf("RESULT init on Istio with revision 1-30 and no default tag: policy targets %s at %v; a pod in a managed namespace injected by %q; "+
		"an edited policy left unchanged by init --apply; with 1-30 and 1-31 refused: %s",
		p.Targets[0].Revision, p.Targets[0].Weight, injected, lastLine(refusal))
}

func configMapOf(t *testing.T, out string) corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := utilyaml.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatalf("not a ConfigMap: %v\n%s", err, out)
	}
	return cm
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func deleteNamespace(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := env.Cluster.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(os.Stderr, "deleting namespace %s: %v\n", name, err)
	}
}
