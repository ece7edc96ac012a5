package harness

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

// ManifestIdentity is what a suite needs to run router replicas on
// loopback as the manifests' ServiceAccount: a kubeconfig with its token
// and a serving certificate folder for --cert-mode external.
type ManifestIdentity struct {
	Kubeconfig string
	CertDir    string
}

// SetUpManifestIdentity creates the router's namespace and ServiceAccount,
// applies deploy/base/rbac.yaml as shipped, and returns a token kubeconfig
// of that ServiceAccount and a serving pair for 127.0.0.1, so the replicas
// a suite starts have exactly the manifests' permissions.
func (e *Env) SetUpManifestIdentity(ctx context.Context) (ManifestIdentity, error) {
	var id ManifestIdentity
	c := e.Cluster
	if err := e.CreateNamespaceObject(ctx, localrouter.Namespace, nil); err != nil {
		return id, err
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(localrouter.Namespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: localrouter.ServiceAccount}}, metav1.CreateOptions{}); err != nil {
		return id, err
	}
	rbac, err := filepath.Abs(filepath.Join("..", "..", "deploy", "base", "rbac.yaml"))
	if err != nil {
		return id, err
	}
	if out, err := c.Kubectl(ctx, "apply", "-f", rbac); err != nil {
		return id, fmt.Errorf("applying %s: %v\n%s", rbac, err, out)
	}
	if id.Kubeconfig, _, err = localrouter.ServiceAccountKubeconfig(ctx, c, e.Dir); err != nil {
		return id, err
	}
	id.CertDir = filepath.Join(e.Dir, "certs")
	certPEM, keyPEM, err := c.CA.IssueServing("canary-router", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return id, err
	}
	return id, cluster.WriteServingPair(id.CertDir, certPEM, keyPEM)
}

// PodsByRevision counts the live pods of namespaces per injected revision
// ("" for no sidecar), and with routed the routed-vs-injected mismatches
// (RoutedPods); unmeshed counts the pods without a sidecar.
func (e *Env) PodsByRevision(t testing.TB, routed bool, namespaces ...string) (perRev map[string]int, mismatches, unmeshed int) {
	t.Helper()
	perRev = map[string]int{}
	for _, ns := range namespaces {
		pods := Live(e.ListPods(t, ns, ""))
		if routed {
			_, m := RoutedPods(t, pods)
			mismatches += m
		}
		for i := range pods {
			rev := fakeistio.InjectedRevision(&pods[i])
			if rev == "" {
				unmeshed++
			}
			perRev[rev]++
		}
	}
	return perRev, mismatches, unmeshed
}
