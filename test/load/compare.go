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
	router string
	// baseline is another router binary measured beside the router in
	// workload granularity: an A/B of two builds in one run.
	baseline    string
	shapes      string
	rounds      int
	duration    time.Duration
	slices      int
	warmup      time.Duration
	rate        int
	concurrency int
	conns       int
	maxRequests int
	bodies      int
	procs       int
	// sustain and window are the sustained pod-granularity run's length
	// and the windows it is cut into.
	sustain, window time.Duration
	md              string
}

func (c *compareConfig) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.router, "router", "bin/canary-router", "canary-router binary (make build)")
	fs.StringVar(&c.baseline, "baseline", "", "another canary-router binary to measure beside the router in workload granularity, for an A/B of two builds in one run")
	fs.StringVar(&c.shapes, "shapes", "4KB,6.5KB,64KB", "pod shapes, comma-separated")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds of a saturation and a fixed-rate phase per server")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "length of each server's phase in a round")
	fs.IntVar(&c.slices, "slices", 4, "turns each phase is cut into, the servers alternating")
	fs.DurationVar(&c.warmup, "warmup", 300*time.Millisecond, "unmeasured saturation before each server's phases")
	fs.IntVar(&c.rate, "rate", 500, "requests a second in the fixed-rate phase")
	fs.IntVar(&c.concurrency, "concurrency", 64, "requests in flight in the saturation phase")
	fs.IntVar(&c.conns, "conns", 4, "HTTP/2 connections the requests are spread over")
	fs.IntVar(&c.maxRequests, "max-requests", 200000, "bound on the requests of one phase")
	fs.IntVar(&c.bodies, "bodies", 64, "distinct pods per shape")
	fs.IntVar(&c.procs, "gomaxprocs", 0, "GOMAXPROCS of the load generator (0: leave as is)")
	fs.DurationVar(&c.sustain, "sustain", time.Minute, "sustained saturation of pod granularity's worst case (0: none)")
	fs.DurationVar(&c.window, "window", 10*time.Second, "windows the sustained run is cut into")
	fs.StringVar(&c.md, "md", "", "also write the summary as Markdown to this file")
}

// shapesConfig is the flags of a command that sends pods of podgen
// shapes.
type shapesConfig interface {
	bind(fs *flag.FlagSet)
	validate() ([]podgen.Shape, error)
}

// parseConfig parses args into cfg, the flags of command name, and
// validates them; a flag that does not parse is errUsage.
func parseConfig(name string, cfg shapesConfig, args []string, stderr io.Writer) ([]podgen.Shape, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs)
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	return cfg.validate()
}

// parseShapes reads the --shapes flag, a comma-separated list of
// podgen shape names, with an error for each unknown name.
func parseShapes(list string) ([]podgen.Shape, []error) {
	var errs []error
	var shapes []podgen.Shape
	for _, n := range strings.Split(list, ",") {
		s, ok := podgen.ShapeByName(strings.TrimSpace(n))
		if !ok {
			errs = append(errs, fmt.Errorf("--shapes: unknown shape %q", n))
		}
		shapes = append(shapes, s)
	}
	return shapes, errs
}

