// Package helm installs, upgrades and uninstalls the Helm chart
// (deploy/helm/canary-router) on a real control plane with helm v3.22.0
// built by `make tools`, and checks the promises the chart's README makes:
// the Deployment rolls out, an upgrade never changes the policy in force,
// and `helm uninstall`, through the chart's pre-delete hook, leaves every
// managed namespace on an Istio revision and none of the router. It
// installs the way Helm users do, into a namespace of its own
// (--create-namespace), and neither that namespace nor Istio's is the
// manifests': the real router runs against the release, its webhooks and
// the chart's admission policies know it there, and the hook finds istiod
// in istio.namespace.
//
// Pods run on kwok's fake node here; test/node runs the router's image on
// a real kubelet.
package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	// routerNamespace is the release namespace, and istioNamespace holds
	// istiod: neither is the manifests' (canary-router-system,
	// istio-system), so everything the chart, the router and the hook do
	// there proves the chart honours both.
	routerNamespace  = "mesh-routing"
	istioNamespace   = "istio-control"
	policyName       = "canary-router-policy"
	managedNamespace = "shop"
)

// policyYAML is an operator's policy in force: the test checks that no
// helm operation changes a byte of it.
const policyYAML = `granularity: workload
seed: helm-upgrade
targets:
  - revision: default
    weight: 100
`

