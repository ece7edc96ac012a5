package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// overlay is one way to install the router, and what the test expects of
// it.
type overlay struct {
	name     string
	certMode string
	// podRouting is true where pods are routed (workload or pod
	// granularity) through the fail-closed pod webhook; false for
	// namespace granularity, where whole namespaces are routed.
	podRouting bool
	// prerequisites are applied before the overlay (testdata files).
	prerequisites []string
	// granularity is passed to `canary-router init`, which writes the
	// first policy.
	granularity string
}

var overlays = []overlay{
	{name: "default", certMode: certSelfManaged, podRouting: true, granularity: "workload"},
	// Namespace granularity installs the default overlay too; only the
	// policy says namespace.
	{name: "default", certMode: certSelfManaged, podRouting: false, granularity: "namespace"},
	// cert-manager itself is not installed: stub CRDs accept its objects,
	// and the test plays cert-manager (a serving pair in a folder) and its
	// cainjector (caBundle).
	{name: "cert-manager", certMode: certExternal, podRouting: true, prerequisites: []string{"cert-manager-crds.yaml"}, granularity: "workload"},
}

// TestEveryOverlayIsCovered keeps the table above in step with deploy/.
func TestEveryOverlayIsCovered(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(env.deploy, "overlays", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, d := range dirs {
		onDisk = append(onDisk, filepath.Base(filepath.Dir(d)))
	}
	for _, o := range overlays {
		if !slices.Contains(onDisk, o.name) {
			t.Errorf("overlay %s is missing from deploy/overlays", o.name)
		}
	}
	for _, name := range onDisk {
		if !slices.ContainsFunc(overlays, func(o overlay) bool { return o.name == name }) {
			t.Errorf("deploy/overlays/%s is not tested: add it to the overlays table", name)
		}
	}
}

func TestInstall(t *testing.T) {
	for _, o := range overlays {
		t.Run(o.name+"/"+o.granularity, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			install(t, ctx, o)
			args := deploymentArgs(t, ctx)
			checkRouterArgs(t, ctx, args)

			kubeconfig, token := serviceAccountKubeconfig(t, ctx)
			r := startRouter(t, ctx, args, o.certMode, kubeconfig)
			var caBundle []byte
			if o.certMode == certExternal {
				caBundle = env.Cluster.CA.CertPEM
			}
			pointWebhooksAtLoopback(t, ctx, r.port, caBundle)
			waitCABundle(t, ctx)

			t.Run("certificates", func(t *testing.T) { checkCertificates(t, ctx, o.certMode) })
			t.Run("permissions", func(t *testing.T) { checkPermissions(t, ctx, o.certMode) })
			t.Run("token", func(t *testing.T) { checkToken(t, ctx, token, o.certMode) })
			t.Run("write-policies", func(t *testing.T) { checkWritePolicies(t, ctx, token, o.certMode, o.name) })
			if o.podRouting {
				t.Run("routing", func(t *testing.T) { checkWorkloadRouting(t, ctx, r, "app-"+o.name+"-"+o.granularity) })
				t.Run("match-conditions", func(t *testing.T) { checkMatchConditions(t, ctx, r, "app-"+o.name+"-"+o.granularity) })
			} else {
				t.Run("routing", func(t *testing.T) { checkNamespaceRouting(t, ctx, r, "app-"+o.name+"-"+o.granularity) })
			}
			t.Run("policy-webhook", func(t *testing.T) { checkPolicyWebhook(t, ctx, r) })
		})
	}
}

// install applies an overlay the way an operator would: the rendered
// manifests through a server-side dry run first, then for real, then the
// first policy with `canary-router init --apply`. The
// default overlay is applied from deploy/install.yaml, the one-command
// install (deploy's own test keeps it equal to the overlay). It is removed
// again when the test ends.
func install(t *testing.T, ctx context.Context, o overlay) (manifests string) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range o.prerequisites {
		kubectl(t, ctx, "apply", "-f", filepath.Join("testdata", p))
		kubectl(t, ctx, "wait", "--for=condition=Established", "--timeout=30s", "-f", filepath.Join("testdata", p))
	}
	manifests = filepath.Join(env.deploy, "install.yaml")
	if o.name != "default" {
		out, err := env.Cluster.Kubectl(ctx, "kustomize", filepath.Join(env.deploy, "overlays", o.name))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		manifests = filepath.Join(dir, o.name+".yaml")
		if err := os.WriteFile(manifests, out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { uninstall(t, manifests, "app-"+o.name) })

	// A server-side dry run checks namespaced objects against their
	// namespace, which it cannot create: the Namespace goes first, as
	// deploy/README.md tells operators.
	ns := filepath.Join(dir, "namespace.yaml")
	if err := os.WriteFile(ns, namespaceDocs(t, manifests), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, ctx, "apply", "-f", ns)
	out := kubectl(t, ctx, "apply", "--dry-run=server", "-f", manifests)
	t.Logf("kubectl apply --dry-run=server:\n%s", out)
	out = kubectl(t, ctx, "apply", "-f", manifests)
	t.Logf("kubectl apply:\n%s", out)
	waitDeploymentAvailable(t, ctx)
	out = routerCLI(t, ctx, "init", "--granularity", o.granularity, "--apply")
	t.Logf("canary-router init --apply:\n%s", out)
	return manifests
}

