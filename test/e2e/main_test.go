// Package e2e tests canary-router end to end on a real control plane:
// kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok
// built from Go modules, the router as a separate process, and stand-in
// Istio injectors registered with Istio's exact webhook selectors.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// env is the shared test environment: one control plane for the package,
// since starting one costs seconds and the scenarios use separate
// namespaces.
var env struct {
	*harness.Env
	router    *router
	injectors *fakeistio.Injectors
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "e2e", Workloads: true, Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	c := e.Cluster
	// Revisions stable and canary, and the default tag on stable.
	inj, err := e.StartIstio(ctx, "stable", "stable", "canary")
	if err != nil {
		return err
	}
	env.injectors = inj
	if err := e.CreateNamespaceObject(ctx, routerNamespace, nil); err != nil {
		return err
	}
	r, err := newRouter(e.Bin, e.Dir, c.CA)
	if err != nil {
		return err
	}
	e.Cleanup(r.stop)
	if err := r.start(ctx, policyYAML("pod", 100, 0)); err != nil {
		return err
	}
	e.LogOnFailure("router", func() string { return r.logPath }, 4000)
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, localrouter.LoopbackConfig(r.port, c.CA.CertPEM), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering canary-router: %w", err)
	}
	env.router = r
	return waitWebhookInForce(ctx, c.Client)
}

// waitWebhookInForce waits until kube-apiserver calls the router's
// webhooks: it picks a new webhook configuration up from its own informer,
// a moment after the create returns, and a namespace the first test made
// in that moment went unconverted. A server-side dry run of an
// istio-injection namespace shows when the router answers.
func waitWebhookInForce(ctx context.Context, client kubernetes.Interface) error {
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "webhook-probe", Labels: map[string]string{"istio-injection": "enabled"}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := client.CoreV1().Namespaces().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && got.Labels["canary-router.io/injection"] == "enabled" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the router's webhooks not in force after 30s (last: %v, labels %v)", err, got.GetLabels())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func loopbackIPs() []net.IP { return []net.IP{net.ParseIP("127.0.0.1")} }

// policyYAML renders a two-target policy.
func policyYAML(granularity string, stable, canary float64) string {
	return harness.PolicyYAML(granularity, "e2e", stable, canary)
}
