package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace      = localrouter.Namespace
	routerServiceAccount = localrouter.ServiceAccount
	routerUser           = "system:serviceaccount:" + routerNamespace + ":" + routerServiceAccount
	webhookConfigName    = localrouter.WebhookConfig
)

// Certificate modes of the router, as the overlays configure them.
const (
	certSelfManaged = "self-managed"
	certExternal    = "external"
)

// router is the real canary-router binary running as a local process with
// the manifests' ServiceAccount identity.
type router struct {
	*localrouter.Router
	port, healthPort int
	logPath          string
}

// serviceAccountKubeconfig mints a token for the manifests' ServiceAccount
// through the TokenRequest API, exactly as the kubelet would for the
// router's pod, and writes a kubeconfig that carries only that token: the
// router then has the manifests' RBAC and nothing else.
func serviceAccountKubeconfig(t *testing.T, ctx context.Context) (path, token string) {
	t.Helper()
	path, token, err := localrouter.ServiceAccountKubeconfig(ctx, env.Cluster, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path, token
}

// startRouter runs the router with the args of the applied Deployment,
// followed by the few a local process must override: the ServiceAccount
// kubeconfig, loopback listen addresses, debug logs, and where the
// serving certificate must name 127.0.0.1 or come from a local folder.
// It waits until /readyz passes (serving certificate loaded, policy
// ConfigMap read, Istio view synced) and stops the router when the test
// ends.
func startRouter(t *testing.T, ctx context.Context, deploymentArgs []string, certMode, kubeconfig string) *router {
	t.Helper()
	logPath := filepath.Join(env.Dir, t.Name(), "router.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		t.Fatal(err)
	}
	extra := []string{"--log-level", "debug", "--log-format", "console"}
	switch certMode {
	case certSelfManaged:
		// The Service names plus the loopback address the test points
		// the webhook configurations at.
		extra = append(extra, "--cert-extra-sans", "127.0.0.1")
	case certExternal:
		// What cert-manager would mount: a pair for the Service names,
		// here issued by the cluster CA (plus the loopback address).
		certDir := filepath.Join(filepath.Dir(logPath), "certs")
		certPEM, keyPEM, err := env.Cluster.CA.IssueServing("canary-router",
			[]string{"canary-router.canary-router-system.svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		extra = append(extra, "--cert-dir", certDir)
	default:
		t.Fatalf("unknown cert mode %q", certMode)
	}
	lr, err := localrouter.Start(ctx, env.Bin, deploymentArgs, kubeconfig, logPath, extra...)
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, harness.TailFile(logPath, 6000))
	}
	t.Logf("router: %s", strings.Join(lr.Args(), " "))
	t.Cleanup(func() {
		lr.Stop()
		if t.Failed() {
			t.Logf("router log (%s):\n%s", logPath, harness.TailFile(logPath, 6000))
		}
	})
	return &router{Router: lr, port: lr.Port, healthPort: lr.HealthPort, logPath: logPath}
}

// pointWebhooksAtLoopback rewrites the applied webhook configurations to
// call the local router (see localrouter.PointWebhooksAtLoopback).
func pointWebhooksAtLoopback(t *testing.T, ctx context.Context, port int, caBundle []byte) {
	t.Helper()
	if err := localrouter.PointWebhooksAtLoopback(ctx, env.Cluster.Client, port, caBundle); err != nil {
		t.Fatal(err)
	}
}

// metric sums the samples of a counter or gauge named name whose labels
// include every pair in match, from the router's /metrics. A metric with
// no sample yet sums to 0.
func (r *router) metric(t *testing.T, name string, match ...string) float64 {
	t.Helper()
	return harness.Scrape(t, fmt.Sprintf("127.0.0.1:%d", r.healthPort)).Sum(name, match...)
}

// apiserverMetric is metric for the apiserver's own /metrics.
func apiserverMetric(t *testing.T, ctx context.Context, name string, match ...string) float64 {
	t.Helper()
	return env.APIServerMetrics(t, ctx).Sum(name, match...)
}
