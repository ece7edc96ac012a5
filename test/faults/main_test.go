// Package faults breaks things around a running router on a real control
// plane and checks that no pod is lost or let through unmeshed: the
// kube-apiserver restarted under load, the router killed while pods are
// being created in a managed namespace and started again, and policy
// flips during certificate and CA rotation. It also checks the router's
// security promises on the real binary: TLS versions, no plaintext
// admission endpoint, separate health and metrics port, and no secret
// material in a debug log.
//
// The control plane (etcd, kube-apiserver, controller manager, scheduler
// and kwok), the stand-in Istio and the router binary are shared by the
// package; each scenario has its own namespace.
package faults

import (
	"context"
	"os"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace = localrouter.Namespace
	policyConfigMap = harness.PolicyConfigMap
	serviceAccount  = "faults-router"
)

// env is the package's shared environment.
var env struct {
	*harness.Env
	// kubeconfig authenticates as serviceAccount with a bound token, as a
	// router in a pod does; token is that token, which no log may show.
	kubeconfig string
	token      string
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "faults", Workloads: true, Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	if _, err := e.StartIstio(ctx, "stable", "stable", "canary"); err != nil {
		return err
	}
	if err := routerIdentity(ctx); err != nil {
		return err
	}
	e.Cleanup(stopRouters)
	return e.WritePolicy(ctx, podPolicy("start", 50, 50))
}

// routerIdentity creates the router's namespace and a ServiceAccount
// bound to cluster-admin, with a kubeconfig carrying a bound token for
// it. The RBAC the manifests grant is test/install's business; here the
// token matters, as a secret the router must never log.
func routerIdentity(ctx context.Context) error {
	if err := env.CreateNamespaceObject(ctx, routerNamespace, nil); err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: routerNamespace}},
	}
	if _, err := env.Cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return err
	}
	var err error
	env.kubeconfig, env.token, err = env.ServiceAccountKubeconfig(ctx, routerNamespace, serviceAccount)
	return err
}

// podPolicy is a per-pod policy with the given weights; seed makes each
// document, and so its digest, distinct.
func podPolicy(seed string, stable, canary int) string {
	return harness.PolicyYAML("pod", seed, float64(stable), float64(canary))
}
