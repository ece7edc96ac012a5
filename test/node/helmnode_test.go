package node

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
)

// TestHelmChartOnRealNode installs the router with the Helm chart on the
// real node, upgrades it to a new image tag under continuous pod creation
// (no failure, the policy untouched), then runs `helm uninstall` alone:
// the chart's pre-delete hook Job must run on the node and label every
// managed namespace, so a new pod in each is still injected. It leaves
// the cluster without the router for the next test.
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
	helm("install", "canary-router", chart, "--namespace", routerNS, "--create-namespace", "--set", "image.tag=e2e-a", "--wait", "--timeout", "3m")
	router(t, ctx, "init", "--apply")
	waitRollout(t, ctx, 2, imageA)
	t.Logf("helm install: 2 replicas Ready in %s", time.Since(began).Round(10*time.Millisecond))
	policy, err := env.c.Client.CoreV1().ConfigMaps(routerNS).Get(ctx, "canary-router-policy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Several managed namespaces: the hook must label every one of them.
	managed := []string{"shop-helm", "shop-helm-2", "shop-helm-3"}
	for _, name := range managed {
		created, err := env.c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: name, Labels: map[string]string{"canary-router.io/injection": "enabled"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Labels["canary-router.io/injection"] != "enabled" {
			t.Fatalf("namespace %s: %v", name, created.Labels)
		}
	}
	ns := managed[0]
	load := startLoad(ctx, ns)
	began = time.Now()
	helm("upgrade", "canary-router", chart, "--namespace", routerNS, "--set", "image.tag=e2e-b", "--wait", "--timeout", "3m")
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

	// helm uninstall alone: the pre-delete hook runs canary-router
	// uninstall --apply --keep-objects as a Job on the node before helm
	// deletes the webhooks. The Job is deleted once it succeeds, so a
	// watch records its pod.
	hook := watchHookPod(t, ctx)
	began = time.Now()
	helm("uninstall", "canary-router", "--namespace", routerNS, "--wait", "--timeout", "3m")
	hookPod := hook()
	t.Logf("helm uninstall in %s; hook pod %s", time.Since(began).Round(10*time.Millisecond), hookPod)
	if !strings.HasPrefix(hookPod, "Succeeded on "+Name) {
		t.Errorf("the pre-delete hook's pod did not succeed on the node: %s", hookPod)
	}
	// helm leaves the release namespace it created: the next test
	// installs the manifests, with their own Namespace.
	if err := env.c.Client.CoreV1().Namespaces().Delete(ctx, routerNS, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, 2*time.Minute, func() (bool, string) {
		_, err := env.c.Client.CoreV1().Namespaces().Get(ctx, routerNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "namespace " + routerNS + " still there"
	})
	// With the router gone, Istio injects each namespace by its label.
	injected, bare := 0, 0
	for _, name := range managed {
		got, err := env.c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Labels["istio.io/rev"] != "default" {
			t.Errorf("namespace %s after helm uninstall: %v, want istio.io/rev=default", name, got.Labels)
		}
		before := inj.Injected("default")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "after-uninstall-"},
			Spec:       corev1.PodSpec{NodeName: "no-such-node", Containers: []corev1.Container{{Name: "app", Image: SandboxImage}}},
		}
		p, err := env.c.Client.CoreV1().Pods(name).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("namespace %s: creating a pod after helm uninstall: %v", name, err)
		}
		if p.Annotations["istio.io/rev"] == "default" && inj.Injected("default") > before {
			injected++
		} else {
			bare++
			t.Errorf("namespace %s: pod created after helm uninstall has no sidecar: annotations %v", name, p.Annotations)
		}
	}
	fmt.Printf("RESULT helm-uninstall-hook: %d managed namespaces, new pods injected %d, without a sidecar %d; hook pod %s\n",
		len(managed), injected, bare, hookPod)
}

// watchHookPod watches the router's namespace for the uninstall hook's
// pod; the returned function stops the watch and says where the pod ran
// and how it ended ("Succeeded on <node>"), or that none was seen.
func watchHookPod(t *testing.T, ctx context.Context) func() string {
	t.Helper()
	w, err := env.c.Client.CoreV1().Pods(routerNS).Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=uninstall"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	go func() {
		last := "none seen"
		defer func() { seen <- last }()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			// Keep the furthest phase: the pod's deletion (with the Job)
			// must not hide that it succeeded.
			if !strings.HasPrefix(last, string(corev1.PodSucceeded)) && !strings.HasPrefix(last, string(corev1.PodFailed)) {
				last = fmt.Sprintf("%s on %s (%s)", p.Status.Phase, p.Spec.NodeName, p.Name)
			}
		}
	}()
	return func() string {
		w.Stop()
		return <-seen
	}
}
