// Package helm installs, upgrades and uninstalls the Helm chart
// (deploy/helm/canary-router) on a real control plane with helm v3.22.0
// built by `make tools`, and checks the promises the chart's README makes:
// the Deployment rolls out, an upgrade never changes the policy in force,
// and `canary-router uninstall --apply` followed by `helm uninstall` leaves
// every managed namespace on an Istio revision and none of the router.
//
// Pods run on kwok's fake node here; test/node runs the router's image on
// a real kubelet.
package helm

import (
	"bytes"
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

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace = "canary-router-system"
	policyName      = "canary-router-policy"
	// releaseNamespace holds the release record: the chart creates the
	// router's namespace itself (with its Pod Security labels), and Istio
	// is installed first, so istio-system exists (the chart's README).
	releaseNamespace = fakeistio.Namespace
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

	// Istio first: a ready default revision, so uninstall has a revision
	// to put managed namespaces on. Its injector is never called here.
	mwc := fakeistio.InjectorConfig("https://127.0.0.1:1", c.CA.CertPEM, "default", "")
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fakeistio.RegisterIstiod(ctx, c.Client, "default"); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	helm("install", "canary-router", chart, "--namespace", releaseNamespace,
		"--set", "image.tag=v0.0.1-test", "--wait", "--timeout", "3m")
	t.Logf("helm install --wait: %s", time.Since(began).Round(time.Millisecond))
	checkDeployment(t, ctx, c, 2, "ghcr.io/canary-router/canary-router:v0.0.1-test")

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

	// Upgrades with new values, then back to the defaults: the policy in
	// force must be the very same object (same resourceVersion) after each.
	for _, set := range [][]string{
		{"--set", "image.tag=v0.0.2-test", "--set", "replicas=3", "--set", "granularity=pod"},
		{"--reset-values", "--set", "image.tag=v0.0.2-test"},
	} {
		began := time.Now()
		helm(append([]string{"upgrade", "canary-router", chart, "--namespace", releaseNamespace, "--wait", "--timeout", "3m"}, set...)...)
		t.Logf("helm upgrade %v --wait: %s", set, time.Since(began).Round(time.Millisecond))
		if after := policy(t, ctx, c); after.ResourceVersion != before.ResourceVersion || after.Data["policy.yaml"] != policyYAML {
			t.Fatalf("helm upgrade %v changed the policy in force: resourceVersion %s -> %s, data %q", set, before.ResourceVersion, after.ResourceVersion, after.Data)
		}
	}
	checkDeployment(t, ctx, c, 2, "ghcr.io/canary-router/canary-router:v0.0.2-test")

	// The documented order: canary-router uninstall first, then helm.
	out, err := exec.CommandContext(ctx, router, "uninstall", "--apply", "--kubeconfig", c.Kubeconfig).CombinedOutput()
	if err != nil {
		t.Fatalf("canary-router uninstall --apply: %v\n%s", err, out)
	}
	helm("uninstall", "canary-router", "--namespace", releaseNamespace, "--wait", "--timeout", "2m")
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
	if out := helm("list", "--all", "--namespace", releaseNamespace, "-q"); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("helm still lists a release: %s", out)
	}
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
