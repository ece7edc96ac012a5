// Package certse2e tests the router's self-managed and external
// certificate modes against a real kube-apiserver and etcd: the router runs
// as a separate process, the apiserver calls it through a
// MutatingWebhookConfiguration whose caBundle the router itself maintains,
// and the tests create pods through that webhook while certificates and
// CAs rotate.
package certse2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
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
	*harness.Env
	policy string
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "certs", Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	// Pod granularity: every pod is routed, so every creation needs the
	// router's answer, and the label it sets is visible on the pod.
	env.policy = filepath.Join(e.Dir, "policy.yaml")
	if err := os.WriteFile(env.policy, []byte(harness.PolicyYAML("pod", "certs", 50, 50)), 0o644); err != nil {
		return err
	}
	if err := e.CreateNamespaceObject(ctx, routerNamespace, nil); err != nil {
		return err
	}
	if err := e.CreateNamespaceObject(ctx, routedNamespace, map[string]string{"canary-router.io/injection": "enabled"}); err != nil {
		return err
	}
	// Revisions stable and canary, live to the router: it routes only to
	// a revision whose injector would take the pod and whose istiod is
	// ready.
	if _, err := e.StartIstio(ctx, "", "stable", "canary"); err != nil {
		return fmt.Errorf("registering stand-in Istio revisions: %w", err)
	}
	// No controller manager runs here, so nobody creates the default
	// ServiceAccount that pod admission looks up.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	_, err := e.Cluster.Client.CoreV1().ServiceAccounts(routedNamespace).Create(ctx, sa, metav1.CreateOptions{})
	return err
}

// serviceAccountKubeconfig creates ServiceAccount name in the router's
// namespace, deleted when the test ends, and returns a kubeconfig that
// authenticates as it with a bound token, the identity the router has in
// a cluster.
func serviceAccountKubeconfig(t *testing.T, name string) string {
	t.Helper()
	path, _, err := env.ServiceAccountKubeconfig(harness.Context(t, 30*time.Second), routerNamespace, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Cluster.Client.CoreV1().ServiceAccounts(routerNamespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return path
}
