// Package localrouter runs canary-router, installed from the manifests in
// deploy/, as a local process: the Deployment's own arguments, the
// ServiceAccount's identity (a token from the TokenRequest API, so it has
// exactly the manifests' RBAC), and the webhook configurations pointed at
// loopback. That is the one deviation from an in-cluster install: the
// control plane here has no kubelet to run the router's pod.
package localrouter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/test/cluster"
)

// Names the manifests in deploy/ use.
const (
	Namespace      = "canary-router-system"
	ServiceAccount = "canary-router"
	Deployment     = "canary-router"
	WebhookConfig  = "canary-router"
)

// ServiceAccountKubeconfig mints a token for the router's ServiceAccount,
// as the kubelet would for its pod, and writes a kubeconfig carrying only
// that token into dir.
func ServiceAccountKubeconfig(ctx context.Context, c *cluster.Cluster, dir string) (path, token string, err error) {
	expiry := int64(24 * 3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", "", fmt.Errorf("TokenRequest for %s/%s: %w", Namespace, ServiceAccount, err)
	}
	user := "system:serviceaccount:" + Namespace + ":" + ServiceAccount
	path = filepath.Join(dir, "router.kubeconfig")
	if err := c.WriteTokenKubeconfig(path, user, tr.Status.Token, Namespace); err != nil {
		return "", "", err
	}
	return path, tr.Status.Token, nil
}

// DeploymentArgs returns the router container's arguments from the
// applied Deployment.
func DeploymentArgs(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	d, err := client.AppsV1().Deployments(Namespace).Get(ctx, Deployment, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "router" {
			return c.Args, nil
		}
	}
	return nil, fmt.Errorf("deployment %s/%s has no container named router", Namespace, Deployment)
}

// Router is a router process.
type Router struct {
	Port       int
	HealthPort int
	LogPath    string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Start runs bin with the Deployment's args followed by the overrides a
// local process needs (flags given twice take the last value): the
// kubeconfig instead of the in-cluster config, loopback listen addresses
// on free ports, and extra. It returns once /readyz passes.
func Start(ctx context.Context, bin string, deploymentArgs []string, kubeconfig, logPath string, extra ...string) (*Router, error) {
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	port, health := ports[0], ports[1]
	args := append(slices.Clone(deploymentArgs),
		"--kubeconfig", kubeconfig,
		"--namespace", Namespace,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", health))
	return Run(ctx, bin, append(args, extra...), logPath, port, health)
}

// Run runs bin with exactly args, which must make it listen on 127.0.0.1
// at port (admission) and healthPort (health), writing its output to
// logPath. It returns once /readyz passes, or an error with the log's
// tail when the process exits first or is not ready within 45 s. The
// process gets its own process group, killed with the test binary.
func Run(ctx context.Context, bin string, args []string, logPath string, port, healthPort int) (*Router, error) {
	r := &Router{Port: port, HealthPort: healthPort, LogPath: logPath, exited: make(chan struct{})}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return nil, fmt.Errorf("router exited (%v) before it was ready; log:\n%s", r.cmd.ProcessState, r.LogTail(3000))
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
	}
	r.Stop()
	return nil, fmt.Errorf("router not ready after 45s; log:\n%s", r.LogTail(3000))
}

// Args returns the command line the router runs with.
func (r *Router) Args() []string { return r.cmd.Args }

// Stop ends the router: SIGTERM, then SIGKILL after 10 seconds.
func (r *Router) Stop() { r.signal(syscall.SIGTERM) }

// Kill ends the router the hard way, as a node failure or an OOM kill
// would: no graceful shutdown.
func (r *Router) Kill() { r.signal(syscall.SIGKILL) }

// Freeze stops the router without ending it (SIGSTOP), as a long GC pause
// or a descheduled VM would: it holds its connections and state and does
// nothing until Thaw.
func (r *Router) Freeze() { _ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGSTOP) }

// Thaw lets a frozen router carry on (SIGCONT) where it stopped.
func (r *Router) Thaw() { _ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGCONT) }

func (r *Router) signal(sig syscall.Signal) {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, sig)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
}

// Exited is closed when the process ends.
func (r *Router) Exited() <-chan struct{} { return r.exited }

// Running reports whether the process is still alive.
func (r *Router) Running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// LogTail returns the last n bytes of the router's log.
func (r *Router) LogTail(n int) string {
	b, _ := os.ReadFile(r.LogPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// PointWebhooksAtLoopback rewrites every webhook of the applied
// canary-router configurations from the in-cluster Service to the local
// router on port, keeping the path. caBundle is set only when given; in
// self-managed mode the router patches it itself. Each replace is guarded
// by a test of the webhook's name.
func PointWebhooksAtLoopback(ctx context.Context, client kubernetes.Interface, port int, caBundle []byte) error {
	adm := client.AdmissionregistrationV1()
	mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, WebhookConfig, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var names, paths []string
	for _, wh := range mwc.Webhooks {
		names, paths = append(names, wh.Name), append(paths, *wh.ClientConfig.Service.Path)
	}
	if _, err := adm.MutatingWebhookConfigurations().Patch(ctx, WebhookConfig, types.JSONPatchType, loopbackPatch(names, paths, port, caBundle), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("pointing the MutatingWebhookConfiguration at loopback: %w", err)
	}
	vwc, err := adm.ValidatingWebhookConfigurations().Get(ctx, WebhookConfig, metav1.GetOptions{})
	if err != nil {
		return err
	}
	names, paths = nil, nil
	for _, wh := range vwc.Webhooks {
		names, paths = append(names, wh.Name), append(paths, *wh.ClientConfig.Service.Path)
	}
	if _, err := adm.ValidatingWebhookConfigurations().Patch(ctx, WebhookConfig, types.JSONPatchType, loopbackPatch(names, paths, port, caBundle), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("pointing the ValidatingWebhookConfiguration at loopback: %w", err)
	}
	return nil
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
