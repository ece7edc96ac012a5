package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/podgen"
)

const (
	routedNamespace = "perf-routed"
	// routedNSNamespace is the router's namespace in namespace
	// granularity, as the router left it: routed to stable, so pods are
	// admitted unchanged and Istio injects by the namespace's label.
	routedNSNamespace = "perf-routed-namespace"
	floorNamespace    = "perf-floor"
	plainNamespace    = "perf-plain"
)

// apiserverConfig holds the apiserver command's flags.
type apiserverConfig struct {
	router        string
	granularities string
	pods          int
	rounds        int
	workers       int
	md            string
}

func apiserverRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg apiserverConfig
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.router, "router", "bin/canary-router", "canary-router binary (make build)")
	fs.StringVar(&cfg.granularities, "granularities", "workload,pod,namespace", "router granularities measured in turn, each against its own interleaved floor and no-webhook runs (namespace last: its router relabels the namespaces it manages)")
	fs.IntVar(&cfg.pods, "pods", 5400, "pods created in each namespace per granularity (1 to 10000)")
	fs.IntVar(&cfg.rounds, "rounds", 90, "batches per namespace, rotating which namespace goes first (a multiple of 3 gives each namespace each place equally often)")
	fs.IntVar(&cfg.workers, "workers", 16, "concurrent creates")
	fs.StringVar(&cfg.md, "md", "", "also write the summary as Markdown to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if cfg.pods < 1 || cfg.pods > 10000 || cfg.rounds < 1 || cfg.rounds > cfg.pods || cfg.workers < 1 {
		return errors.New("--pods must be 1 to 10000, --rounds 1 to --pods, --workers positive")
	}
	if _, err := os.Stat(cfg.router); err != nil {
		return fmt.Errorf("--router: %w (run make build)", err)
	}
	grans := strings.Split(cfg.granularities, ",")
	for _, g := range grans {
		if g != "workload" && g != "pod" && g != "namespace" {
			return fmt.Errorf("--granularities: unknown granularity %q (workload, pod, namespace)", g)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()

	e, err := startBench(ctx, stderr, cfg.router, true)
	if err != nil {
		return err
	}
	defer e.stop()
	fl := e.floor
	if err := e.registerWebhook(ctx, "floor-webhook", fl.port, floorLabel); err != nil {
		return err
	}
	apiPID, err := findPID("kube-apiserver", e.cluster.Dir)
	if err != nil {
		return err
	}
	restCfg := rest.CopyConfig(e.cluster.Config)
	// client-go throttles to 5 requests a second by default.
	restCfg.QPS, restCfg.Burst = 5000, 10000
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := setUpNamespaces(ctx, client); err != nil {
		return err
	}
	sum := podSummary{args: args}
	for gi, g := range grans {
		if g != "workload" || gi > 0 {
			e.router.stop()
			if e.router, err = e.startRouterWith(ctx, cfg.router, policyIn(g)); err != nil {
				return err
			}
		}
		res, err := createInTurn(ctx, client, cfg, g, []func() (time.Duration, error){
			func() (time.Duration, error) { return processCPU(apiPID) }, e.router.cpuTime, e.floor.cpuTime,
		}, stdout)
		if err != nil {
			return err
		}
		sum.runs = append(sum.runs, granularityRun{granularity: g, results: res})
	}
	fmt.Fprint(stdout, "\n"+sum.text())
	if cfg.md != "" {
		return os.WriteFile(cfg.md, []byte(sum.markdown()), 0o644)
	}
	return nil
}

// createInTurn creates cfg.pods pods in each namespace of
// perfNamespacesFor(g) in rounds, rotating which goes first, after a
// warm-up of every path (connections, caches); cpus read the apiserver's,
// the router's and the floor's CPU time.
func createInTurn(ctx context.Context, client kubernetes.Interface, cfg apiserverConfig, g string, cpus []func() (time.Duration, error), stdout io.Writer) ([]batch, error) {
	nss := perfNamespacesFor(g)
	for _, ns := range nss {
		if _, err := createPods(ctx, client, ns, 100, cfg.workers, 1_000_000, cpus); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "apiserver, router in %s granularity: %d pods per namespace in %d rounds, %d concurrent creates\n", g, cfg.pods, cfg.rounds, cfg.workers)
	res := make([]batch, len(nss))
	per := cfg.pods / cfg.rounds
	for r := 0; r < cfg.rounds; r++ {
		n := per
		if r == cfg.rounds-1 {
			n = cfg.pods - per*(cfg.rounds-1)
		}
		for k := range nss {
			i := (r + k) % len(nss)
			b, err := createPods(ctx, client, nss[i], n, cfg.workers, (r+1)*100_000, cpus)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(stdout, "  round %2d %-22s %4d pods in %-8v %6.1f pods/s p99 %-10v apiserver CPU/pod %v\n",
				r+1, nss[i].name, n, b.elapsed.Round(time.Millisecond), b.rate(), b.p99(), b.cpuPerPod(0))
			res[i].add(b)
		}
	}
	return res, nil
}

// perfNamespace is one way pods are created in the measurement.
type perfNamespace struct {
	name string
	// labels select the namespace for a webhook (none for no webhook).
	labels map[string]string
	// labelled says pods come back with istio.io/rev set by a webhook.
	labelled bool
	what     string
}

// perfNamespaces: the router's pod webhook (in workload or pod
// granularity), the router's in namespace granularity, the no-decode
// floor's (what any mutating webhook costs the apiserver), and no webhook.
var (
	routedPerf   = perfNamespace{routedNamespace, map[string]string{routerLabel: "enabled"}, true, "with the router's pod webhook"}
	routedNSPerf = perfNamespace{routedNSNamespace, map[string]string{routerLabel: "enabled", "istio.io/rev": "stable"}, false,
		"with the router's pod webhook, in a namespace it routed"}
	floorPerf      = perfNamespace{floorNamespace, map[string]string{floorLabel: "enabled"}, true, "with the floor webhook (canned patch, no decoding)"}
	plainPerf      = perfNamespace{plainNamespace, nil, false, "without a webhook (same apiserver, namespace not selected)"}
	perfNamespaces = []perfNamespace{routedPerf, routedNSPerf, floorPerf, plainPerf}
)

// perfNamespacesFor is what one granularity's run creates pods in: the
// router's namespace, the floor's and the plain one, in that order.
func perfNamespacesFor(g string) []perfNamespace {
	if g == "namespace" {
		return []perfNamespace{routedNSPerf, floorPerf, plainPerf}
	}
	return []perfNamespace{routedPerf, floorPerf, plainPerf}
}

// setUpNamespaces creates the namespaces, each with the pods'
// ServiceAccount and the default one (no controller manager creates them
// here), labelled for their webhook.
func setUpNamespaces(ctx context.Context, client kubernetes.Interface) error {
	for _, p := range perfNamespaces {
		if err := createNamespace(ctx, client, p.name, p.labels); err != nil {
			return err
		}
	}
	return nil
}

// createNamespace creates a namespace with labels and the ServiceAccounts
// the load's pods name ("default" and "web"): no controller manager runs
// to create them.
func createNamespace(ctx context.Context, client kubernetes.Interface, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	for _, sa := range []string{"default", "web"} {
		obj := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: name}}
		if _, err := client.CoreV1().ServiceAccounts(name).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// batch is the outcome of creating pods in one namespace.
type batch struct {
	elapsed time.Duration
	// rates are the pods a second of each batch added, in round order.
	rates     []float64
	latencies []time.Duration
	// cpu is the CPU time each measured process used meanwhile
	// (apiserver, router, floor).
	cpu []time.Duration
}

func (b *batch) add(o *batch) {
	b.rates = append(b.rates, o.rate())
	b.elapsed += o.elapsed
	b.latencies = append(b.latencies, o.latencies...)
	slices.Sort(b.latencies)
	if b.cpu == nil {
		b.cpu = make([]time.Duration, len(o.cpu))
	}
	for i, c := range o.cpu {
		b.cpu[i] += c
	}
}

// cpuPerPod is process i's CPU time per pod created.
func (b *batch) cpuPerPod(i int) time.Duration {
	if len(b.latencies) == 0 || i >= len(b.cpu) {
		return 0
	}
	return (b.cpu[i] / time.Duration(len(b.latencies))).Round(time.Microsecond)
}

func (b *batch) count() int         { return len(b.latencies) }
func (b *batch) rate() float64      { return float64(len(b.latencies)) / b.elapsed.Seconds() }
func (b *batch) p50() time.Duration { return b.at(0.50) }
func (b *batch) p99() time.Duration { return b.at(0.99) }

func (b *batch) at(q float64) time.Duration {
	if len(b.latencies) == 0 {
		return 0
	}
	return b.latencies[min(len(b.latencies)-1, int(q*float64(len(b.latencies))))].Round(10 * time.Microsecond)
}

// createPods creates n Deployment-shaped pods in p's namespace with
// workers concurrent creates and checks each one: pods must come back
// labelled istio.io/rev if and only if p says a webhook labels them. It
// reads the CPU time of each process in cpus before and after.
func createPods(ctx context.Context, client kubernetes.Interface, p perfNamespace, n, workers, seq int, cpus []func() (time.Duration, error)) (*batch, error) {
	ns, routed := p.name, p.labelled
	cpu0, err := readCPUs(cpus)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var firstErr error
	b := &batch{}
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				pod := podgen.Pod(podgen.Managed, seq+i)
				pod.Namespace, pod.ManagedFields = ns, nil
				t0 := time.Now()
				got, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				lat := time.Since(t0)
				if err == nil {
					if _, labelled := got.Labels["istio.io/rev"]; labelled != routed {
						err = fmt.Errorf("pod %s/%s: label istio.io/rev present=%v, want %v", ns, got.Name, labelled, routed)
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				b.latencies = append(b.latencies, lat)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	b.elapsed = time.Since(start)
	slices.Sort(b.latencies)
	cpu1, err := readCPUs(cpus)
	if err != nil {
		return nil, err
	}
	for i := range cpu1 {
		b.cpu = append(b.cpu, cpu1[i]-cpu0[i])
	}
	return b, firstErr
}

func readCPUs(cpus []func() (time.Duration, error)) ([]time.Duration, error) {
	out := make([]time.Duration, len(cpus))
	for i, f := range cpus {
		var err error
		if out[i], err = f(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
