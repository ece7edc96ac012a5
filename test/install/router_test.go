package install

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/canary-router/canary-router/test/cluster"
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
	cmd        *exec.Cmd
	port       int
	healthPort int
	logPath    string
}

// serviceAccountKubeconfig mints a token for the manifests' ServiceAccount
// through the TokenRequest API, exactly as the kubelet would for the
// router's pod, and writes a kubeconfig that carries only that token: the
// router then has the manifests' RBAC and nothing else.
func serviceAccountKubeconfig(t *testing.T, ctx context.Context) (path, token string) {
	t.Helper()
	expiry := int64(3600)
	tr, err := env.cluster.Client.CoreV1().ServiceAccounts(routerNamespace).CreateToken(ctx, routerServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", routerUser, err)
	}
	path = filepath.Join(t.TempDir(), "router.kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s, namespace: %s}
current-context: test
`, env.cluster.Config.Host, base64.StdEncoding.EncodeToString(env.cluster.CA.CertPEM), routerUser, tr.Status.Token, routerUser, routerNamespace)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tr.Status.Token
}

// startRouter runs the router with the args of the applied Deployment,
// followed by the few a local process must override (flags given twice
// take the last value): the ServiceAccount kubeconfig instead of the
// in-cluster config, loopback listen addresses, debug logs, and where the
// serving certificate must name 127.0.0.1 or come from a local folder.
// It waits until /readyz passes (serving certificate loaded, policy
// ConfigMap read, Istio view synced) and stops the router when the test
// ends.
func startRouter(t *testing.T, ctx context.Context, deploymentArgs []string, certMode, kubeconfig string) *router {
	t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		p, err := cluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	r := &router{port: ports[0], healthPort: ports[1], logPath: filepath.Join(env.dir, t.Name(), "router.log")}
	if err := os.MkdirAll(filepath.Dir(r.logPath), 0o700); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(deploymentArgs),
		"--kubeconfig", kubeconfig,
		"--namespace", routerNamespace,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", r.healthPort),
		"--log-level", "debug",
		"--log-format", "console",
	)
	switch certMode {
	case certSelfManaged:
		// The Service names plus the loopback address the test points
		// the webhook configurations at.
		args = append(args, "--cert-extra-sans", "127.0.0.1")
	case certExternal:
		// What cert-manager would mount: a pair for the Service names,
		// here issued by the cluster CA (plus the loopback address).
		certDir := filepath.Join(filepath.Dir(r.logPath), "certs")
		certPEM, keyPEM, err := env.cluster.CA.IssueServing("canary-router",
			[]string{"canary-router.canary-router-system.svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--cert-dir", certDir)
	default:
		t.Fatalf("unknown cert mode %q", certMode)
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	r.cmd = exec.Command(env.bin, args...)
	t.Logf("router: %s %s", filepath.Base(env.bin), strings.Join(args, " "))
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		r.stop(exited)
		if t.Failed() {
			t.Logf("router log (%s):\n%s", r.logPath, tailFile(r.logPath, 6000))
		}
	})
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("router exited (%v); log:\n%s", r.cmd.ProcessState, tailFile(r.logPath, 6000))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.healthPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
	}
	t.Fatalf("router not ready after 45s; log:\n%s", tailFile(r.logPath, 6000))
	return nil
}

func (r *router) stop(exited <-chan struct{}) {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// pointWebhooksAtLoopback rewrites every webhook of the applied
// canary-router configurations from the in-cluster Service to the local
// router, keeping path and everything else. caBundle is set only when
// given (external mode: the test plays cert-manager's cainjector); in
// self-managed mode the router patches it itself. Each replace is guarded
// by a test of the webhook's name.
func pointWebhooksAtLoopback(t *testing.T, ctx context.Context, port int, caBundle []byte) {
	t.Helper()
	adm := env.cluster.Client.AdmissionregistrationV1()
	mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mnames, mpaths []string
	for _, wh := range mwc.Webhooks {
		mnames, mpaths = append(mnames, wh.Name), append(mpaths, *wh.ClientConfig.Service.Path)
	}
	patch := loopbackPatch(mnames, mpaths, port, caBundle)
	if _, err := adm.MutatingWebhookConfigurations().Patch(ctx, webhookConfigName, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("pointing the MutatingWebhookConfiguration at loopback: %v", err)
	}
	vwc, err := adm.ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var vnames, vpaths []string
	for _, wh := range vwc.Webhooks {
		vnames, vpaths = append(vnames, wh.Name), append(vpaths, *wh.ClientConfig.Service.Path)
	}
	patch = loopbackPatch(vnames, vpaths, port, caBundle)
	if _, err := adm.ValidatingWebhookConfigurations().Patch(ctx, webhookConfigName, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("pointing the ValidatingWebhookConfiguration at loopback: %v", err)
	}
}

func loopbackPatch(names, paths []string, port int, caBundle []byte) []byte {
	var ops []map[string]any
	for i, name := range names {
		base := "/webhooks/" + strconv.Itoa(i) + "/clientConfig"
		ops = append(ops,
			map[string]any{"op": "test", "path": "/webhooks/" + strconv.Itoa(i) + "/name", "value": name},
			map[string]any{"op": "remove", "path": base + "/service"},
			map[string]any{"op": "add", "path": base + "/url", "value": fmt.Sprintf("https://127.0.0.1:%d%s", port, paths[i])})
		if caBundle != nil {
			ops = append(ops, map[string]any{"op": "add", "path": base + "/caBundle", "value": caBundle})
		}
	}
	out, _ := json.Marshal(ops)
	return out
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
