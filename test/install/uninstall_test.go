package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// TestUninstallKeepsPodsMeshed is issue 13 item 7: after `canary-router
// uninstall --apply`, with the router process gone too, a new pod in every
// namespace the router managed is injected by the stand-in Istio.
func TestUninstallKeepsPodsMeshed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install(t, ctx, overlays[0])
	kubeconfig, _ := serviceAccountKubeconfig(t, ctx)
	r := startRouter(t, ctx, deploymentArgs(t, ctx), certSelfManaged, kubeconfig)
	pointWebhooksAtLoopback(t, ctx, r.port, nil)
	waitCABundle(t, ctx)

	// Managed three ways: converted from istio-injection, opted in
	// directly, and opted in with no pods yet.
	managed := map[string]map[string]string{
		"un-converted": {"istio-injection": "enabled"},
		"un-opted-in":  {policy.LabelOptIn: "enabled"},
		"un-empty":     {policy.LabelOptIn: "enabled"},
	}
	for ns, labels := range managed {
		var created *corev1.Namespace
		if ns == "un-converted" {
			created = applyGitOpsNamespace(t, ctx, ns)
		} else {
			created = env.CreateNamespace(t, ns, labels)
		}
		t.Cleanup(func() { deleteNamespace(ns) })
		if created.Labels[policy.LabelOptIn] != "enabled" {
			t.Fatalf("namespace %s not managed: %v", ns, created.Labels)
		}
		env.WaitServiceAccount(t, ns)
		if ns != "un-empty" {
			createDeployment(t, ctx, ns, 2)
		}
	}

	plan := routerCLI(t, ctx, "uninstall")
	t.Logf("canary-router uninstall:\n%s", plan)
	for ns := range managed {
		if !strings.Contains(plan, ns) {
			t.Errorf("the plan does not name managed namespace %s", ns)
		}
		got, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || got.Labels[policy.LabelOptIn] != "enabled" {
			t.Errorf("the plan alone changed namespace %s: %v %v", ns, got.Labels, err)
		}
	}
	out := routerCLI(t, ctx, "uninstall", "--apply")
	t.Logf("canary-router uninstall --apply:\n%s", out)

	// The router process still runs (as its pods would while they
	// terminate), but without its bindings its namespace reconciler may not
	// convert a namespace Istio alone manages now.
	late := "un-late"
	env.CreateNamespace(t, late, map[string]string{"istio-injection": "enabled"})
	t.Cleanup(func() { deleteNamespace(late) })
	time.Sleep(3 * time.Second) // the reconciler converts within about a second
	if got, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, late, metav1.GetOptions{}); err != nil ||
		got.Labels["istio-injection"] != "enabled" || got.Labels[policy.LabelOptIn] != "" {
		t.Errorf("namespace %s created after the uninstall: labels %v (%v), want istio-injection=enabled untouched", late, got.Labels, err)
	}
	// Nothing may depend on the router any more.
	r.Stop()

	adm := env.Cluster.Client.AdmissionregistrationV1()
	if _, err := adm.MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("MutatingWebhookConfiguration %s still there: %v", webhookConfigName, err)
	}
	if _, err := adm.ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ValidatingWebhookConfiguration %s still there: %v", webhookConfigName, err)
	}
	if crs, err := env.Cluster.Client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=canary-router"}); err != nil || len(crs.Items) > 0 {
		t.Errorf("the router's ClusterRoles remain: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, routerNamespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("namespace %s not deleted: %v", routerNamespace, err)
	}

	env.WaitServiceAccount(t, late)
	if rev := fakeistio.InjectedRevision(createPod(t, late, "after-uninstall", nil, nil, "")); rev == "" {
		t.Errorf("pod in %s, created with istio-injection=enabled after the uninstall, has no sidecar", late)
	}

	var pods, injected, unmeshed int
	var labels []string
	for ns := range managed {
		got, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got.Labels[policy.LabelOptIn]; ok || got.Labels["istio.io/rev"] != revision {
			t.Errorf("namespace %s after uninstall: labels %v, want istio.io/rev=%s and no %s", ns, got.Labels, revision, policy.LabelOptIn)
		}
		labels = append(labels, ns+":istio.io/rev="+got.Labels["istio.io/rev"])
		fresh := []*corev1.Pod{createPod(t, ns, "after-uninstall", nil, nil, "")}
		if ns != "un-empty" {
			fresh = append(fresh, scaleAndGetNewPod(t, ctx, ns))
		}
		for _, p := range fresh {
			pods++
			if rev := fakeistio.InjectedRevision(p); rev != "" {
				injected++
			} else {
				unmeshed++
				t.Errorf("pod %s/%s created after uninstall has no sidecar", ns, p.Name)
			}
		}
	}
	t.Logf("RESULT uninstall: %d formerly managed namespaces relabelled (%s); %d new pods after uninstall: %d injected by the stand-in Istio, %d unmeshed",
		len(managed), strings.Join(labels, ", "), pods, injected, unmeshed)
}

