// Package node runs a real Kubernetes node next to the test control plane
// (test/cluster): containerd, runc and the CNI plugins from Debian, and a
// kubelet built from the control plane's pinned Kubernetes module, all in
// a network and mount namespace the harness creates (../shared/DESIGN.md
// section 7). Images come from archives imported with ctr; nothing is
// pulled. Stop removes every process, mount, cgroup, interface and folder
// Start made.
//
// Wiring, all on addresses the harness creates:
//
//	host namespace                          node namespace
//	kube-apiserver 127.0.0.1:<port>         containerd, kubelet (node IP 10.213.0.2)
//	proxy 10.213.0.1:<port> ---- veth ----  bridge crbr0 10.213.1.1/24, pods 10.213.1.x
//	route 10.213.1.0/24 via 10.213.0.2      DNAT 10.0.0.1:443 -> 10.213.0.1:<proxy port>
//
// kube-apiserver runs with --enable-aggregator-routing=true, so a
// webhook's Service resolves to its endpoints' pod IPs without kube-proxy.
//
// Found on the way (beyond DESIGN section 7): containerd and the kubelet
// must share one mount namespace, or the kubelet's Secret and token tmpfs
// mounts are invisible to the containers (so one `unshare --mount` runs
// both, not two `ip netns exec`, which each make their own); the CNI
// bridge's isGateway gives pods no default route, so host-local's routes
// must add it or pods cannot reach the DNAT for 10.0.0.1; and runc mirrors
// pod cgroups into the controller-less cgroup2 mount, which Stop removes
// too.
package node

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

//go:embed run.sh
var runScript []byte

// Name is the Node's name.
const Name = "canary-node-0"

// hostDirs are the host paths run.sh covers with a tmpfs; Stop removes
// the ones that did not exist before Start.
var hostDirs = []string{"/run/containerd", "/run/netns", "/var/lib/kubelet", "/var/lib/cni", "/var/log/containers"}

// Options configures Start.
type Options struct {
	// BinDir holds kubelet, kube-controller-manager and kube-scheduler.
	BinDir string
	// Images are image archives (test/tools/image) imported before the
	// kubelet starts; one must be SandboxImage.
	Images []string
	// Log receives progress lines (nil discards).
	Log io.Writer
}

// Node is a running node. Stop it when done.
type Node struct {
	// Dir holds configs, state and logs (Dir/logs).
	Dir string

	c          *cluster.Cluster
	o          Options
	id         string
	hostVeth   string
	cgroupRoot string
	madeDirs   []string
	runner     *exec.Cmd
	runnerDone chan struct{}
	procs      []*exec.Cmd // controller manager, scheduler
	proxy      *proxy
	stopOnce   sync.Once
}

// Start restarts the apiserver with aggregator routing, starts the
// controller manager and scheduler, then the node, and returns once the
// Node is Ready. ctx bounds the start only.
func Start(ctx context.Context, c *cluster.Cluster, o Options) (_ *Node, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	n := &Node{c: c, o: o, id: fmt.Sprintf("%d", os.Getpid()%100000), runnerDone: make(chan struct{})}
	// A node whose test process died (a -timeout panic) would hold the
	// addresses this one needs.
	reapStale(o.Log)
	n.hostVeth = "crh" + n.id
	n.cgroupRoot = "/canary-node-" + n.id
	if n.Dir, err = os.MkdirTemp("", "canary-node-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Stop()
			err = fmt.Errorf("start node: %w", err)
		}
	}()
	began := time.Now()
	if err := c.RestartAPIServerWithFlags(ctx, "--enable-aggregator-routing=true"); err != nil {
		return nil, err
	}
	if err := n.writeConfigs(); err != nil {
		return nil, err
	}
	if err := n.startControllers(); err != nil {
		return nil, err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return nil, err
	}
	for _, d := range hostDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			n.madeDirs = append(n.madeDirs, d)
		}
	}
	if err := n.startRunner(); err != nil {
		return nil, err
	}
	if err := n.saveState(); err != nil {
		return nil, err
	}
	if err := n.wireNetwork(); err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	n.logf("node %s Ready in %s (dir %s)", Name, time.Since(began).Round(10*time.Millisecond), n.Dir)
	return n, nil
}

func (n *Node) logf(format string, args ...any) {
	fmt.Fprintf(n.o.Log, "node: "+format+"\n", args...)
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }

