// Package cluster starts a real Kubernetes control plane on loopback for
// end-to-end, demo, load and fault tests: etcd and kube-apiserver, and
// optionally kube-controller-manager, kube-scheduler and kwok with one fake
// Node so Deployments roll out and their pods turn Ready without a kubelet.
//
// Every component listens on 127.0.0.1 on a random port, so several
// clusters can run at once. The binaries come from `make tools`.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BinDirEnv names the environment variable that overrides the default
// binary folder.
const BinDirEnv = "CANARY_ROUTER_BIN_DIR"

const modulePath = "github.com/canary-router/canary-router"

// Options configures Start.
type Options struct {
	// BinDir is the folder with the binaries. Default: $CANARY_ROUTER_BIN_DIR,
	// else <repo root>/_bin, the repo root being the nearest parent of the
	// working directory whose go.mod declares this module.
	BinDir string
	// Dir is the working folder for data, certs, logs and the kubeconfig.
	// Default: a new temp dir, removed by Stop. A given Dir is kept after
	// Stop, but Start wipes what an earlier cluster left in it, since etcd
	// data signed with an old CA and service-account key is useless.
	Dir string
	// Workloads also starts kube-controller-manager, kube-scheduler and kwok
	// with one fake Node, so Deployments roll out and pods turn Ready.
	Workloads bool
	// Log receives one line per started component (nil discards). The
	// components' own output goes to files in Dir/logs.
	Log io.Writer
}

// Cluster is a running control plane. Stop it when done.
type Cluster struct {
	// Dir is the working folder; logs are in Dir/logs.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig with embedded certs.
	Kubeconfig string
	// Config is an admin (system:masters) client config.
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// CA is the cluster CA: it issued the apiserver serving cert and the
	// admin client cert, and the apiserver trusts client certs it signs.
	CA *CA

	binDir  string
	tempDir bool
	log     io.Writer

	mu            sync.Mutex // guards the process fields and stopped
	etcd          *process
	apiserver     *process
	apiserverArgs []string
	workloads     []*process
	stopped       bool
}

// Start starts the control plane and returns once the apiserver is ready
// and the default namespace exists; with Workloads, also once the fake Node
// is Ready and untainted and the default ServiceAccount exists in "default".
// ctx bounds the start-up only: the processes live until Stop.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	binDir, err := resolveBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(binDir, o.Workloads); err != nil {
		return nil, err
	}
	c := &Cluster{binDir: binDir, log: o.Log, Dir: o.Dir}
	if c.log == nil {
		c.log = io.Discard
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "canary-cluster-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	} else if err := c.wipeDir(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			err = fmt.Errorf("start cluster: %w", err)
		}
	}()
	for _, d := range []string{c.logDir(), c.pkiDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	began := time.Now()
	pki, err := writePKI(c.pkiDir())
	if err != nil {
		return nil, fmt.Errorf("cluster PKI: %w", err)
	}
	c.CA = pki.ca
	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx, etcdURL, pki); err != nil {
		return nil, err
	}
	if o.Workloads {
		if err := c.startWorkloads(ctx); err != nil {
			return nil, err
		}
	}
	c.logf("control plane ready in %s (dir %s)", time.Since(began).Round(10*time.Millisecond), c.Dir)
	return c, nil
}

// Stop stops every process (SIGTERM, then SIGKILL after a few seconds) in
// reverse start order and removes Dir if Start created it. It is safe to
// call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	procs := make([]*process, 0, len(c.workloads)+2)
	for i := len(c.workloads) - 1; i >= 0; i-- {
		procs = append(procs, c.workloads[i])
	}
	procs = append(procs, c.apiserver, c.etcd)
	for _, p := range procs {
		if p != nil {
			errs = append(errs, p.stop(stopGrace))
		}
	}
	if c.tempDir {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}

// Kubectl runs kubectl against the cluster and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	// A per-cluster cache dir keeps ~/.kube/cache from collecting one
	// discovery cache per random port.
	global := []string{"--kubeconfig=" + c.Kubeconfig, "--cache-dir=" + filepath.Join(c.Dir, "kubectl-cache")}
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "kubectl"), append(global, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// wipeDir removes only the entries Start creates, so a mistyped Dir such
// as $HOME loses nothing else.
func (c *Cluster) wipeDir() error {
	for _, name := range []string{"etcd", "pki", "logs", "kubeconfig", "kube-scheduler.yaml", "kubectl-cache"} {
		if err := os.RemoveAll(filepath.Join(c.Dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) logDir() string { return filepath.Join(c.Dir, "logs") }
func (c *Cluster) pkiDir() string { return filepath.Join(c.Dir, "pki") }

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}

// trackWorkload records a started process so Stop finds it even if Start
// fails.
func (c *Cluster) trackWorkload(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workloads = append(c.workloads, p)
}

func resolveBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("cannot find the control plane binaries: set Options.BinDir or $%s (%w)", BinDirEnv, err)
		}
		dir = filepath.Join(root, "_bin")
	}
	return filepath.Abs(dir)
}

// repoRoot walks up from the working directory to the go.mod of this module;
// a nested module such as test/tools has its own go.mod and is skipped.
// RepoRoot is the checkout's root: the folder above the working directory
// whose go.mod declares the router's module. Tests and tools find files of
// the checkout through it, not through runtime.Caller, which under
// -trimpath (as every build here runs) names no folder.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func checkBinaries(binDir string, workloads bool) error {
	need := []string{"etcd", "kube-apiserver", "kubectl"}
	if workloads {
		need = append(need, "kube-controller-manager", "kube-scheduler", "kwok", kwokStagesFile)
	}
	var missing []string
	for _, name := range need {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control plane binaries missing from %s (%s): run `make tools` to build them", binDir, strings.Join(missing, ", "))
	}
	return nil
}
