package faults

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// router is one canary-router process, restartable on the same ports.
type router struct {
	name             string
	port, healthPort int
	// modeArgs select the certificate mode.
	modeArgs []string
	// caBundle verifies the serving certificate in external mode; nil in
	// self-managed mode, where the router patches the webhook configs.
	caBundle []byte
	logPaths []string
	proc     *localrouter.Router
}

// routers are started on first use and stopped by TestMain.
var routers struct {
	mu                 sync.Mutex
	external, rotating *router
}

// rotationFlags give short certificate lifetimes, so serving certificates
// renew every 8 s and the CA rolls over after 16 s (stage, then promote
// 3 s later, retire 3 s after that) within a scenario's load.
var rotationFlags = []string{"--cert-validity", "12s", "--ca-validity", "24s", "--cert-check-interval", "1s", "--ca-overlap", "3s"}

// externalRouter serves a certificate from the cluster CA in a folder,
// as with cert-manager.
func externalRouter(t *testing.T) *router {
	t.Helper()
	routers.mu.Lock()
	defer routers.mu.Unlock()
	if routers.external == nil {
		certPEM, keyPEM, err := env.Cluster.CA.IssueServing("canary-router", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		certDir := filepath.Join(env.Dir, "certs")
		if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		r := newRouter(t, "external", []string{"--cert-mode", "external", "--cert-dir", certDir})
		r.caBundle = env.Cluster.CA.CertPEM
		routers.external = r
	}
	return routers.external
}

// rotatingRouter keeps its own CA in a Secret with short lifetimes and
// patches the webhook configs' caBundle itself.
func rotatingRouter(t *testing.T) *router {
	t.Helper()
	routers.mu.Lock()
	defer routers.mu.Unlock()
	if routers.rotating == nil {
		routers.rotating = newRouter(t, "rotating", append([]string{"--cert-mode", "self-managed",
			"--service-name", "canary-router", "--webhook-config-name", webhookConfig,
			"--ca-secret-name", "canary-router-ca", "--cert-extra-sans", "127.0.0.1"}, rotationFlags...))
	}
	return routers.rotating
}

func stopRouters() {
	routers.mu.Lock()
	defer routers.mu.Unlock()
	for _, r := range []*router{routers.external, routers.rotating} {
		if r != nil {
			r.stop()
		}
	}
}

func newRouter(t *testing.T, name string, modeArgs []string) *router {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	return &router{name: name, port: ports[0], healthPort: ports[1], modeArgs: modeArgs}
}

func (r *router) running() bool { return r.proc != nil && r.proc.Running() }

// start runs the router as in a cluster (policy from the ConfigMap, the
// ServiceAccount's token, debug logging), on the same ports every time,
// and waits until /readyz passes.
func (r *router) start(ctx context.Context) error {
	logPath := filepath.Join(env.Dir, fmt.Sprintf("router-%s-%d.log", r.name, len(r.logPaths)+1))
	r.logPaths = append(r.logPaths, logPath)
	args := append([]string{"serve",
		"--namespace", routerNamespace,
		"--policy-configmap", policyConfigMap,
		"--kubeconfig", env.kubeconfig,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", r.healthAddr(),
		"--log-level", "debug",
	}, r.modeArgs...)
	proc, err := localrouter.Run(ctx, env.Bin, args, logPath, r.port, r.healthPort)
	if err != nil {
		return fmt.Errorf("router %s: %w", r.name, err)
	}
	r.proc = proc
	return nil
}

// kill ends the router the hard way, as a node failure or an OOM kill
// would: no graceful shutdown.
func (r *router) kill() {
	if r.running() {
		r.proc.Kill()
	}
}

// stop ends the router with SIGTERM, then SIGKILL after 10 seconds.
func (r *router) stop() {
	if r.running() {
		r.proc.Stop()
	}
}

func (r *router) healthAddr() string { return fmt.Sprintf("127.0.0.1:%d", r.healthPort) }

func (r *router) url(path string) string { return fmt.Sprintf("https://127.0.0.1:%d%s", r.port, path) }

func (r *router) logTail(n int) string {
	if r.proc == nil {
		return ""
	}
	return r.proc.LogTail(n)
}

// scrape reads the router's /metrics.
func (r *router) scrape(t *testing.T) harness.Metrics {
	t.Helper()
	return harness.Scrape(t, r.healthAddr())
}

// useRouter makes r the router the apiserver calls: r runs, and the
// MutatingWebhookConfiguration and ValidatingWebhookConfiguration point at
// it. Any other router is stopped. It returns once a pod is routed
// through r.
func useRouter(t *testing.T, r *router) {
	t.Helper()
	ctx := harness.Context(t, 2*time.Minute)
	routers.mu.Lock()
	for _, o := range []*router{routers.external, routers.rotating} {
		if o != nil && o != r {
			o.stop()
		}
	}
	routers.mu.Unlock()
	if !r.running() {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := registerWebhooks(ctx, r); err != nil {
		t.Fatal(err)
	}
	probeNamespace(t)
	waitRouted(t, "probe", func(d harness.Decision) bool { return true })
}