// createDeployment creates Deployment web and waits for its pods, every
// one injected.
func createDeployment(t *testing.T, ctx context.Context, ns string, replicas int32) {
	t.Helper()
	env.CreateDeployment(t, harness.Deployment(ns, "web", replicas))
	pods := waitPods(t, ctx, ns, int(replicas))
	for _, p := range pods {
		if fakeistio.InjectedRevision(&p) == "" {
			t.Fatalf("pod %s/%s not injected before the uninstall", ns, p.Name)
		}
	}
}

// scaleAndGetNewPod adds a replica to Deployment web and returns the new
// pod: created by the ReplicaSet controller, as after any restart.
func scaleAndGetNewPod(t *testing.T, ctx context.Context, ns string) *corev1.Pod {
	t.Helper()
	before := waitPods(t, ctx, ns, -1)
	old := map[string]bool{}
	for _, p := range before {
		old[p.Name] = true
	}
	s, err := env.Cluster.Client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas++
	if _, err := env.Cluster.Client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range waitPods(t, ctx, ns, len(before)+1) {
		if !old[p.Name] {
			return &p
		}
	}
	t.Fatalf("no new pod in %s", ns)
	return nil
}

// waitPods waits for n pods of app=web in ns (n < 0: returns what exists).
// A ReplicaSet whose pod is refused records an event; the test then shows it.
func waitPods(t *testing.T, ctx context.Context, ns string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		return n < 0 || len(pods) == n, nil
	})
	if err != nil {
		events, _ := env.Cluster.Kubectl(ctx, "get", "events", "-n", ns)
		t.Fatalf("%d of %d pods in %s: %v\n%s", len(pods), n, ns, err, events)
	}
	return pods
}

// applyGitOpsNamespace applies a Namespace manifest that says
// istio-injection=enabled, as a GitOps sync would, and checks what the
// operator sees (issue 13 item 8): the conversion warning says what to put
// in Git, `kubectl diff` shows nothing (the webhook mutates its dry run
// too), and a second apply converts again.
func applyGitOpsNamespace(t *testing.T, ctx context.Context, ns string) *corev1.Namespace {
	t.Helper()
	path := filepath.Join(t.TempDir(), ns+".yaml")
	manifest := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n  labels:\n    istio-injection: enabled\n"
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	const advice = `declare this Namespace with the label canary-router.io/injection: "enabled" and without istio-injection`
	first, err := env.Cluster.Kubectl(ctx, "apply", "-f", path)
	if err != nil || !strings.Contains(string(first), advice) {
		t.Errorf("kubectl apply of a Namespace with istio-injection=enabled: %v\n%s\nwant a warning saying: %s", err, first, advice)
	}
	diff, diffErr := env.Cluster.Kubectl(ctx, "diff", "-f", path)
	second, err := env.Cluster.Kubectl(ctx, "apply", "-f", path)
	if err != nil || !strings.Contains(string(second), "configured") {
		t.Errorf("second apply: %v\n%s", err, second)
	}
	var changed []string
	for _, l := range strings.Split(string(diff), "\n") {
		if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
			changed = append(changed, l)
		}
	}
	t.Logf("RESULT GitOps: kubectl apply of a Namespace with istio-injection=enabled warns %q; kubectl diff (err %v) shows %d changed lines %q; a re-apply says %q",
		firstWarning(string(first)), diffErr, len(changed), changed, strings.TrimSpace(lastLine(string(second))))
	got, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func firstWarning(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Warning:") {
			return l
		}
	}
	return ""
}