// kubectl runs kubectl and fails on an error or on any warning (a Pod
// Security violation or a deprecated API would print one).
func kubectl(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := env.Cluster.Kubectl(ctx, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Warning:")) {
		t.Errorf("kubectl %s printed a warning:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// namespaceDocs returns the Namespace documents of a manifest file.
func namespaceDocs(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out bytes.Buffer
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := utilyaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		if tm.Kind == "Namespace" {
			out.WriteString("---\n")
			out.Write(doc)
		}
	}
	if out.Len() == 0 {
		t.Fatalf("%s has no Namespace", path)
	}
	return out.Bytes()
}

// uninstall deletes what install applied and the scenario's namespace,
// and waits until the router's namespace is gone, so the next overlay
// starts from a clean cluster.
func uninstall(t *testing.T, manifests, appNamespace string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"delete", "namespace", appNamespace, "--ignore-not-found", "--wait=false"},
		{"delete", "-f", manifests, "--ignore-not-found", "--wait=true", "--timeout=2m"},
	} {
		if out, err := env.Cluster.Kubectl(ctx, args...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, routerNamespace, metav1.GetOptions{})
		return err != nil, nil
	})
	if err != nil {
		t.Errorf("namespace %s not deleted: %v", routerNamespace, err)
	}
}

// waitDeploymentAvailable waits for the router's Deployment to roll out:
// its pods passed Pod Security admission (restricted) and the priority
// class and quota checks. kwok marks them Ready without running them.
func waitDeploymentAvailable(t *testing.T, ctx context.Context) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := env.Cluster.Client.AppsV1().Deployments(routerNamespace).Get(ctx, "canary-router", metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		s := d.Status
		last = deploymentStatus(d)
		return s.ObservedGeneration >= d.Generation && d.Spec.Replicas != nil &&
			s.AvailableReplicas == *d.Spec.Replicas && s.UpdatedReplicas == *d.Spec.Replicas, nil
	})
	if err != nil {
		events, _ := env.Cluster.Kubectl(ctx, "get", "events", "-n", routerNamespace)
		t.Fatalf("router Deployment not available: %s (%v)\n%s", last, err, events)
	}
}

func deploymentStatus(d *appsv1.Deployment) string {
	var conds []string
	for _, c := range d.Status.Conditions {
		conds = append(conds, string(c.Type)+"="+string(c.Status)+" ("+c.Message+")")
	}
	return strings.Join(conds, "; ")
}

// deploymentArgs returns the router container's args from the applied
// Deployment.
func deploymentArgs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	d, err := env.Cluster.Client.AppsV1().Deployments(routerNamespace).Get(ctx, "canary-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Args
}

// checkRouterArgs runs the router binary with the Deployment's args and
// --help, and fails on any flag it does not know: kwok never runs the
// container, and the local router gets overrides appended, so neither
// would show an arg that breaks the real pod.
func checkRouterArgs(t *testing.T, ctx context.Context, args []string) {
	t.Helper()
	out, _ := exec.CommandContext(ctx, env.Bin, append(slices.Clone(args), "--help")...).CombinedOutput()
	for _, bad := range []string{"flag provided but not defined", "invalid value", "unknown command"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Fatalf("the Deployment's args %v do not parse with the router binary:\n%s", args, out)
		}
	}
}

// waitCABundle waits until every webhook of the router's configurations
// carries a caBundle.
func waitCABundle(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := cluster.WaitCABundles(ctx, env.Cluster.Client, webhookConfigName); err != nil {
		t.Fatal(err)
	}
}

// checkCertificates shows who supplied the serving certificate: in
// self-managed mode the router, as its ServiceAccount, created the CA
// Secret and patched that CA into every webhook's caBundle.
func checkCertificates(t *testing.T, ctx context.Context, certMode string) {
	secret, err := env.Cluster.Client.CoreV1().Secrets(routerNamespace).Get(ctx, "canary-router-ca", metav1.GetOptions{})
	if certMode != certSelfManaged {
		if err == nil {
			t.Errorf("Secret canary-router-ca exists in %s mode", certMode)
		}
		t.Logf("RESULT cert mode %s: serving pair from a folder (cluster CA), caBundle set by the test as cainjector would", certExternal)
		return
	}
	if err != nil {
		t.Fatalf("CA Secret not created by the router: %v", err)
	}
	ca := secret.Data["tls.crt"]
	mwc, err := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vwc, err := env.Cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var bundles [][]byte
	for _, wh := range mwc.Webhooks {
		bundles = append(bundles, wh.ClientConfig.CABundle)
	}
	for _, wh := range vwc.Webhooks {
		bundles = append(bundles, wh.ClientConfig.CABundle)
	}
	for i, b := range bundles {
		if len(ca) == 0 || !bytes.Contains(b, bytes.TrimSpace(ca)) {
			t.Errorf("webhook %d: caBundle does not hold the CA from Secret canary-router-ca", i)
		}
	}
	t.Logf("RESULT cert mode %s: CA Secret canary-router-ca created by %s, its CA patched into %d webhooks' caBundle",
		certSelfManaged, secret.ManagedFields[0].Manager, len(bundles))
}
