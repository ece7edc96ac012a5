package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

const routerNamespace = localrouter.Namespace

// router runs the real canary-router binary as a separate process, the
// way it runs in a cluster, with a policy file and a serving cert dir.
type router struct {
	bin        string
	dir        string
	certDir    string
	port       int
	healthPort int
	proc       *localrouter.Router
	logPath    string
	starts     int
}

func newRouter(bin, dir string, ca *cluster.CA) (*router, error) {
	certDir := filepath.Join(dir, "certs")
	certPEM, keyPEM, err := ca.IssueServing("canary-router", []string{"localhost"}, loopbackIPs())
	if err != nil {
		return nil, err
	}
	if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
		return nil, err
	}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	return &router{bin: bin, dir: dir, certDir: certDir, port: ports[0], healthPort: ports[1]}, nil
}

// start (re)starts the router with policyYAML read from a file and waits
// until it is ready.
func (r *router) start(ctx context.Context, policyYAML string) error {
	policyPath := filepath.Join(r.dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML), 0o644); err != nil {
		return err
	}
	return r.launch(ctx, "--policy-file", policyPath)
}

// startWatching (re)starts the router the way it runs in a cluster: it
// watches the policy ConfigMap through the API.
func (r *router) startWatching(ctx context.Context) error {
	return r.launch(ctx, "--kubeconfig", env.Cluster.Kubeconfig, "--policy-configmap", "canary-router-policy")
}

// launch (re)starts the router on the same ports, so the webhook
// configuration registered once keeps pointing at it.
func (r *router) launch(ctx context.Context, policyArgs ...string) error {
	r.stop()
	r.starts++
	r.logPath = filepath.Join(r.dir, fmt.Sprintf("router-%d.log", r.starts))
	args := append([]string{"serve",
		"--cert-mode", "external",
		"--cert-dir", r.certDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", r.healthPort),
		"--namespace", routerNamespace,
		// Every mode reads Istio's webhook configs and istiod endpoints.
		"--kubeconfig", env.Cluster.Kubeconfig,
		"--log-level", "debug"}, policyArgs...)
	proc, err := localrouter.Run(ctx, r.bin, args, r.logPath, r.port, r.healthPort)
	if err != nil {
		return err
	}
	r.proc = proc
	return nil
}

func (r *router) stop() {
	if r.proc != nil {
		r.proc.Stop()
		r.proc = nil
	}
}

func (r *router) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", r.port, path)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
