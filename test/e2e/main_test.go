// Package e2e tests canary-router end to end on a real control plane:
// kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok
// built from Go modules, the router as a separate process, and stand-in
// Istio injectors registered with Istio's exact webhook selectors.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

// env is the shared test environment: one control plane for the package,
// since starting one costs seconds and the scenarios use separate
// namespaces.
var env struct {
	cluster   *cluster.Cluster
	router    *router
	injectors *fakeistio.Injectors
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode (needs the control plane from `make tools`)")
		os.Exit(0)
	}
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "canary-router-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	fmt.Printf("e2e: control plane ready in %s\n", time.Since(start).Round(time.Millisecond))
	env.cluster = c

	bin, err := localrouter.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting stand-in injectors: %v\n", err)
		return 1
	}
	defer inj.Close()
	env.injectors = inj
	// Revisions stable and canary, and the default tag on stable.
	if err := inj.Install(ctx, c.Client, "stable", "stable", "canary"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: routerNamespace}}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintf(os.Stderr, "creating %s: %v\n", routerNamespace, err)
		return 1
	}

	r, err := newRouter(bin, dir, c.CA)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.stop()
	if err := r.start(ctx, policyYAML("pod", 100, 0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, localrouter.LoopbackConfig(r.port, c.CA.CertPEM), metav1.CreateOptions{}); err != nil {
		fmt.Fprintf(os.Stderr, "registering canary-router: %v\n", err)
		return 1
	}
	env.router = r
	code := m.Run()
	if code != 0 {
		log, _ := os.ReadFile(r.logPath)
		fmt.Fprintf(os.Stderr, "--- last router log (%s):\n%s\n", r.logPath, tail(log, 4000))
	}
	return code
}

func loopbackIPs() []net.IP { return []net.IP{net.ParseIP("127.0.0.1")} }

// policyYAML renders a two-target policy.
func policyYAML(granularity string, stable, canary float64) string {
	return fmt.Sprintf(`granularity: %s
seed: e2e
targets:
  - revision: stable
    weight: %g
  - revision: canary
    weight: %g
`, granularity, stable, canary)
}
