package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

// routerNamespace is the router's own namespace.
const routerNamespace = "canary-router-system"

// loadPolicy routes every pod of the load by workload between two
// revisions.
const loadPolicy = `granularity: workload
seed: load
targets:
  - revision: stable
    weight: 80
  - revision: canary
    weight: 20
`

// server is a webhook server process under measurement.
type server struct {
	name string
	port int
	cmd  *exec.Cmd
	log  string
	// health is the port of the router's /readyz and /metrics, if known.
	health int
}

// env is a control plane prepared for the router, and the serving cert
// both servers use. The router reads Istio's injector configs and istiod
// EndpointSlices through the API before it routes anything, so even the
// HTTP-level comparison needs an apiserver behind it.
type env struct {
	cluster *cluster.Cluster
	dir     string
	certDir string
	roots   *x509.CertPool
}

// startEnv starts etcd and kube-apiserver (no controllers: nothing is
// scheduled or garbage-collected during a measurement) and registers
// Istio revisions stable and canary as the router needs to see them.
func startEnv(ctx context.Context, log io.Writer) (_ *env, err error) {
	c, err := cluster.Start(ctx, cluster.Options{Log: log})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := registerIstio(ctx, c.Client, "stable", "canary"); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: routerNamespace}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "load")
	certPEM, keyPEM, err := c.CA.IssueServing("canary-router", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.CA.Cert)
	return &env{cluster: c, dir: dir, certDir: certDir, roots: roots}, nil
}

func (e *env) stop() { _ = e.cluster.Stop() }

// bench is the control plane with the two servers every measurement
// compares: the router and the floor webhook.
type bench struct {
	*env
	router, floor *server
}

// startBench starts the control plane, the router from bin and the floor
// webhook (echoUID as for startFloor). On an error it stops what it had
// started.
func startBench(ctx context.Context, log io.Writer, bin string, echoUID bool) (_ *bench, err error) {
	e, err := startEnv(ctx, log)
	if err != nil {
		return nil, err
	}
	b := &bench{env: e}
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	// Each start may hand back a process that never became ready; stop
	// ends it too.
	if b.router, err = e.startRouter(ctx, bin); err != nil {
		return nil, err
	}
	if b.floor, err = e.startFloor(ctx, echoUID); err != nil {
		return nil, err
	}
	return b, nil
}

// stop ends both servers, then the control plane.
func (b *bench) stop() {
	b.floor.stop()
	b.router.stop()
	b.env.stop()
}

// startRouter runs `canary-router serve` as it runs in a cluster, with
// externally issued certs and loadPolicy from a file.
func (e *env) startRouter(ctx context.Context, bin string) (*server, error) {
	return e.startRouterWith(ctx, bin, loadPolicy)
}

// startRouterWith is startRouter under policyDoc; the webhook
// registration, if there is one already, is pointed at the new router.
func (e *env) startRouterWith(ctx context.Context, bin, policyDoc string) (*server, error) {
	policy := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(policyDoc), 0o644); err != nil {
		return nil, err
	}
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	health, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := e.start("router", port, bin, "serve", "--policy-file", policy,
		"--cert-mode", "external", "--cert-dir", e.certDir, "--kubeconfig", e.cluster.Kubeconfig,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", health), "--namespace", routerNamespace)
	if err != nil {
		return nil, err
	}
	if err := e.registerWebhook(ctx, "canary-router", port, routerLabel); err != nil {
		return srv, err
	}
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	return srv, srv.waitReady(ctx, func() bool {
		resp, err := http.Get(readyURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Labels that select a namespace for the router's pod webhook, and for
// the floor's in the pod-creation measurement.
const (
	routerLabel = "canary-router.io/injection"
	floorLabel  = "canary-router.io/perf-floor"
)

// registerWebhook registers a pod webhook as the manifests register the
// router's (failurePolicy Fail, sideEffects None, 5 s timeout), calling
// port and matching only namespaces labelled label=enabled. The router's
// is named canary-router, which sorts before Istio's configs as the
// router checks.
func (e *env) registerWebhook(ctx context.Context, name string, port int, label string) error {
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-pods", port)
	fail, none, never := admissionregv1.Fail, admissionregv1.SideEffectClassNone, admissionregv1.NeverReinvocationPolicy
	timeout := int32(5)
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:         "pods." + name + ".canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: e.cluster.CA.CertPEM},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "enabled"}},
			FailurePolicy:     &fail, SideEffects: &none, ReinvocationPolicy: &never, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	mwcs := e.cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	_, err := mwcs.Create(ctx, mwc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var old *admissionregv1.MutatingWebhookConfiguration
		if old, err = mwcs.Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		mwc.ResourceVersion = old.ResourceVersion
		_, err = mwcs.Update(ctx, mwc, metav1.UpdateOptions{})
	}
	return err
}

// startFloor runs this binary's floor server; echoUID for one that
// kube-apiserver calls.
func (e *env) startFloor(ctx context.Context, echoUID bool) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := e.start("floor", port, self, "floor", "--port", strconv.Itoa(port), "--cert-dir", e.certDir,
		"--echo-uid="+strconv.FormatBool(echoUID))
	if err != nil {
		return nil, err
	}
	return srv, srv.waitReady(ctx, func() bool {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: e.roots})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (e *env) start(name string, port int, bin string, args ...string) (*server, error) {
	return e.startWithEnv(name, port, nil, bin, args...)
}

// startWithEnv is start with extra environment variables (NAME=value)
// on top of this process's.
func (e *env) startWithEnv(name string, port int, environ []string, bin string, args ...string) (*server, error) {
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if environ != nil {
		cmd.Env = append(os.Environ(), environ...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &server{name: name, port: port, cmd: cmd, log: logPath}, nil
}

func (s *server) waitReady(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ready() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.log)
	return fmt.Errorf("%s not ready after 30s; log:\n%s", s.name, log)
}

func (s *server) url() string { return fmt.Sprintf("https://127.0.0.1:%d/mutate-pods", s.port) }

// stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (it is fixed by the kernel
// ABI, not by CONFIG_HZ).
const clockTicks = 100

// cpuTime returns the CPU time (user + system, all threads) the process
// has used so far.
func (s *server) cpuTime() (time.Duration, error) {
	return processCPU(s.cmd.Process.Pid)
}

// findPID returns the process whose command line holds every one of
// parts (how the load tool finds the cluster's kube-apiserver).
func findPID(parts ...string) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(string(cmd), p)
		}
		if all {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process with %q in its command line", parts)
}

func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
