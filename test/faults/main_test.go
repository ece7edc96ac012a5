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
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

const (
	routerNamespace = "canary-router-system"
	policyConfigMap = "canary-router-policy"
	serviceAccount  = "faults-router"
)

// env is the package's shared environment.
var env struct {
	cluster *cluster.Cluster
	bin     string
	dir     string
	// kubeconfig authenticates as serviceAccount with a bound token, as a
	// router in a pod does; token is that token, which no log may show.
	kubeconfig string
	token      string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("faults: skipped in -short mode (needs the control plane from `make tools`)")
		os.Exit(0)
	}
	os.Exit(setup(m))
}

// setup fails, never skips, when the control plane binaries are missing.
func setup(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "canary-router-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.dir = dir
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	env.cluster = c
	fmt.Printf("faults: control plane ready in %s\n", time.Since(began).Round(time.Millisecond))

	env.bin = filepath.Join(dir, "canary-router")
	build := exec.Command("go", "build", "-o", env.bin, "../../cmd/canary-router")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building canary-router: %v\n%s", err, out)
		return 1
	}
	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting stand-in injectors: %v\n", err)
		return 1
	}
	defer inj.Close()
	if err := inj.Install(ctx, c.Client, "stable", "stable", "canary"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := routerIdentity(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := writePolicy(ctx, podPolicy("start", 50, 50)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stopRouters()
	return code
}

// routerIdentity creates the router's namespace and a ServiceAccount
// bound to cluster-admin, and writes a kubeconfig with a bound token for
// it. The RBAC the manifests grant is test/install's business; here the
// token matters, as a secret the router must never log.
func routerIdentity(ctx context.Context) error {
	c := env.cluster.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: routerNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}
	if _, err := c.CoreV1().ServiceAccounts(routerNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: routerNamespace}},
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return err
	}
	expiry := int64(3600)
	tr, err := c.CoreV1().ServiceAccounts(routerNamespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	env.token = tr.Status.Token
	env.kubeconfig = filepath.Join(env.dir, "router.kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
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
`, env.cluster.Config.Host, base64.StdEncoding.EncodeToString(env.cluster.CA.CertPEM), env.token)
	return os.WriteFile(env.kubeconfig, []byte(cfg), 0o600)
}

// podPolicy is a per-pod policy with the given weights; seed makes each
// document, and so its digest, distinct.
func podPolicy(seed string, stable, canary int) string {
	return fmt.Sprintf("granularity: pod\nseed: %s\ntargets:\n  - revision: stable\n    weight: %d\n  - revision: canary\n    weight: %d\n", seed, stable, canary)
}

// writePolicy creates or updates the policy ConfigMap the router watches.
func writePolicy(ctx context.Context, doc string) error {
	cms := env.cluster.Client.CoreV1().ConfigMaps(routerNamespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: policyConfigMap, Namespace: routerNamespace}, Data: map[string]string{"policy.yaml": doc}}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
		return nil
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("writing the policy ConfigMap: %w", err)
	}
	return nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
