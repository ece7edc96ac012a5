package certse2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
)

// router is one canary-router process.
type router struct {
	name             string
	port, healthPort int
	logPath          string
	cmd              *exec.Cmd
	done             chan struct{} // closed when the process has exited
	exitErr          error         // valid once done is closed
}

// newRouter reserves ports for a router; start runs it.
func newRouter(t *testing.T, name string) *router {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	return &router{name: name, port: ports[0], healthPort: ports[1], logPath: filepath.Join(t.TempDir(), name+".log")}
}

// selfManagedArgs are the flags of a self-managed router reached on
// 127.0.0.1, with extra flags appended.
func (r *router) selfManagedArgs(kubeconfig string, extra ...string) []string {
	return append([]string{
		"--cert-mode", "self-managed",
		"--kubeconfig", kubeconfig,
		"--service-name", "canary-router",
		"--webhook-config-name", configName,
		"--ca-secret-name", secretName,
		"--cert-extra-sans", "127.0.0.1",
	}, extra...)
}

// start runs the router with args after the common ones and stops it when
// the test ends.
func (r *router) start(t *testing.T, args ...string) {
	t.Helper()
	all := append([]string{"serve",
		"--namespace", routerNamespace,
		"--policy-file", env.policy,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", r.healthPort),
		"--log-format", "console",
	}, args...)
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(env.Bin, all...)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	// Its own process group, and killed with the test binary if that dies.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() {
		r.exitErr = r.cmd.Wait()
		logFile.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("--- %s log (%s):\n%s", r.name, r.logPath, r.logTail(6000))
		}
	})
}

func (r *router) stop() {
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

func (r *router) logTail(n int) string { return harness.TailFile(r.logPath, n) }

// waitReady waits for /readyz to answer 200.
func (r *router) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("%s exited (%v) before it was ready:\n%s", r.name, r.exitErr, r.logTail(4000))
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.healthPort))
		if err == nil {
			b := make([]byte, 2048)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = string(b[:n])
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %s\n%s", r.name, timeout, last, r.logTail(4000))
}

// servedCert is the leaf the router presents in a TLS handshake now.
func (r *router) servedCert() (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", r.port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// metrics scrapes the router's /metrics.
func (r *router) metrics(t *testing.T) harness.Metrics {
	t.Helper()
	return harness.Scrape(t, fmt.Sprintf("127.0.0.1:%d", r.healthPort))
}

func (r *router) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", r.port, path)
}

// installWebhooks (re)creates the router's MutatingWebhookConfiguration
// with one fail-closed pod webhook per router, so every pod creation
// needs a TLS handshake with each of them, and a
// ValidatingWebhookConfiguration the apiserver never calls (its selector
// matches no namespace) but whose caBundle the routers must keep too.
// Both start with an empty caBundle: only the routers can make the calls
// work.
func installWebhooks(t *testing.T, routers ...*router) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	adm := env.Cluster.Client.AdmissionregistrationV1()
	deleteWebhooks(t)
	fail, ignore := admissionregv1.Fail, admissionregv1.Ignore
	none := admissionregv1.SideEffectClassNone
	timeout := int32(10)
	mwc := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: configName}}
	for _, r := range routers {
		url := r.url("/mutate-pods")
		mwc.Webhooks = append(mwc.Webhooks, admissionregv1.MutatingWebhook{
			Name:         r.name + ".pods.canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"canary-router.io/injection": "enabled"}},
			FailurePolicy:     &fail,
			SideEffects:       &none,
			TimeoutSeconds:    &timeout,
			// The first router sets istio.io/rev; the next ones see a
			// pinned pod and allow it unchanged.
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	url := routers[0].url("/validate-policy")
	vwc := &admissionregv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: configName},
		Webhooks: []admissionregv1.ValidatingWebhook{{
			Name:         "policy.canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"certs-test": "never-matches"}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if _, err := adm.MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteWebhooks(t) })
}

func deleteWebhooks(t *testing.T) {
	ctx := context.Background()
	adm := env.Cluster.Client.AdmissionregistrationV1()
	if err := adm.MutatingWebhookConfigurations().Delete(ctx, configName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	if err := adm.ValidatingWebhookConfigurations().Delete(ctx, configName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}

// deleteCASecret starts a test from "no CA yet".
func deleteCASecret(t *testing.T) {
	t.Helper()
	err := env.Cluster.Client.CoreV1().Secrets(routerNamespace).Delete(harness.Context(t, 10*time.Second), secretName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// webhookBundles returns the caBundle of every webhook of both
// configurations, keyed by configuration kind and webhook name.
func webhookBundles(ctx context.Context) (map[string][]byte, error) {
	adm := env.Cluster.Client.AdmissionregistrationV1()
	m, err := adm.MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	v, err := adm.ValidatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, wh := range m.Webhooks {
		out["mwc/"+wh.Name] = wh.ClientConfig.CABundle
	}
	for _, wh := range v.Webhooks {
		out["vwc/"+wh.Name] = wh.ClientConfig.CABundle
	}
	return out, nil
}
