package observability

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace = "canary-router-system"
	policyConfigMap = "canary-router-policy"
)

// router is the canary-router binary running as a separate process, the
// way it runs in a cluster: it watches the policy ConfigMap and serves
// certificates from a folder (external mode).
type router struct {
	cmd        *exec.Cmd
	port       int
	healthPort int
	logPath    string
}

// startRouter starts the router, waits until it is ready, and registers
// its MutatingWebhookConfiguration.
func startRouter(ctx context.Context, c *cluster.Cluster, bin, dir string) (*router, error) {
	certDir := filepath.Join(dir, "router-certs")
	certPEM, keyPEM, err := c.CA.IssueServing("canary-router", []string{"localhost"}, loopback)
	if err != nil {
		return nil, err
	}
	if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
		return nil, err
	}
	r := &router{logPath: filepath.Join(dir, "router.log")}
	if r.port, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	if r.healthPort, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	r.cmd = exec.Command(bin, "serve",
		"--cert-mode", "external",
		"--cert-dir", certDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", r.metricsAddr(),
		"--namespace", routerNamespace,
		"--kubeconfig", c.Kubeconfig,
		"--policy-configmap", policyConfigMap)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	if err := r.waitReady(ctx); err != nil {
		r.stop()
		return nil, err
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, localrouter.LoopbackConfig(r.port, c.CA.CertPEM), metav1.CreateOptions{}); err != nil {
		r.stop()
		return nil, fmt.Errorf("registering canary-router: %w", err)
	}
	return r, nil
}

func (r *router) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get("http://" + r.metricsAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("router not ready after 30s; log:\n%s", tailFile(r.logPath, 3000))
}

// metricsAddr is the plain-HTTP /metrics, /healthz and /readyz address.
func (r *router) metricsAddr() string { return fmt.Sprintf("127.0.0.1:%d", r.healthPort) }

func (r *router) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	r.cmd = nil
}
