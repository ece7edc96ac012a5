package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHelmChartOnRealNode installs the router with the Helm chart on the
// real node, upgrades it to a new image tag under continuous pod creation
// (no failure, the policy untouched), then uninstalls it in the documented
// order and checks that the formerly managed namespace still gets
// sidecars. It leaves the cluster without the router for the next test.
func TestHelmChartOnRealNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	inj := startIstio(t, ctx)
	helm := func(args ...string) {
		t.Helper()
		home := t.TempDir()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir(), "helm"), append(args, "--kubeconfig", env.c.Kubeconfig)...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	chart := filepath.Join("..", "..", "deploy", "helm", "canary-router")
	began := time.Now()
	helm("install", "canary-router", chart, "--namespace", "istio-system", "--set", "image.tag=e2e-a", "--wait", "--timeout", "3m")
	router(t, ctx, "init", "--apply")
	waitRollout(t, ctx, 2, imageA)
	t.Logf("helm install: 2 replicas Ready in %s", time.Since(began).Round(10*time.Millisecond))
	policy, err := env.c.Client.CoreV1().ConfigMaps(routerNS).Get(ctx, "canary-router-policy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	const ns = "shop-helm"
	created, err := env.c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"canary-router.io/injection": "enabled"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Labels["canary-router.io/injection"] != "enabled" {
		t.Fatalf("namespace %s: %v", ns, created.Labels)
	}
	load := startLoad(ctx, ns)
	began = time.Now()
	helm("upgrade", "canary-router", chart, "--namespace", "istio-system", "--set", "image.tag=e2e-b", "--wait", "--timeout", "3m")
	waitRollout(t, ctx, 2, imageB)
	n, failed := load.stop()
	t.Logf("helm upgrade to %s in %s under load: %d pods created, %d failed", imageB, time.Since(began).Round(10*time.Millisecond), n, len(failed))
	if len(failed) > 0 || n == 0 {
		t.Errorf("%d of %d pod creations failed during helm upgrade: %v", len(failed), n+len(failed), failed)
	}
	after, err := env.c.Client.CoreV1().ConfigMaps(routerNS).Get(ctx, "canary-router-policy", metav1.GetOptions{})
	if err != nil || after.ResourceVersion != policy.ResourceVersion {
		t.Errorf("helm upgrade changed the policy in force: %v (resourceVersion %s -> %s)", err, policy.ResourceVersion, after.ResourceVersion)
	}

	// The documented order: canary-router uninstall, then helm uninstall.
	router(t, ctx, "uninstall", "--apply")
	helm("uninstall", "canary-router", "--namespace", "istio-system", "--wait", "--timeout", "2m")
	poll(t, ctx, 2*time.Minute, func() (bool, string) {
		_, err := env.c.Client.CoreV1().Namespaces().Get(ctx, routerNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "namespace " + routerNS + " still there"
	})
	got, err := env.c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["istio.io/rev"] != "default" {
		t.Fatalf("namespace %s after uninstall: %v, want istio.io/rev=default", ns, got.Labels)
	}
	// With the router gone, Istio injects the namespace by its label.
	before := inj.Injected("default")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "after-uninstall-"},
		Spec:       corev1.PodSpec{NodeName: "no-such-node", Containers: []corev1.Container{{Name: "app", Image: SandboxImage}}},
	}
	p, err := env.c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Annotations["istio.io/rev"] != "default" || inj.Injected("default") == before {
		t.Errorf("pod created after the uninstall has no sidecar: annotations %v", p.Annotations)
	}
}
