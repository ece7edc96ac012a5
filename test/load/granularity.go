package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/podgen"
)

// The granularity part of compare: 4 KB pods at saturation against a
// router in each granularity, the floor between them, and a sustained run
// of pod granularity's worst case. Pods are never created (nothing but
// the load tool calls the webhooks), so in pod granularity every
// admission leaves a reservation for 30 s: what a canary whose pods are
// refused further down the webhook chain, or a scale-up of thousands of
// replicas, does to the router. Issue 14 found placement slowing down
// with that backlog; these phases are what would have shown it.

// manyUnits is how many ReplicaSets the many-units workload spreads its
// pods over.
const manyUnits = 10_000

// policyIn is loadPolicy with another granularity: the same targets and
// weights, so only the unit of routing differs.
func policyIn(granularity string) string {
	return strings.Replace(loadPolicy, "granularity: workload", "granularity: "+granularity, 1)
}

// startPolicyRouter runs one more router on the control plane, under
// policy. The first router's webhook registration serves for all: the
// load tool calls each router directly.
func (e *env) startPolicyRouter(ctx context.Context, bin, name, policy string) (*server, error) {
	path := filepath.Join(e.dir, name+"-policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
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
	srv, err := e.start(name, port, bin, "serve", "--policy-file", path,
		"--cert-mode", "external", "--cert-dir", e.certDir, "--kubeconfig", e.cluster.Kubeconfig,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", health), "--namespace", routerNamespace)
	if err != nil {
		return nil, err
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

// routedNamespace is where the namespace-granularity router's pods live:
// a namespace it has routed, labelled istio.io/rev, as its namespace
// webhook leaves one (the router refuses a pod in an opted-in namespace
// it has not routed yet: no injector would match it).
const nsGranularityNamespace = "shop-routed"

// createRoutedNamespace creates nsGranularityNamespace as the router in
// namespace granularity would have left it.
func (e *env) createRoutedNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsGranularityNamespace, Labels: map[string]string{
		routerLabel: "enabled", "istio.io/rev": "stable"}}}
	_, err := e.cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	return err
}

// namespaceWorkload is n requests for pods of n ReplicaSets in the routed
// namespace.
func namespaceWorkload(s podgen.Shape, n int) *workload {
	w := &workload{shape: s}
	for i := range n {
		pod := podgen.Pod(s, i)
		pod.Namespace = nsGranularityNamespace
		uid := fmt.Sprintf("load-ns-%08d", i)
		w.bodies = append(w.bodies, podgen.Review(pod, uid))
		w.uids = append(w.uids, uid)
	}
	return w
}

// oneUnitWorkload is n requests for pods of a single ReplicaSet, each with
// its own UID: the worst case for pod granularity's reservations.
func oneUnitWorkload(s podgen.Shape, n int) *workload {
	w := &workload{shape: s}
	pod := podgen.Pod(s, 0)
	for i := range n {
		uid := fmt.Sprintf("load-one-unit-%08d", i)
		w.bodies = append(w.bodies, podgen.Review(pod, uid))
		w.uids = append(w.uids, uid)
	}
	return w
}

// granTarget is a server with the requests it is sent.
type granTarget struct {
	t *target
	w *workload
	// vsFloor and vsWorkload are the throughput ratios it must reach,
	// against the floor and against workload granularity (0: none).
	vsFloor, vsWorkload float64
}

// Names of the granularity targets, as the summary shows them.
const (
	granFloor     = "floor"
	granWorkload  = "workload"
	granNamespace = "namespace"
	granPodOne    = "pod, 1 unit"
	granPodMany   = "pod, 10k units"
	granBaseline  = "baseline"
)

// compareGranularities starts a router in namespace and one in pod
// granularity beside workload (the compare router) and the floor, and
// measures them at saturation in cfg.rounds rounds of interleaved slices,
// then the sustained pod-granularity run.
func (e *env) compareGranularities(ctx context.Context, cfg *compareConfig, workloadRouter, floor *target, stdout io.Writer) (*granSummary, error) {
	if err := e.createRoutedNamespace(ctx); err != nil {
		return nil, err
	}
	nsRouter, err := e.startPolicyRouter(ctx, cfg.router, "router-namespace", policyIn("namespace"))
	defer nsRouter.stop()
	if err != nil {
		return nil, err
	}
	podRouter, err := e.startPolicyRouter(ctx, cfg.router, "router-pod", policyIn("pod"))
	defer podRouter.stop()
	if err != nil {
		return nil, err
	}
	podTarget := &target{name: "router-pod", url: podRouter.url() + "?timeout=10s", echoUID: true, cpu: podRouter.cpuTime}
	spread := newWorkload(podgen.Small, cfg.bodies)
	targets := []granTarget{
		{t: floor, w: spread},
		{t: workloadRouter, w: spread, vsFloor: 0.85},
		{t: &target{name: granNamespace, url: nsRouter.url() + "?timeout=10s", echoUID: true, unrouted: true, cpu: nsRouter.cpuTime},
			w: namespaceWorkload(podgen.Small, cfg.bodies), vsFloor: 0.85},
		{t: podTarget, w: oneUnitWorkload(podgen.Small, cfg.bodies), vsFloor: 0.85, vsWorkload: 0.95},
		{t: podTarget, w: newWorkload(podgen.Small, manyUnits), vsFloor: 0.85, vsWorkload: 0.95},
	}
	names := []string{granFloor, granWorkload, granNamespace, granPodOne, granPodMany}
	if cfg.baseline != "" {
		base, err := e.startPolicyRouter(ctx, cfg.baseline, "router-baseline", policyIn("workload"))
		defer base.stop()
		if err != nil {
			return nil, err
		}
		targets = append(targets, granTarget{t: &target{name: "router-baseline", url: base.url() + "?timeout=10s", echoUID: true, cpu: base.cpuTime}, w: spread})
		names = append(names, granBaseline)
	}
	fmt.Fprintf(stdout, "granularities: 4KB saturation, %d rounds, %s\n", cfg.rounds, strings.Join(names, " / "))
	sum := &granSummary{names: names, targets: targets}
	c := newClient(e.roots, cfg.conns)
	defer c.close()
	for _, g := range targets {
		if _, err := c.saturate(ctx, g.t, g.w, cfg.concurrency, cfg.warmup, cfg.maxRequests); err != nil {
			return nil, err
		}
	}
	slice := cfg.duration / time.Duration(cfg.slices)
	for round := 1; round <= cfg.rounds; round++ {
		total := make([]*phase, len(targets))
		for range cfg.slices {
			// Rotate who goes first, so none always follows another.
			for k := range targets {
				i := (round + k) % len(targets)
				p, err := c.saturate(ctx, targets[i].t, targets[i].w, cfg.concurrency, slice, cfg.maxRequests)
				if err != nil {
					return nil, err
				}
				total[i] = total[i].merge(p)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for i, p := range total {
			fmt.Fprintf(stdout, "  4KB    round %d %-15s %s\n", round, names[i], line(p))
		}
		sum.rounds = append(sum.rounds, total)
	}
	sum.sustained, err = sustain(ctx, cfg, c, podTarget, podRouter, oneUnitWorkload(podgen.Small, cfg.bodies), floor, spread, stdout)
	return sum, err
}

// sustainedRun is a long saturation run cut into windows.
type sustainedRun struct {
	windows []*phase
	// floors are the floor's throughput at the end of each window: what
	// the shared machine gave any server then.
	floors           []*phase
	window           time.Duration
	rssStart, rssEnd int64
}

// sustain saturates t for cfg.sustain in windows of cfg.window, reading
// the router's resident memory before and after. The last tenth of each
// window goes to the floor instead, so that a slowdown of the router can
// be told from one of the machine (other work on its two cores); the
// router's backlog of reservations still builds over the whole run.
func sustain(ctx context.Context, cfg *compareConfig, c *client, t *target, srv *server, w *workload, floor *target, fw *workload, stdout io.Writer) (*sustainedRun, error) {
	if cfg.sustain <= 0 {
		return nil, nil
	}
	run := &sustainedRun{window: cfg.window}
	var err error
	if run.rssStart, err = rss(srv.cmd.Process.Pid); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "sustained: pod granularity, one unit, pods never created, %v at saturation\n", cfg.sustain)
	probe := cfg.window / 10
	for elapsed := time.Duration(0); elapsed < cfg.sustain; elapsed += cfg.window {
		p, err := c.saturate(ctx, t, w, cfg.concurrency, cfg.window-probe, 1<<30)
		if err != nil {
			return nil, err
		}
		f, err := c.saturate(ctx, floor, fw, cfg.concurrency, probe, 1<<30)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "  window %3v-%-4v %s  floor %.0f req/s\n", elapsed, elapsed+cfg.window, line(p), f.rps())
		run.windows = append(run.windows, p)
		run.floors = append(run.floors, f)
	}
	run.rssEnd, err = rss(srv.cmd.Process.Pid)
	return run, err
}

// rss returns a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	kb, err := procStatusKB(pid, "VmRSS")
	return int64(kb[0]) << 10, err
}

// procStatusKB reads the given kB fields (VmRSS, VmHWM, ...) of a
// process's /proc status, in order.
func procStatusKB(pid int, keys ...string) ([]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return make([]float64, len(keys)), err
	}
	out, found := make([]float64, len(keys)), 0
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		if i := slices.Index(keys, k); i >= 0 {
			if out[i], err = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64); err != nil {
				return out, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
			}
			found++
		}
	}
	if found != len(keys) {
		return out, fmt.Errorf("/proc/%d/status lacks one of %v", pid, keys)
	}
	return out, nil
}
