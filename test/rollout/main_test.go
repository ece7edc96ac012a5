// Package rollout tests the self-driving rollout (controller/rollout,
// issue 17) end to end: a real control plane (kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler, kwok), stand-in Istio
// injectors, a stand-in canary istiod exporting pilot_total_xds_rejects,
// a real Prometheus scraping it every second, and a router run as the
// manifests' ServiceAccount, leading, walking the plan in the policy.
//
// Scenarios print RESULT lines and a timeline; they run one after the
// other (the policy is cluster-wide).
package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

var env struct {
	*harness.Env
	saKubeconfig string
	certDir      string
	router       *localrouter.Router
	port, hp     int
	starts       int
	logPath      string
	istiod       *fakeIstiod
	prom         *prometheus
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "rollout", Workloads: true,
		Needs: "the control plane from `make tools` and Prometheus from `make prometheus`",
		Tools: []string{"prometheus"}, ToolsHint: "run `make prometheus` (test/tools/install-prometheus.sh)",
		Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	c := e.Cluster
	if _, err := e.StartIstio(ctx, "stable", "stable", "canary"); err != nil {
		return err
	}
	id, err := e.SetUpManifestIdentity(ctx)
	if err != nil {
		return err
	}
	env.saKubeconfig, env.certDir = id.Kubeconfig, id.CertDir
	if err := e.WritePolicy(ctx, harness.PolicyYAML("workload", "rollout", 100, 0)); err != nil {
		return err
	}
	env.istiod = startFakeIstiod()
	e.Cleanup(env.istiod.close)
	if env.prom, err = startPrometheus(ctx, e.Dir, env.istiod.addr()); err != nil {
		return err
	}
	e.Cleanup(env.prom.stop)
	e.LogOnFailure("Prometheus", func() string { return env.prom.logPath }, 2000)
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return err
	}
	env.port, env.hp = ports[0], ports[1]
	e.Cleanup(stopRouter)
	if err := startRouter(ctx); err != nil {
		return err
	}
	e.LogOnFailure("router", func() string { return env.logPath }, 4000)
	_, err = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		localrouter.LoopbackConfig(env.port, c.CA.CertPEM), metav1.CreateOptions{})
	return err
}

// startRouter (re)starts the router as the ServiceAccount on the same
// ports, so the webhook configuration keeps pointing at it.
func startRouter(ctx context.Context) error {
	env.starts++
	env.logPath = filepath.Join(env.Dir, fmt.Sprintf("router-%d.log", env.starts))
	if err := os.Setenv("POD_NAME", "router"); err != nil {
		return err
	}
	p, err := localrouter.Run(ctx, env.Bin, serveArgs(env.port, env.hp), env.logPath, env.port, env.hp)
	if err != nil {
		return err
	}
	env.router = p
	return nil
}

// serveArgs are the flags of every router replica the suite runs, the
// main one and the standbys: one list, so a flag the suite's policies
// need (the Prometheus allowlist) reaches each.
func serveArgs(port, healthPort int) []string {
	return []string{"serve",
		"--cert-mode", "external", "--cert-dir", env.certDir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", healthPort),
		"--namespace", localrouter.Namespace,
		"--kubeconfig", env.saKubeconfig,
		"--policy-configmap", harness.PolicyConfigMap,
		"--prometheus-allowed-url", env.prom.url(),
		"--log-level", "debug"}
}

func stopRouter() {
	if env.router != nil {
		env.router.Stop()
		<-env.router.Exited()
		env.router = nil
	}
}