func (c *compareConfig) validate() ([]podgen.Shape, error) {
	shapes, errs := parseShapes(c.shapes)
	if c.rounds < 1 || c.rounds > 50 {
		errs = append(errs, errors.New("--rounds: must be between 1 and 50"))
	}
	if c.duration <= 0 || c.duration > time.Minute {
		errs = append(errs, errors.New("--duration: must be positive and at most 1m"))
	}
	if c.slices < 1 || c.duration/time.Duration(max(c.slices, 1)) < 100*time.Millisecond {
		errs = append(errs, errors.New("--slices: must be positive and leave at least 100ms per slice"))
	}
	if c.sustain < 0 || c.sustain > 10*time.Minute || c.window <= 0 || (c.sustain > 0 && c.sustain < 2*c.window) {
		errs = append(errs, errors.New("--sustain: 0 or at least two --window, at most 10m"))
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
	shapes, err := parseConfig("compare", &cfg, args, stderr)
	if err != nil {
		return err
	}
	if cfg.procs > 0 {
		runtime.GOMAXPROCS(cfg.procs)
	}
	e, err := startBench(ctx, stderr, cfg.router, false)
	if err != nil {
		return err
	}
	defer e.stop()
	router, fl := e.router, e.floor
	targets := []*target{
		{name: "router", url: router.url() + "?timeout=10s", echoUID: true, cpu: router.cpuTime},
		{name: "floor", url: fl.url() + "?timeout=10s", cpu: fl.cpuTime},
	}
	fmt.Fprintf(stdout, "compare: %d rounds x %v per server and phase in %d alternating slices, saturation at %d in flight over %d HTTP/2 connections, fixed rate %d/s; load generator GOMAXPROCS=%d\n",
		cfg.rounds, cfg.duration, cfg.slices, cfg.concurrency, cfg.conns, cfg.rate, runtime.GOMAXPROCS(0))
	var results []result
	for _, s := range shapes {
		rs, err := runShape(ctx, &cfg, e.env, targets, newWorkload(s, cfg.bodies), stdout)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	gran, err := e.compareGranularities(ctx, &cfg, targets[0], targets[1], stdout)
	if err != nil {
		return err
	}
	sum := summarize(results, shapes)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, sum.text()+gran.text())
	if cfg.md != "" {
		cmd := "canary-router-load compare " + strings.Join(args, " ")
		if err := os.WriteFile(cfg.md, []byte(sum.markdown(cmd)+gran.markdown()), 0o644); err != nil {
			return err
		}
	}
	return errors.Join(sum.failed(), gran.failed())
}

// runShape measures one pod shape: after a warm-up of each server, rounds
// of a saturation phase and a fixed-rate phase. Within a phase the two
// servers take turns in short slices (the first one alternating from
// round to round), so that whatever else the machine is doing falls on
// both alike; each server's slices add up to its phase.
func runShape(ctx context.Context, cfg *compareConfig, e *env, targets []*target, w *workload, stdout io.Writer) ([]result, error) {
	clients := map[*target]*client{}
	for _, t := range targets {
		c := newClient(e.roots, cfg.conns)
		defer c.close()
		clients[t] = c
		if _, err := c.saturate(ctx, t, w, cfg.concurrency, cfg.warmup, cfg.maxRequests); err != nil {
			return nil, err
		}
	}
	slice := cfg.duration / time.Duration(cfg.slices)
	modes := []struct {
		name string
		run  func(*client, *target) (*phase, error)
	}{
		{"saturation", func(c *client, t *target) (*phase, error) {
			return c.saturate(ctx, t, w, cfg.concurrency, slice, cfg.maxRequests)
		}},
		{"fixed-rate", func(c *client, t *target) (*phase, error) {
			return c.fixedRate(ctx, t, w, cfg.rate, slice, 4*cfg.concurrency)
		}},
	}
	var results []result
	for round := 1; round <= cfg.rounds; round++ {
		order := targets
		if round%2 == 0 {
			order = []*target{targets[1], targets[0]}
		}
		for _, m := range modes {
			total := map[*target]*phase{}
			for range cfg.slices {
				for _, t := range order {
					p, err := m.run(clients[t], t)
					if err != nil {
						return nil, err
					}
					total[t] = total[t].merge(p)
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			for _, t := range targets {
				fmt.Fprintf(stdout, "  %-6s round %d %-10s %-6s %s\n", w.shape.Name, round, m.name, t.name, line(total[t]))
				results = append(results, result{shape: w.shape.Name, mode: m.name, server: t.name, round: round, p: total[t]})
			}
		}
	}
	return results, nil
}

func line(p *phase) string {
	s := fmt.Sprintf("%8.0f req/s  p50 %-8v p99 %-8v p99.9 %-8v cpu/req %-8v load generator cpu/req %v",
		p.rps(), round(p.percentile(0.50)), round(p.percentile(0.99)), round(p.percentile(0.999)), round(p.cpuPerRequest()), round(p.genPerRequest()))
	if p.failures > 0 || p.lost > 0 {
		s += fmt.Sprintf("  FAILED %d, NO RESPONSE %d: %v", p.failures, p.lost, p.failure)
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