func (n *Node) writeConfigs() error {
	for _, d := range []string{"logs", "pki", "cni", "kubelet", "pod-logs", "volume-plugins", "runc", "containerd"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	cert, key, err := n.c.CA.IssueClient("system:node:"+Name, []string{"system:nodes"})
	if err != nil {
		return err
	}
	// The controller manager and scheduler run in the host namespace and
	// use the admin kubeconfig; the kubelet dials the proxy by IP.
	cni, err := cniConfig(n.Dir)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"pki/ca.crt":             n.c.CA.CertPEM,
		"pki/node.crt":           cert,
		"pki/node.key":           key,
		"containerd.toml":        []byte(containerdConfig(n.Dir)),
		"cni/10-bridge.conflist": cni,
		"kubelet.yaml":           []byte(kubeletConfig(n.Dir, n.cgroupRoot, n.path("pki", "ca.crt"))),
		"kube-scheduler.yaml":    []byte(schedulerConfig(n.c.Kubeconfig)),
		"run.sh":                 runScript,
	}
	for name, data := range files {
		if err := os.WriteFile(n.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startRunner starts run.sh in new network and mount namespaces. It waits
// for net-ready, which wireNetwork writes.
func (n *Node) startRunner() error {
	args := []string{
		"--config=" + n.path("kubelet.yaml"),
		"--kubeconfig=" + n.path("kubelet.kubeconfig"),
		"--root-dir=" + n.path("kubelet"),
		"--cert-dir=" + n.path("pki"),
		"--node-ip=" + nodeIP,
		"--hostname-override=" + Name,
		"--v=1",
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "bash", n.path("run.sh"))
	cmd.Env = append(os.Environ(),
		"NODE_DIR="+n.Dir,
		"KUBELET="+filepath.Join(n.o.BinDir, "kubelet"),
		"IMAGES="+strings.Join(n.o.Images, " "),
		"KUBELET_ARGS="+strings.Join(args, " "))
	logf, err := os.Create(n.path("logs", "kubelet.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Stop signals the kubelet and containerd
	// together, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	n.runner = cmd
	go func() { _ = cmd.Wait(); close(n.runnerDone) }()
	n.logf("runner started (pid %d, containerd and kubelet inside)", cmd.Process.Pid)
	return nil
}

// wireNetwork connects the runner's network namespace to the host.
func (n *Node) wireNetwork() error {
	pid := fmt.Sprint(n.runner.Process.Pid)
	port, err := n.startProxy()
	if err != nil {
		return err
	}
	nodeVeth := "crn" + n.id
	host := [][]string{
		{"ip", "link", "add", n.hostVeth, "type", "veth", "peer", "name", nodeVeth},
		{"ip", "link", "set", nodeVeth, "netns", pid},
		{"ip", "addr", "add", hostIP + "/30", "dev", n.hostVeth},
		{"ip", "link", "set", n.hostVeth, "up"},
		{"ip", "route", "add", PodCIDR, "via", nodeIP, "dev", n.hostVeth},
	}
	in := func(args ...string) []string {
		return append([]string{"nsenter", "-t", pid, "-n"}, args...)
	}
	inside := [][]string{
		in("ip", "addr", "add", nodeIP+"/30", "dev", nodeVeth),
		in("ip", "link", "set", nodeVeth, "up"),
		in("sysctl", "-qw", "net.ipv4.ip_forward=1"),
		in("iptables", "-t", "nat", "-A", "PREROUTING", "-d", kubernetesServiceIP, "-p", "tcp", "--dport", "443",
			"-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", hostIP, port)),
	}
	for _, args := range append(host[:1], append(host[1:], inside...)...) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if err := n.proxy.listen(); err != nil {
		return err
	}
	kc := kubeconfig(fmt.Sprintf("https://%s:%d", hostIP, port), "kubernetes", n.path("pki", "ca.crt"), n.path("pki", "node.crt"), n.path("pki", "node.key"))
	if err := os.WriteFile(n.path("kubelet.kubeconfig"), []byte(kc), 0o600); err != nil {
		return err
	}
	return os.WriteFile(n.path("net-ready"), nil, 0o600)
}

func (n *Node) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var last error
	for {
		select {
		case <-n.runnerDone:
			return fmt.Errorf("the node runner exited: %s", tail(n.path("logs", "kubelet.log"), 30))
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready: %v\n%s", Name, last, tail(n.path("logs", "kubelet.log"), 30))
		case <-time.After(250 * time.Millisecond):
		}
		node, err := n.c.Client.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{})
		if err != nil {
			last = err
			continue
		}
		last = errors.New("not Ready")
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				untainted := true
				for _, t := range node.Spec.Taints {
					untainted = untainted && t.Key != corev1.TaintNodeNotReady
				}
				if untainted {
					return nil
				}
			}
			if cond.Type == corev1.NodeReady {
				last = fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
	}
}

// Ctr runs ctr against the node's containerd, inside its mount namespace
// (where containerd's shims and snapshots live).
func (n *Node) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"-t", fmt.Sprint(n.runner.Process.Pid), "-m", "-n", "ctr", "--address", n.path("containerd.sock"), "-n", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Images lists the image names containerd holds.
func (n *Node) Images() ([]string, error) {
	data, err := os.ReadFile(n.path("images"))
	return strings.Fields(string(data)), err
}

func tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
