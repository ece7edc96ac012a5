// Package dashboard tests `canary-router dashboard` in a real browser:
// headless Chromium (Debian's package, `make chromium`) driven by
// chromedp, against the page served by the CLI during a self-driving
// rollout on the test control plane (kube-apiserver, etcd, controller
// manager, scheduler and kwok, stand-in Istio injectors, the router run
// as the manifests' ServiceAccount and leading).
package dashboard

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
	router  *localrouter.Router
	logPath string
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "dashboard", Workloads: true,
		Needs: "the control plane from `make tools` and Chromium from `make chromium`",
		Tools: []string{"chromium"}, ToolsHint: "run `make chromium` (test/tools/install-chromium.sh)",
		Setup: setup}))
}

// setup runs one router, leading, with the built-in gates only: the
// page, not the gates, is under test, so no Prometheus is needed.
func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	if _, err := e.StartIstio(ctx, "stable", "stable", "canary"); err != nil {
		return err
	}
	id, err := e.SetUpManifestIdentity(ctx)
	if err != nil {
		return err
	}
	if err := e.WritePolicy(ctx, harness.PolicyYAML("workload", "dashboard", 100, 0)); err != nil {
		return err
	}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return err
	}
	// The leader names itself after the pod it would run in.
	if err := os.Setenv("POD_NAME", "router"); err != nil {
		return err
	}
	env.logPath = filepath.Join(e.Dir, "router.log")
	args := []string{"serve", "--cert-mode", "external", "--cert-dir", id.CertDir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--health-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--namespace", localrouter.Namespace, "--kubeconfig", id.Kubeconfig, "--policy-configmap", harness.PolicyConfigMap}
	if env.router, err = localrouter.Run(ctx, e.Bin, args, env.logPath, ports[0], ports[1]); err != nil {
		return err
	}
	e.Cleanup(func() { env.router.Stop(); <-env.router.Exited() })
	e.LogOnFailure("router", func() string { return env.logPath }, 4000)
	_, err = e.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		localrouter.LoopbackConfig(ports[0], e.Cluster.CA.CertPEM), metav1.CreateOptions{})
	return err
}
