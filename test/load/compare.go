package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/canary-router/canary-router/test/podgen"
)

// compareConfig holds the compare command's flags.
type compareConfig struct {
	router      string
	shapes      string
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	rate        int
	concurrency int
	conns       int
	maxRequests int
	bodies      int
	procs       int
	md          string
}

func (c *compareConfig) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.router, "router", "bin/canary-router", "canary-router binary (make build)")
	fs.StringVar(&c.shapes, "shapes", "4KB,6.5KB,64KB", "pod shapes, comma-separated")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds; each runs router and floor back to back, alternating which goes first")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "length of each measured phase")
	fs.DurationVar(&c.warmup, "warmup", 300*time.Millisecond, "unmeasured saturation before each server's phases")
	fs.IntVar(&c.rate, "rate", 500, "requests a second in the fixed-rate phase")
	fs.IntVar(&c.concurrency, "concurrency", 64, "requests in flight in the saturation phase")
	fs.IntVar(&c.conns, "conns", 4, "HTTP/2 connections the requests are spread over")
	fs.IntVar(&c.maxRequests, "max-requests", 200000, "bound on the requests of one phase")
	fs.IntVar(&c.bodies, "bodies", 64, "distinct pods per shape")
	fs.IntVar(&c.procs, "gomaxprocs", 0, "GOMAXPROCS of the load generator (0: leave as is)")
	fs.StringVar(&c.md, "md", "", "also write the summary as Markdown to this file")
}

func (c *compareConfig) validate() ([]podgen.Shape, error) {
	var errs []error
	var shapes []podgen.Shape
	for _, n := range strings.Split(c.shapes, ",") {
		s, ok := podgen.ShapeByName(strings.TrimSpace(n))
		if !ok {
			errs = append(errs, fmt.Errorf("--shapes: unknown shape %q", n))
		}
		shapes = append(shapes, s)
	}
	if c.rounds < 1 || c.rounds > 50 {
		errs = append(errs, errors.New("--rounds: must be between 1 and 50"))
	}
	if c.duration <= 0 || c.duration > time.Minute {
		errs = append(errs, errors.New("--duration: must be positive and at most 1m"))
	}
	if c.concurrency < 1 || c.conns < 1 || c.rate < 1 || c.bodies < 1 || c.maxRequests < 1 {
		errs = append(errs, errors.New("--concurrency, --conns, --rate, --bodies and --max-requests must be positive"))
	}
	if _, err := os.Stat(c.router); err != nil {
		errs = append(errs, fmt.Errorf("--router: %w (run make build)", err))
	}
	return shapes, errors.Join(errs...)
}

// result is one phase of one server in one round.
type result struct {
	shape, mode, server string
	round               int
	p                   *phase
}

func compare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg compareConfig
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	shapes, err := cfg.validate()
	if err != nil {
		return err
	}
	if cfg.procs > 0 {
		runtime.GOMAXPROCS(cfg.procs)
	}
	e, err := startEnv(ctx, stderr)
	if err != nil {
		return err
	}
	defer e.stop()
	router, err := e.startRouter(ctx, cfg.router)
	defer router.stop()
	if err != nil {
		return err
	}
	fl, err := e.startFloor(ctx)
	defer fl.stop()
	if err != nil {
		return err
	}
	targets := []*target{
		{name: "router", url: router.url() + "?timeout=10s", echoUID: true, cpu: router.cpuTime},
		{name: "floor", url: fl.url() + "?timeout=10s", cpu: fl.cpuTime},
	}
	fmt.Fprintf(stdout, "compare: %d rounds x %v per phase, saturation at %d in flight over %d HTTP/2 connections, fixed rate %d/s; load generator GOMAXPROCS=%d\n",
		cfg.rounds, cfg.duration, cfg.concurrency, cfg.conns, cfg.rate, runtime.GOMAXPROCS(0))
	var results []result
	for _, s := range shapes {
		w := newWorkload(s, cfg.bodies)
		for round := 1; round <= cfg.rounds; round++ {
			order := targets
			if round%2 == 0 {
				order = []*target{targets[1], targets[0]}
			}
			for _, t := range order {
				rs, err := runServer(ctx, &cfg, e, t, w, round)
				if err != nil {
					return err
				}
				for _, r := range rs {
					fmt.Fprintf(stdout, "  %-6s round %d %-10s %-6s %s\n", s.Name, round, r.mode, t.name, line(r.p))
				}
				results = append(results, rs...)
			}
		}
	}
	sum := summarize(results, shapes)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, sum.text())
	if cfg.md != "" {
		cmd := "canary-router-load compare " + strings.Join(args, " ")
		if err := os.WriteFile(cfg.md, []byte(sum.markdown(cmd)), 0o644); err != nil {
			return err
		}
	}
	return sum.failed()
}

// runServer runs the warm-up, saturation and fixed-rate phases of one
// server in one round.
func runServer(ctx context.Context, cfg *compareConfig, e *env, t *target, w *workload, round int) ([]result, error) {
	c := newClient(e.roots, cfg.conns)
	defer c.close()
	if _, err := c.saturate(ctx, t, w, cfg.concurrency, cfg.warmup, cfg.maxRequests); err != nil {
		return nil, err
	}
	sat, err := c.saturate(ctx, t, w, cfg.concurrency, cfg.duration, cfg.maxRequests)
	if err != nil {
		return nil, err
	}
	fixed, err := c.fixedRate(ctx, t, w, cfg.rate, cfg.duration, 4*cfg.concurrency)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []result{
		{shape: w.shape.Name, mode: "saturation", server: t.name, round: round, p: sat},
		{shape: w.shape.Name, mode: "fixed-rate", server: t.name, round: round, p: fixed},
	}, nil
}

func line(p *phase) string {
	s := fmt.Sprintf("%8.0f req/s  p50 %-8v p99 %-8v p99.9 %-8v cpu/req %v",
		p.rps(), round(p.percentile(0.50)), round(p.percentile(0.99)), round(p.percentile(0.999)), round(p.cpuPerRequest()))
	if p.failures > 0 {
		s += fmt.Sprintf("  FAILED %d: %v", p.failures, p.failure)
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
