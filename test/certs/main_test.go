// Package certse2e tests the router's self-managed and external
// certificate modes against a real kube-apiserver and etcd: the router runs
// as a separate process, the apiserver calls it through a
// MutatingWebhookConfiguration whose caBundle the router itself maintains,
// and the tests create pods through that webhook while certificates and
// CAs rotate.
package certse2e

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace = "canary-router-system"
	// routedNamespace opts in to routing; the test's pods go there.
	routedNamespace = "certs-routed"
	secretName      = "canary-router-ca"
	configName      = "canary-router"
)

// env is shared by the package: one control plane and one router binary.
var env struct {
	cluster *cluster.Cluster
	bin     string
	dir     string
	policy  string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("certs: skipped in -short mode (needs the control plane from `make tools`)")
		os.Exit(0)
	}
	os.Exit(setup(m))
}

// setup fails, never skips, when the control plane binaries are missing:
// a forgotten `make tools` must not pass as green.
func setup(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "canary-router-certs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.dir = dir

	c, err := cluster.Start(ctx, cluster.Options{Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	env.cluster = c

	if env.bin, err = localrouter.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Pod granularity: every pod is routed, so every creation needs the
	// router's answer, and the label it sets is visible on the pod.
	env.policy = filepath.Join(dir, "policy.yaml")
	policy := "granularity: pod\nseed: certs\ntargets:\n  - revision: stable\n    weight: 50\n  - revision: canary\n    weight: 50\n"
	if err := os.WriteFile(env.policy, []byte(policy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: routerNamespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: routedNamespace, Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
	} {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			fmt.Fprintf(os.Stderr, "creating namespace %s: %v\n", ns.Name, err)
			return 1
		}
	}
	if err := standInIstio(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "registering stand-in Istio revisions: %v\n", err)
		return 1
	}
	// No controller manager runs here, so nobody creates the default
	// ServiceAccount that pod admission looks up.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := c.Client.CoreV1().ServiceAccounts(routedNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// standInIstio makes revisions stable and canary look live to the router,
// which routes only to a revision with an injector config and a ready
// istiod: an injector config per revision (with no webhooks, since no
// sidecar is injected here) and an EndpointSlice with one endpoint for
// each istiod Service.
func standInIstio(ctx context.Context) error {
	c := env.cluster.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for _, rev := range []string{"stable", "canary"} {
		mwc := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{
			Name: "istio-sidecar-injector-" + rev, Labels: map[string]string{"istio.io/rev": rev}}}
		if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
			return err
		}
		ready := true
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "istiod-" + rev, Labels: map[string]string{discoveryv1.LabelServiceName: "istiod-" + rev}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
		if _, err := c.DiscoveryV1().EndpointSlices("istio-system").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// ctxT is a context for one test step.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// serviceAccountKubeconfig creates ServiceAccount name in the router's
// namespace and writes a kubeconfig that authenticates as it with a
// bound token, the identity the router has in a cluster.
func serviceAccountKubeconfig(t *testing.T, name string) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	c := env.cluster
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().ServiceAccounts(routerNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().ServiceAccounts(routerNamespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}
	tr, err := c.Client.CoreV1().ServiceAccounts(routerNamespace).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: u
  user:
    token: %s
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`, c.Config.Host, base64.StdEncoding.EncodeToString(c.CA.CertPEM), tr.Status.Token)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
