package helm

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// routerUser is the router's identity in the release namespace, as the
// chart's admission policies must name it.
const routerUser = "system:serviceaccount:" + routerNamespace + ":canary-router"

// checkAdmission runs the real router against the release: with the
// Deployment's arguments and a token of the release's ServiceAccount,
// as its pod would (kwok runs no container). It must become ready (its
// CA Secret created and caBundle patched under the chart's RBAC and
// admission policies, istiod found in istio.namespace), route and have
// injected a pod of a managed namespace, and refuse an invalid policy
// in the release namespace. The chart's admission policies must know
// it by its ServiceAccount there: it may not create a ConfigMap other
// than its status object, nor relabel its own namespace.
func checkAdmission(t *testing.T, ctx context.Context, c *cluster.Cluster, bin string, inj *fakeistio.Injectors) {
	t.Helper()
	d, err := c.Client.AppsV1().Deployments(routerNamespace).Get(ctx, "canary-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var deploymentArgs []string
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if ctr.Name == "router" {
			deploymentArgs = ctr.Args
		}
	}
	if !slices.Contains(deploymentArgs, "--istio-namespace="+istioNamespace) {
		t.Fatalf("the Deployment's args %v lack --istio-namespace=%s", deploymentArgs, istioNamespace)
	}
	kubeconfig, token := serviceAccountKubeconfig(t, ctx, c)
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "router.log")
	// --namespace stands in for $POD_NAMESPACE, which the Deployment sets
	// from the pod's namespace.
	args := append(append([]string{}, deploymentArgs...),
		"--kubeconfig", kubeconfig, "--namespace", routerNamespace,
		"--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--health-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--cert-extra-sans", "127.0.0.1", "--log-format", "console")
	r, err := localrouter.Run(ctx, bin, args, logPath, ports[0], ports[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("router log:\n%s", harness.TailFile(logPath, 6000))
		}
	})
	t.Logf("router ready as %s: %s", routerUser, strings.Join(r.Args(), " "))
	waitCABundle(t, ctx, c)
	if _, err := c.Client.CoreV1().Secrets(routerNamespace).Get(ctx, "canary-router-ca", metav1.GetOptions{}); err != nil {
		t.Errorf("the router's CA Secret in %s: %v", routerNamespace, err)
	}
	if err := localrouter.PointWebhooksAtLoopback(ctx, c.Client, r.Port, nil); err != nil {
		t.Fatal(err)
	}

	// A pod of the managed namespace: routed by the router, injected by
	// the revision it chose.
	before := inj.Injected("default")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "routed", Namespace: managedNamespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
	var created *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		created, err = c.Client.CoreV1().Pods(managedNamespace).Create(ctx, pod, metav1.CreateOptions{})
		// Until the controller manager creates the namespace's default
		// ServiceAccount, pod admission refuses the pod.
		return err == nil, nil
	})
	switch {
	case err != nil:
		t.Errorf("creating a pod in %s: %v", managedNamespace, err)
	case created.Labels["istio.io/rev"] != "default" || fakeistio.InjectedRevision(created) != "default" || inj.Injected("default") <= before:
		t.Errorf("pod %s/%s: label istio.io/rev=%q, injected by %q; want routed to and injected by default",
			managedNamespace, created.Name, created.Labels["istio.io/rev"], fakeistio.InjectedRevision(created))
	default:
		t.Logf("pod %s/%s routed to default by the router and injected by it", managedNamespace, created.Name)
	}

	// An invalid policy in the release namespace reaches the router's
	// policy webhook (which fails open, so only the router's answer
	// refuses it).
	cm, err := c.Client.CoreV1().ConfigMaps(routerNamespace).Get(ctx, policyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"policy.yaml": "granularity: workload\ntargets:\n  - revision: default\n    weight: 90\n"}
	_, err = c.Client.CoreV1().ConfigMaps(routerNamespace).Update(ctx, cm, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "must sum to 100") {
		t.Errorf("updating the policy in %s with weights summing to 90: %v, want the router's refusal", routerNamespace, err)
	} else {
		t.Logf("invalid policy refused: %v", err)
	}

	// The admission policies, as the router's ServiceAccount: RBAC lets
	// it create ConfigMaps in its namespace and patch namespaces, the
	// chart's policies narrow both.
	asRouter := routerClient(t, c, token)
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-the-status", Namespace: routerNamespace}}
	_, err = asRouter.CoreV1().ConfigMaps(routerNamespace).Create(ctx, other, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "may create only its status object") {
		t.Errorf("%s creating ConfigMap %s/%s: %v, want the canary-router-configmap-create policy's refusal", routerUser, routerNamespace, other.Name, err)
	}
	patch := []byte(`{"metadata":{"labels":{"canary-router.io/test":"x"}}}`)
	_, err = asRouter.CoreV1().Namespaces().Patch(ctx, routerNamespace, types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "never changes namespace "+routerNamespace) {
		t.Errorf("%s relabelling its own namespace %s: %v, want the canary-router-namespace-writes policy's refusal", routerUser, routerNamespace, err)
	}
}

// serviceAccountKubeconfig mints a token for the release's router
// ServiceAccount, as the kubelet would for its pod, and writes a
// kubeconfig carrying only that token.
func serviceAccountKubeconfig(t *testing.T, ctx context.Context, c *cluster.Cluster) (path, token string) {
	t.Helper()
	expiry := int64(3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(routerNamespace).CreateToken(ctx, "canary-router",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", routerUser, err)
	}
	path = filepath.Join(t.TempDir(), "router.kubeconfig")
	if err := c.WriteTokenKubeconfig(path, routerUser, tr.Status.Token, routerNamespace); err != nil {
		t.Fatal(err)
	}
	return path, tr.Status.Token
}

// routerClient is a client with the router's token and nothing else.
func routerClient(t *testing.T, c *cluster.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// waitCABundle waits until every webhook of the router's configurations
// carries a caBundle: in self-managed mode the router writes it (as its
// ServiceAccount, past the canary-router-webhook-cabundle policy).
func waitCABundle(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	if err := cluster.WaitCABundles(ctx, c.Client, "canary-router"); err != nil {
		t.Fatal(err)
	}
}

// registerIstiod stands in for a running istiod of revision rev in
// namespace ns: its Service and a ready endpoint, which is all the
// router's health gate and uninstall's plan read (fakeistio.RegisterIstiod
// does the same in istio-system).
func registerIstiod(ctx context.Context, c *cluster.Cluster, ns, rev string) error {
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	name := fakeistio.ServiceName(rev)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"istio.io/rev": rev}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443}}},
	}
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("Service %s/%s: %w", ns, name, err)
	}
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-stand-in", Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: name,
			discoveryv1.LabelManagedBy:   "canary-router-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	if _, err := c.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("EndpointSlice %s/%s: %w", ns, slice.Name, err)
	}
	return nil
}
