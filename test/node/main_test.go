package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

// Image names the tests use: two tags of the router's image, so a rollout
// to a new tag is a real image change for the kubelet.
const (
	imageRepo = "ghcr.io/canary-router/canary-router"
	imageA    = imageRepo + ":e2e-a"
	imageB    = imageRepo + ":e2e-b"
)

// env is the suite's control plane and node, shared by its tests.
var env struct {
	c      *cluster.Cluster
	node   *Node
	router string // the canary-router binary in the image
	dir    string
	istio  *fakeistio.Injectors
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// flag.Parse happens in m.Run; testing.Short needs it first.
	if skip := skipReason(); skip != "" {
		fmt.Println("node: SKIP:", skip)
		return 0
	}
	if missing := cannotRun(); missing != "" {
		fmt.Printf("node: FAIL: this host cannot run the real-node tier: %s.\n"+
			"node: it needs root, and cgroup v1 with a pids hierarchy at %s (see README.md, Development).\n"+
			"node: to skip it on purpose, set %s to the reason, e.g. %s=\"CI runner without root\".\n",
			missing, cgroupMount, skipVariable, skipVariable)
		return 1
	}
	// One node per machine at a time: its addresses are fixed. A second
	// run (another checkout, another engineer) waits here for the first.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "canary-node.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		fmt.Println("node: lock:", err)
		return 1
	}
	reapStaleSuites()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	began := time.Now()
	if env.dir, err = os.MkdirTemp("", "canary-node-suite-"); err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(env.dir)
	owner := fmt.Sprintf("%d %s", os.Getpid(), startTime(os.Getpid()))
	if err := os.WriteFile(filepath.Join(env.dir, "owner"), []byte(owner), 0o600); err != nil {
		fmt.Println(err)
		return 1
	}
	images, err := buildImages(ctx, env.dir)
	if err != nil {
		fmt.Println("node: building images:", err)
		return 1
	}
	fmt.Printf("node: images built in %s\n", time.Since(began).Round(10*time.Millisecond))
	if env.c, err = cluster.Start(ctx, cluster.Options{Log: os.Stdout}); err != nil {
		fmt.Println(err)
		return 1
	}
	defer func() { _ = env.c.Stop() }()
	if env.node, err = Start(ctx, env.c, Options{BinDir: binDir(), Images: images, Log: os.Stdout}); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("node: set-up %s\n", time.Since(began).Round(10*time.Millisecond))
	code := m.Run()
	if err := env.node.Stop(); err != nil {
		fmt.Println("node: cleanup:", err)
		code = 1
	}
	if left := env.node.Leftovers(); len(left) > 0 {
		fmt.Println("node: cleanup left:", strings.Join(left, ", "))
		code = 1
	}
	return code
}

// skipVariable, set to a reason, skips the tier on purpose: the one way
// a host that cannot run a node reports success.
const skipVariable = "CANARY_ROUTER_SKIP_NODE"

// skipReason says why the tier is skipped on request, or "": under -short
// (the unit tier, `make unit`), or with skipVariable set.
func skipReason() string {
	for _, a := range os.Args {
		if a == "-test.short=true" || a == "-test.short" {
			return "-short: the real-node tier needs root, containerd and the kubelet"
		}
	}
	if why := os.Getenv(skipVariable); why != "" {
		return skipVariable + "=" + strconv.Quote(why)
	}
	return ""
}

// cannotRun says why this host cannot run a real node, or "" if it can.
// That fails the suite: a CI that cannot run the node must not show green
// unless it says so (skipVariable). Missing packages or binaries are not
// checked here; they fail later, so a forgotten `make node-tools` never
// passes as green either.
func cannotRun() string {
	if os.Geteuid() != 0 {
		return "not root: a node needs network and mount namespaces, cgroups and iptables"
	}
	if _, err := os.Stat(filepath.Join(cgroupMount, "pids")); err != nil {
		return "no cgroup v1 pids hierarchy at " + cgroupMount + " (this harness drives the kubelet's cgroupfs driver on cgroup v1)"
	}
	return ""
}

func binDir() string {
	if d := os.Getenv(cluster.BinDirEnv); d != "" {
		return d
	}
	abs, _ := filepath.Abs(filepath.Join("..", "..", "_bin"))
	return abs
}

// buildImages builds the router binary and a pause binary, statically,
// and their image archives with test/tools/image, as `make image` does.
func buildImages(ctx context.Context, dir string) ([]string, error) {
	for _, tool := range []string{"containerd", "ctr", "runc", "unshare", "nsenter", "ip", "iptables", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", filepath.Join(binDir(), "kubelet")} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s missing: run `make node-tools` (test/tools/install-node.sh and make tools)", tool)
		}
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	imageDir := filepath.Join(root, "test", "tools", "image")
	env.router = os.Getenv("CANARY_ROUTER_TEST_BINARY")
	steps := [][]string{
		{imageDir, "go", "build", "-o", filepath.Join(dir, "image-tool"), "."},
		{imageDir, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "pause"), "./pause"},
	}
	if env.router == "" {
		env.router = filepath.Join(dir, "canary-router")
		steps = append(steps, []string{root, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=e2e", "-o", env.router, "./cmd/canary-router"})
	}
	tool := filepath.Join(dir, "image-tool")
	steps = append(steps,
		[]string{dir, tool, "-binary", filepath.Join(dir, "pause"), "-path", "/pause", "-user", "65535:65535", "-tag", SandboxImage, "-o", filepath.Join(dir, "pause.tar")},
	)
	archives := []string{filepath.Join(dir, "pause.tar")}
	for _, tag := range []string{imageA, imageB} {
		out := filepath.Join(dir, strings.TrimPrefix(tag, imageRepo+":")+".tar")
		steps = append(steps, []string{dir, tool, "-binary", env.router, "-path", "/canary-router", "-cmd", "serve",
			"-user", "65532:65532", "-port", "9443/tcp", "-port", "8081/tcp", "-tag", tag, "-o", out})
		archives = append(archives, out)
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[1], s[2:]...)
		cmd.Dir = s[0]
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(s[1:], " "), err, out)
		}
	}
	return archives, nil
}

// reapStaleSuites removes the image folders of suites whose test process
// died without cleaning up (reapStale does the same for their nodes).
func reapStaleSuites() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "canary-node-suite-*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue
		}
		var pid int
		var start string
		if _, err := fmt.Sscan(string(data), &pid, &start); err != nil || startTime(pid) == start {
			continue
		}
		_ = os.RemoveAll(d)
	}
}
