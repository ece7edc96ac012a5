package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/test/cluster"
)

// replicaFigures is what one router replica cost.
type replicaFigures struct {
	// ready is start to /readyz passing (the pod view synced);
	// leading is start to the leader's controllers synced (leader only).
	ready, leading time.Duration
	// rssReady is the RSS when ready (the leader's: when its controllers
	// synced), rssSteady after the steady window, peak the high-water mark.
	rssReady, rssSteady, peak float64 // MiB
	// heapInuse and heapIdle (idle and not returned to the OS) at steady
	// state, from the Go runtime's metrics: what RSS is made of.
	heapInuse, heapIdle float64 // MiB
	// anonSteady is the anonymous part of rssSteady: the rest is the
	// binary's pages, which the kernel may drop under memory pressure.
	anonSteady float64 // MiB
	// start is the apiserver traffic of the replica's start-up.
	start apiDelta
}

// podViewSyncedLine is what a replica logs once its pod view's first
// list is in (routers built before it lack the line: -no-sync-log).
const podViewSyncedLine = "pod view synced"

// rolloutStartedLine is what the leader logs once the pod-health
// informer of a planned rollout has synced.
const rolloutStartedLine = "rollout controller started"

// leaderLines are the lines a leader logs once its controllers synced.
func leaderLines(rollout bool) []string {
	if rollout {
		return []string{leaderSyncedLine, rolloutStartedLine}
	}
	return []string{leaderSyncedLine}
}

// leaderSyncedLine is what the leader logs once its migration controller's
// informers (every pod and workload) have synced.
const leaderSyncedLine = "migration controller started"

// startReplica starts a router replica with the manifests' arguments and
// memory limit (external certificates stand in for self-managed ones:
// there is no Service to name), waits until it is ready and, for the
// leader, until its controllers synced, and records the figures.
func startReplica(ctx context.Context, e *env, bin, name, audit string, client kubernetes.Interface, f *replicaFigures, leads, syncLog, rollout bool) (*server, error) {
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	port, health := ports[0], ports[1]
	before, err := scrapeAPIServer(ctx, client)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(e.dir, name+".kubeconfig")
	if err := e.cluster.WriteUserKubeconfig(kubeconfig, name, []string{"system:masters", routerGroup}); err != nil {
		return nil, err
	}
	began := time.Now()
	srv, err := e.startWithEnv(name, port, []string{"POD_NAME=" + name, "GOMEMLIMIT=" + strconv.Itoa(manifestMemoryLimit)}, bin,
		"serve", "--cert-mode=external", "--cert-dir", e.certDir, "--kubeconfig", kubeconfig,
		"--policy-configmap=canary-router-policy", "--istio-namespace=istio-system", "--namespace", routerNamespace,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--health-addr", fmt.Sprintf("127.0.0.1:%d", health),
		"--log-format=json", "--warn-restart-share=0.25")
	if err != nil {
		return nil, err
	}
	srv.health = health
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	for {
		if resp, err := http.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(began) > 5*time.Minute || ctx.Err() != nil {
			log, _ := os.ReadFile(srv.log)
			return srv, fmt.Errorf("%s not ready after %s; log tail:\n%s", name, time.Since(began).Round(time.Second), tail(string(log), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.ready = time.Since(began)
	// /readyz also passes once the pod view's sync grace (30 s) is over:
	// the view's own log line says when its first list was in.
	if syncLog {
		if err := waitLog(ctx, srv.log, podViewSyncedLine, 5*time.Minute); err != nil {
			return srv, fmt.Errorf("%s: %w", name, err)
		}
		f.ready = time.Since(began)
	}
	if leads {
		for _, line := range leaderLines(rollout) {
			if err := waitLog(ctx, srv.log, line, 5*time.Minute); err != nil {
				return srv, fmt.Errorf("%s: %w", name, err)
			}
		}
		f.leading = time.Since(began)
	}
	if f.rssReady, _, err = memoryOf(srv.cmd.Process.Pid); err != nil {
		return srv, err
	}
	// Let the start-up's last requests land before the second scrape.
	time.Sleep(2 * time.Second)
	after, err := scrapeAPIServer(ctx, client)
	if err != nil {
		return srv, err
	}
	f.start = after.since(before)
	events, err := readAudit(audit)
	if err != nil {
		return srv, err
	}
	f.start.countRequests(events, []string{name}, began, time.Now())
	return srv, nil
}

// waitLog waits until the file at path holds a line containing want.
func waitLog(ctx context.Context, path, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), want) {
					f.Close()
					return nil
				}
			}
			f.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no %q in %s after %s", want, path, timeout)
}

// goHeap reads the router's Go heap from its /metrics: bytes in use, and
// idle but not yet returned to the OS, in MiB.
func goHeap(ctx context.Context, port int) (inuse, idle float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("router /metrics: %w", err)
	}
	gauge := func(name string) float64 {
		for _, m := range families[name].GetMetric() {
			return m.GetGauge().GetValue()
		}
		return 0
	}
	const mib = 1 << 20
	return gauge("go_memstats_heap_inuse_bytes") / mib,
		(gauge("go_memstats_heap_idle_bytes") - gauge("go_memstats_heap_released_bytes")) / mib, nil
}

// memoryOf reads a process's resident set and its high-water mark, in MiB.
func memoryOf(pid int) (now, peak float64, err error) {
	kb, err := procStatusKB(pid, "VmRSS", "VmHWM")
	return kb[0] / 1024, kb[1] / 1024, err
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