func TestHelmInstallUpgradeUninstall(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the control plane and helm from `make tools`; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	helm := helmRunner(t, c)
	router := routerBinary(t)
	chart := repoPath(t, "deploy", "helm", "canary-router")

	// Istio first, in istio-control: a ready default revision whose
	// injector answers, so the router routes pods to it and uninstall has
	// a revision to put managed namespaces on.
	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inj.Close)
	base, err := inj.RevisionURL("default")
	if err != nil {
		t.Fatal(err)
	}
	mwc := fakeistio.InjectorConfig(base, inj.CABundle, "default", "")
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := registerIstiod(ctx, c, istioNamespace, "default"); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	out := helm("install", "canary-router", chart, "--namespace", routerNamespace, "--create-namespace", "--set", istioValue,
		"--set", "image.tag=v0.0.1-test", "--set", hookOnNoNode, "--wait", "--timeout", "3m")
	t.Logf("helm install --wait: %s\n%s", time.Since(began).Round(time.Millisecond), out)
	checkDeployment(t, ctx, c, 2, "ghcr.io/canary-router/canary-router:v0.0.1-test")
	if notes := string(out); !strings.Contains(notes, "installed in "+routerNamespace) || !strings.Contains(notes, "kubectl label namespace "+routerNamespace) ||
		!strings.Contains(notes, "--namespace "+routerNamespace+" --istio-namespace "+istioNamespace) {
		t.Errorf("helm install's notes do not name the release namespace, its missing Pod Security labels and the CLI flags:\n%s", notes)
	}

	// The operator's first policy, and a namespace the router manages.
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: policyName, Namespace: routerNamespace},
		Data:       map[string]string{"policy.yaml": policyYAML},
	}
	if _, err := c.Client.CoreV1().ConfigMaps(routerNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := policy(t, ctx, c)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managedNamespace, Labels: map[string]string{"canary-router.io/injection": "enabled"}}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The Pod Security labels NOTES asked for: the upgrades' pods, and the
	// uninstall hook's, are admitted under the restricted standard, and
	// NOTES no longer asks.
	psa := map[string]string{}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		psa["pod-security.kubernetes.io/"+mode] = "restricted"
		psa["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	labelPatch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": psa}})
	if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, routerNamespace, types.MergePatchType, labelPatch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// Upgrades with new values, then back to the defaults: the policy in
	// force must be the very same object (same resourceVersion) after each.
	for _, set := range [][]string{
		{"--set", "image.tag=v0.0.2-test", "--set", "replicas=3", "--set", "granularity=pod", "--set", hookOnNoNode, "--set", istioValue},
		{"--reset-values", "--set", "image.tag=v0.0.2-test", "--set", hookOnNoNode, "--set", istioValue},
	} {
		began := time.Now()
		out := helm(append([]string{"upgrade", "canary-router", chart, "--namespace", routerNamespace, "--wait", "--timeout", "3m"}, set...)...)
		t.Logf("helm upgrade %v --wait: %s", set, time.Since(began).Round(time.Millisecond))
		if strings.Contains(string(out), "kubectl label namespace") {
			t.Errorf("helm upgrade's notes ask for the Pod Security labels %s has:\n%s", routerNamespace, out)
		}
		if after := policy(t, ctx, c); after.ResourceVersion != before.ResourceVersion || after.Data["policy.yaml"] != policyYAML {
			t.Fatalf("helm upgrade %v changed the policy in force: resourceVersion %s -> %s, data %q", set, before.ResourceVersion, after.ResourceVersion, after.Data)
		}
	}
	checkDeployment(t, ctx, c, 2, "ghcr.io/canary-router/canary-router:v0.0.2-test")

	// The router itself, as the release's ServiceAccount with the
	// Deployment's arguments: it serves, and the admission policies and
	// webhooks know it in the release namespace.
	checkAdmission(t, ctx, c, router, inj)

	// helm uninstall alone: its pre-delete hook relabels the namespace
	// before helm deletes the webhooks.
	hookRan := runHookPods(t, ctx, c, router)
	began = time.Now()
	helm("uninstall", "canary-router", "--namespace", routerNamespace, "--wait", "--timeout", "2m")
	t.Logf("helm uninstall --wait (pre-delete hook included): %s", time.Since(began).Round(time.Millisecond))
	select {
	case out := <-hookRan:
		t.Logf("the pre-delete hook ran:\n%s", out)
	default:
		t.Error("helm uninstall finished without running the pre-delete hook's pod")
	}
	for _, get := range []func() error{
		func() error {
			_, err := c.Client.RbacV1().ClusterRoles().Get(ctx, "canary-router-uninstall", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "canary-router-uninstall", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("a hook object outlived the uninstall: %v", err)
		}
	}
	got, err := c.Client.CoreV1().Namespaces().Get(ctx, managedNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["istio.io/rev"] != "default" || got.Labels["canary-router.io/injection"] != "" {
		t.Errorf("namespace %s after uninstall: labels %v, want istio.io/rev=default and no opt-in label", managedNamespace, got.Labels)
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "canary-router", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("MutatingWebhookConfiguration canary-router after uninstall: %v", err)
	}
	if out := helm("list", "--all", "--namespace", routerNamespace, "-q"); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("helm still lists a release: %s", out)
	}
	// helm deletes what it installed, in both namespaces, and leaves the
	// release namespace it created, with what the chart never held: the
	// policy (the README says to delete the namespace for it).
	if _, err := c.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyName, metav1.GetOptions{}); err != nil {
		t.Errorf("the policy after helm uninstall: %v, want it left in %s", err, routerNamespace)
	}
	if _, err := c.Client.RbacV1().Roles(istioNamespace).Get(ctx, "canary-router", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Role %s/canary-router after uninstall: %v", istioNamespace, err)
	}
	if _, err := c.Client.AppsV1().Deployments(routerNamespace).Get(ctx, "canary-router", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment %s/canary-router after uninstall: %v", routerNamespace, err)
	}
}

// istioValue tells the chart where istiod runs.
const istioValue = "istio.namespace=" + istioNamespace

// hookOnNoNode keeps the pre-delete hook's pod off kwok's node, which
// would report it complete without running anything: runHookPods runs it.
const hookOnNoNode = "uninstallHook.nodeSelector.canary-router-test=hook-runner"

