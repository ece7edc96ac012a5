package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	serviceClusterIPRange = "10.0.0.0/24"
	// kubernetesServiceIP is the first address of serviceClusterIPRange, which
	// the apiserver gives the "kubernetes" Service; in-cluster clients dial it.
	kubernetesServiceIP  = "10.0.0.1"
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// portAttempts bounds retries when another process took a port between
	// FreePort and the component binding it.
	portAttempts = 3
)

// pkiFiles holds the cluster's credentials and where they were written.
type pkiFiles struct {
	ca                      *CA
	caFile                  string
	servingCert, servingKey string
	saPub, saKey            string
	adminCert, adminKey     []byte
}

func writePKI(dir string) (*pkiFiles, error) {
	ca, err := NewCA("canary-router-cluster-ca")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.IssueServing("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(kubernetesServiceIP)})
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := ca.IssueClient("admin", []string{"system:masters"})
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := newSigningKeyPair()
	if err != nil {
		return nil, err
	}
	f := &pkiFiles{
		ca:          ca,
		caFile:      filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
		saKey:       filepath.Join(dir, "sa.key"),
		adminCert:   adminCert,
		adminKey:    adminKey,
	}
	for path, data := range map[string][]byte{
		f.caFile: ca.CertPEM, f.servingCert: servingCert, f.servingKey: servingKey,
		f.saPub: saPub, f.saKey: saKey,
		filepath.Join(dir, "admin.crt"): adminCert, filepath.Join(dir, "admin.key"): adminKey,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// startEtcd starts a single-member etcd and returns its client URL.
func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	dataDir := filepath.Join(c.Dir, "etcd")
	for attempt := 1; ; attempt++ {
		ports, err := FreePorts(2)
		if err != nil {
			return "", err
		}
		clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		args := []string{
			"--name=default",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			// A lone member still binds a peer port, by default the fixed 2380.
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			// Throwaway data: fsync dominates etcd latency on a busy disk.
			"--unsafe-no-fsync=true",
		}
		began := time.Now()
		p, err := startProcess("etcd", filepath.Join(c.binDir, "etcd"), args, c.logDir())
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		c.etcd = p
		c.mu.Unlock()
		err = waitFor(ctx, "etcd health", readyTimeout, p, []*process{p}, func(ctx context.Context) (bool, error) {
			return etcdHealthy(ctx, clientURL)
		})
		if err == nil {
			c.logf("etcd ready on %s (pid %d) in %s", clientURL, p.cmd.Process.Pid, since(began))
			return clientURL, nil
		}
		if attempt < portAttempts && p.addrInUse() {
			_ = p.stop(stopGrace)
			_ = os.RemoveAll(dataDir)
			continue
		}
		return "", err
	}
}

func etcdHealthy(ctx context.Context, clientURL string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return false, fmt.Errorf("etcd /health: %d %s", resp.StatusCode, body)
	}
	return true, nil
}

// startAPIServer starts kube-apiserver, writes the admin kubeconfig and sets
// Config and Client.
func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string, pki *pkiFiles) error {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return err
		}
		args := []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", port),
			// 1.37 rejects a loopback advertise address unless the apiserver
			// stops publishing itself as the endpoint of the kubernetes Service.
			"--endpoint-reconciler-type=none",
			"--cert-dir=" + c.pkiDir(),
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
			"--client-ca-file=" + pki.caFile,
			"--service-account-key-file=" + pki.saPub,
			"--service-account-signing-key-file=" + pki.saKey,
			"--service-account-issuer=" + serviceAccountIssuer,
			"--service-cluster-ip-range=" + serviceClusterIPRange,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			"--profiling=false",
			"--shutdown-watch-termination-grace-period=2s",
		}
		server := fmt.Sprintf("https://127.0.0.1:%d", port)
		c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
		if err := writeKubeconfig(c.Kubeconfig, server, pki.ca.CertPEM, pki.adminCert, pki.adminKey); err != nil {
			return err
		}
		c.Config = restConfig(server, pki.ca.CertPEM, pki.adminCert, pki.adminKey)
		if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
			return err
		}
		began := time.Now()
		p, err := startProcess("kube-apiserver", filepath.Join(c.binDir, "kube-apiserver"), args, c.logDir())
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.apiserver, c.apiserverArgs = p, args
		c.mu.Unlock()
		err = c.waitAPIServer(ctx, p)
		if err == nil {
			c.logf("kube-apiserver ready on %s (pid %d) in %s", server, p.cmd.Process.Pid, since(began))
			return nil
		}
		if attempt < portAttempts && p.addrInUse() {
			_ = p.stop(stopGrace)
			continue
		}
		return err
	}
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags and port, then waits until it is ready. Clients reconnect on their
// own; watches see an error and must re-list, as with a real restart.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("cluster: RestartAPIServer after Stop")
	}
	began := time.Now()
	if err := c.apiserver.stop(stopGrace); err != nil {
		return err
	}
	p, err := startProcess("kube-apiserver", filepath.Join(c.binDir, "kube-apiserver"), c.apiserverArgs, c.logDir())
	if err != nil {
		return err
	}
	c.apiserver = p
	if err := c.waitAPIServer(ctx, p); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	c.logf("kube-apiserver restarted (pid %d) in %s", p.cmd.Process.Pid, since(began))
	return nil
}

// waitAPIServer waits for /readyz and for the default namespace, which the
// apiserver creates shortly after it reports ready.
func (c *Cluster) waitAPIServer(ctx context.Context, p *process) error {
	watch := []*process{c.etcd, p}
	err := waitFor(ctx, "kube-apiserver /readyz", readyTimeout, p, watch, func(ctx context.Context) (bool, error) {
		_, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, `namespace "default"`, readyTimeout, p, watch, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(10 * time.Millisecond)
}
