package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/podgen"
)

// soakConfig holds the soak command's flags.
type soakConfig struct {
	router      string
	shapes      string
	duration    time.Duration
	warmup      time.Duration
	window      time.Duration
	sample      time.Duration
	idle        time.Duration
	rate        int
	conns       int
	bodies      int
	maxInFlight int
	jsonOut     string
	md          string
}

func (c *soakConfig) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.router, "router", "bin/canary-router", "canary-router binary (make build)")
	fs.StringVar(&c.shapes, "shapes", "4KB,6.5KB,64KB", "pod shapes, comma-separated; requests cycle through them")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "length of the measured run")
	fs.DurationVar(&c.warmup, "warmup", 10*time.Second, "load at the same rate before the start figures are taken")
	fs.DurationVar(&c.window, "window", time.Minute, "latency is reported per window of this length")
	fs.DurationVar(&c.sample, "sample", 5*time.Second, "how often the router's /metrics is scraped")
	fs.DurationVar(&c.idle, "idle", 5*time.Second, "quiet time after the load before the idle figures are taken")
	fs.IntVar(&c.rate, "rate", 300, "requests a second, open loop")
	fs.IntVar(&c.conns, "conns", 4, "HTTP/2 connections the requests are spread over")
	fs.IntVar(&c.bodies, "bodies", 64, "distinct pods per shape")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 512, "bound on requests in flight; a request that waits for a slot still counts its latency from its scheduled time")
	fs.StringVar(&c.jsonOut, "json", "", "also write the result as JSON to this file")
	fs.StringVar(&c.md, "md", "", "also write the result as Markdown to this file")
}

func (c *soakConfig) validate() ([]podgen.Shape, error) {
	shapes, errs := parseShapes(c.shapes)
	if c.duration <= 0 || c.duration > 2*time.Hour {
		errs = append(errs, errors.New("--duration: must be positive and at most 2h"))
	}
	if c.window <= 0 || c.window > c.duration || c.sample <= 0 || c.sample > c.window {
		errs = append(errs, errors.New("--window must be positive and at most --duration, --sample positive and at most --window"))
	}
	if c.warmup < 0 || c.idle < 0 {
		errs = append(errs, errors.New("--warmup and --idle must not be negative"))
	}
	if c.rate < 1 || c.rate > 10000 || c.conns < 1 || c.bodies < 1 || c.maxInFlight < 1 {
		errs = append(errs, errors.New("--rate (at most 10000), --conns, --bodies and --max-in-flight must be positive"))
	}
	if _, err := os.Stat(c.router); err != nil {
		errs = append(errs, fmt.Errorf("--router: %w (run make build)", err))
	}
	return shapes, errors.Join(errs...)
}

// soakRun is what a soak measured; it is also the JSON the command writes
// and test/soak reads.
type soakRun struct {
	Command        string       `json:"command"`
	Rate           int          `json:"rate"`
	DurationSec    float64      `json:"durationSeconds"`
	WindowSec      float64      `json:"windowSeconds"`
	WarmupRequests int          `json:"warmupRequests"`
	WarmupErrors   int          `json:"warmupErrors"`
	Requests       int          `json:"requests"`
	Errors         int          `json:"errors"`
	FirstErrors    []string     `json:"firstErrors,omitempty"`
	Windows        []soakWindow `json:"windows"`
	// Start is taken after the warm-up, End when the last request has
	// been answered, Idle after the quiet time that follows.
	Start      routerSample   `json:"start"`
	End        routerSample   `json:"end"`
	Idle       routerSample   `json:"idle"`
	Samples    []routerSample `json:"samples"`
	RouterCPU  float64        `json:"routerCPUSeconds"`
	RouterLog  string         `json:"routerLog"`
	P99Overall float64        `json:"p99OverallMs"`
}

func soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg soakConfig
	shapes, err := parseConfig("soak", &cfg, args, stderr)
	if err != nil {
		return err
	}
	e, err := startEnv(ctx, stderr)
	if err != nil {
		return err
	}
	defer e.stop()
	router, health, err := e.startSoakRouter(ctx, cfg.router)
	defer router.stop()
	if err != nil {
		return err
	}
	var loads []*workload
	for _, s := range shapes {
		loads = append(loads, newWorkload(s, cfg.bodies))
	}
	c := newClient(e.roots, cfg.conns)
	defer c.close()
	t := &target{name: "router", url: router.url() + "?timeout=5s", echoUID: true}
	metricsURL := "http://" + health + "/metrics"

	fmt.Fprintf(stdout, "soak: %d requests/s for %v (+%v warm-up) over %d HTTP/2 connections, shapes %s; router log %s\n",
		cfg.rate, cfg.duration, cfg.warmup, cfg.conns, cfg.shapes, router.log)
	warm := openLoop(ctx, c, t, loads, cfg.rate, cfg.warmup, cfg.warmup+1, cfg.maxInFlight)
	run := &soakRun{Command: "canary-router-load soak " + strings.Join(args, " "), Rate: cfg.rate,
		DurationSec: cfg.duration.Seconds(), WindowSec: cfg.window.Seconds(), RouterLog: router.log,
		WarmupRequests: warm.requests(), WarmupErrors: warm.errors()}
	if run.Start, err = scrapeRouter(metricsURL); err != nil {
		return err
	}
	cpu0, err := router.cpuTime()
	if err != nil {
		return err
	}
	sampler := startSampler(metricsURL, cfg.sample)
	began := time.Now()
	res := openLoop(ctx, c, t, loads, cfg.rate, cfg.duration, cfg.window, cfg.maxInFlight)
	run.Samples = sampler.stop(began)
	if run.End, err = scrapeRouter(metricsURL); err != nil {
		return err
	}
	cpu1, err := router.cpuTime()
	if err != nil {
		return err
	}
	run.RouterCPU = (cpu1 - cpu0).Seconds()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.idle):
	}
	c.close()
	if run.Idle, err = scrapeRouter(metricsURL); err != nil {
		return err
	}
	run.Requests, run.Errors, run.FirstErrors = res.requests(), res.errors(), res.firstErrors()
	run.Windows = res.windows(run.Samples)
	run.P99Overall = ms(res.overall(0.99))
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprint(stdout, run.text())
	if cfg.jsonOut != "" {
		data, _ := json.MarshalIndent(run, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	if cfg.md != "" {
		if err := os.WriteFile(cfg.md, []byte(run.markdown()), 0o644); err != nil {
			return err
		}
	}
	if run.Errors+run.WarmupErrors > 0 {
		return fmt.Errorf("%d of %d requests failed", run.Errors+run.WarmupErrors, run.Requests+run.WarmupRequests)
	}
	return nil
}

// startSoakRouter runs the router as startRouter does, on a health port
// the soak knows, so it can scrape /metrics.
func (e *env) startSoakRouter(ctx context.Context, bin string) (*server, string, error) {
	policy := filepath.Join(e.dir, "policy.yaml")
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(policy, []byte(loadPolicy), 0o644); err != nil {
		return nil, "", err
	}
	port, err := cluster.FreePort()
	if err != nil {
		return nil, "", err
	}
	hp, err := cluster.FreePort()
	if err != nil {
		return nil, "", err
	}
	health := "127.0.0.1:" + strconv.Itoa(hp)
	srv, err := e.start("soak-router", port, bin, "serve", "--policy-file", policy,
		"--cert-mode", "external", "--cert-dir", e.certDir, "--kubeconfig", e.cluster.Kubeconfig,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--health-addr", health, "--namespace", routerNamespace)
	if err != nil {
		return nil, "", err
	}
	return srv, health, srv.waitReady(ctx, func() bool {
		_, err := scrapeRouter("http://" + health + "/readyz")
		return err == nil
	})
}

// windowed collects latencies and failures per window of the run.
type windowed struct {
	mu      sync.Mutex
	width   time.Duration
	lat     [][]time.Duration // per window
	fails   []int
	first   []string
	all     []time.Duration
	elapsed time.Duration
}

func (w *windowed) record(offset, lat time.Duration, err error) {
	i := int(offset / w.width)
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.lat) <= i {
		w.lat = append(w.lat, nil)
		w.fails = append(w.fails, 0)
	}
	if err != nil {
		w.fails[i]++
		if len(w.first) < 10 {
			w.first = append(w.first, fmt.Sprintf("at %s: %v", offset.Round(time.Millisecond), err))
		}
		return
	}
	w.lat[i] = append(w.lat[i], lat)
	w.all = append(w.all, lat)
}

// openLoop sends rate requests a second for d, cycling through loads,
// each at its scheduled time whatever the server's state, with latency
// counted from that time (no coordinated omission).
func openLoop(ctx context.Context, c *client, t *target, loads []*workload, rate int, d, window time.Duration, maxInFlight int) *windowed {
	w := &windowed{width: window}
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		offset := time.Duration(i) * interval
		due := start.Add(offset)
		time.Sleep(time.Until(due))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			load := loads[i%len(loads)]
			err := c.call(t, load, i/len(loads))
			w.record(offset, time.Since(due), err)
		})
	}
	wg.Wait()
	w.elapsed = time.Since(start)
	return w
}
