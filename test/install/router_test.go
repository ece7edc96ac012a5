package install

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace      = "canary-router-system"
	routerServiceAccount = "canary-router"
	routerUser           = "system:serviceaccount:" + routerNamespace + ":" + routerServiceAccount
	webhookConfigName    = "canary-router"
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
	path, token, err := localrouter.ServiceAccountKubeconfig(ctx, env.cluster, t.TempDir())
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
	logPath := filepath.Join(env.dir, t.Name(), "router.log")
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
		certPEM, keyPEM, err := env.cluster.CA.IssueServing("canary-router",
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
	lr, err := localrouter.Start(ctx, env.bin, deploymentArgs, kubeconfig, logPath, extra...)
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, tailFile(logPath, 6000))
	}
	t.Logf("router: %s", strings.Join(lr.Args(), " "))
	t.Cleanup(func() {
		lr.Stop()
		if t.Failed() {
			t.Logf("router log (%s):\n%s", logPath, tailFile(logPath, 6000))
		}
	})
	return &router{Router: lr, port: lr.Port, healthPort: lr.HealthPort, logPath: logPath}
}

// pointWebhooksAtLoopback rewrites the applied webhook configurations to
// call the local router (see localrouter.PointWebhooksAtLoopback).
func pointWebhooksAtLoopback(t *testing.T, ctx context.Context, port int, caBundle []byte) {
	t.Helper()
	if err := localrouter.PointWebhooksAtLoopback(ctx, env.cluster.Client, port, caBundle); err != nil {
		t.Fatal(err)
	}
}

// metric sums the samples of a counter or gauge named name whose labels
// include every pair in match, from the router's /metrics. A metric with
// no sample yet sums to 0.
func (r *router) metric(t *testing.T, name string, match ...string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.healthPort))
	if err != nil {
		t.Fatalf("scraping the router: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return sumSamples(t, buf.Bytes(), name, match...)
}

// apiserverMetric is metric for the apiserver's own /metrics.
func apiserverMetric(t *testing.T, ctx context.Context, name string, match ...string) float64 {
	t.Helper()
	raw, err := env.cluster.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("scraping the apiserver: %v", err)
	}
	return sumSamples(t, raw, name, match...)
}

// sumSamples reads the Prometheus text format just far enough for
// counters: `name{k="v",...} value`. match holds `k="v"` strings.
func sumSamples(t *testing.T, text []byte, name string, match ...string) float64 {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		// Label values may hold spaces; the value follows the last "} ".
		cut := strings.LastIndex(line, "} ") + 1
		if cut == 0 {
			cut = strings.Index(line, " ")
		}
		if cut <= 0 {
			continue
		}
		series, value := line[:cut], strings.TrimSpace(line[cut:])
		all := true
		for _, m := range match {
			all = all && strings.Contains(series, m)
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