// runHookPods stands in for a kubelet for the chart's uninstall hook: it
// runs each hook pod's container args with the router binary, as the
// pod's ServiceAccount (a token from the TokenRequest API), and reports
// the pod Succeeded or Failed so the Job, and helm, see the outcome. The
// output of each successful run is sent on the channel.
func runHookPods(t *testing.T, ctx context.Context, c *cluster.Cluster, router string) <-chan string {
	ran := make(chan string, 4)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		seen := map[string]bool{}
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			pods, err := c.Client.CoreV1().Pods(routerNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=uninstall"})
			if err != nil {
				continue
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				if seen[p.Name] || p.Status.Phase != corev1.PodPending {
					continue
				}
				seen[p.Name] = true
				out, err := runHookPod(ctx, c, router, p)
				phase, code := corev1.PodSucceeded, int32(0)
				if err != nil {
					t.Errorf("hook pod %s: %v\n%s", p.Name, err, out)
					phase, code = corev1.PodFailed, 1
				}
				if err := reportHookPod(ctx, c, p.Name, phase, code); err != nil {
					t.Errorf("reporting hook pod %s done: %v", p.Name, err)
				}
				if code == 0 {
					ran <- out
				}
			}
		}
	}()
	return ran
}

// reportHookPod writes the hook pod's outcome as a kubelet would. The
// scheduler writes the same status (its Unschedulable condition) while
// the hook runs, so the pod is read afresh and the write retried on a
// conflict: a lost report leaves the Job, and helm, waiting to time out.
func reportHookPod(ctx context.Context, c *cluster.Cluster, name string, phase corev1.PodPhase, code int32) error {
	pods := c.Client.CoreV1().Pods(routerNamespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		p.Status.Phase = phase
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: now, FinishedAt: now}}}}
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

func runHookPod(ctx context.Context, c *cluster.Cluster, router string, p *corev1.Pod) (string, error) {
	expiry := int64(600)
	tok, err := c.Client.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, p.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", p.Spec.ServiceAccountName, err)
	}
	kubeconfig := filepath.Join(c.Dir, "hook-"+p.Name+".kubeconfig")
	if err := c.WriteTokenKubeconfig(kubeconfig, p.Spec.ServiceAccountName, tok.Status.Token, p.Namespace); err != nil {
		return "", err
	}
	args := append(append([]string{}, p.Spec.Containers[0].Args...), "--kubeconfig", kubeconfig)
	out, err := exec.CommandContext(ctx, router, args...).CombinedOutput()
	return fmt.Sprintf("canary-router %s\n%s", strings.Join(args, " "), out), err
}

func checkDeployment(t *testing.T, ctx context.Context, c *cluster.Cluster, replicas int32, image string) {
	t.Helper()
	d, err := c.Client.AppsV1().Deployments(routerNamespace).Get(ctx, "canary-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image || *d.Spec.Replicas != replicas || d.Status.ReadyReplicas != replicas {
		t.Errorf("Deployment: image %s, replicas %d, ready %d; want %s and %d", got, *d.Spec.Replicas, d.Status.ReadyReplicas, image, replicas)
	}
}

func policy(t *testing.T, ctx context.Context, c *cluster.Cluster) *corev1.ConfigMap {
	t.Helper()
	cm, err := c.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// helmRunner returns a function that runs the built helm against c with a
// private helm home, failing the test on error.
func helmRunner(t *testing.T, c *cluster.Cluster) func(args ...string) []byte {
	bin := filepath.Join(binDir(t), "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s missing: run `make tools`", bin)
	}
	home := t.TempDir()
	return func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--kubeconfig", c.Kubeconfig)...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
}

func binDir(t *testing.T) string {
	if d := os.Getenv(cluster.BinDirEnv); d != "" {
		return d
	}
	return repoPath(t, "_bin")
}

// routerBinary is the canary-router binary the suites share
// (localrouter.Build: $CANARY_ROUTER_TEST_BINARY, or a build with make's
// flags).
func routerBinary(t *testing.T) string {
	b, err := localrouter.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func repoPath(t *testing.T, elem ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", ".."}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testLog sends the cluster's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
