package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/canary-router/canary-router/test/podgen"
)

// row is the medians over rounds of one shape and mode, per server, with
// the medians of the per-round ratios router/floor: ratios of phases run
// back to back are the figures of record on a shared, noisy machine.
type row struct {
	shape, mode     string
	rounds          int
	router, floor   stats
	rpsRatio        float64
	cpuRatio        float64
	p99Ratio        float64
	failures, lost  int
	firstFailure    error
	rpsGoal, cpuMax float64 // 0: no target
}

type stats struct {
	rps                 float64
	p50, p99, p999, cpu time.Duration
}

type summary struct{ rows []row }

func summarize(results []result, shapes []podgen.Shape) *summary {
	sum := &summary{}
	for _, s := range shapes {
		for _, mode := range []string{"saturation", "fixed-rate"} {
			r := row{shape: s.Name, mode: mode}
			byRound := map[int]map[string]*phase{}
			for _, res := range results {
				if res.shape != s.Name || res.mode != mode {
					continue
				}
				if byRound[res.round] == nil {
					byRound[res.round] = map[string]*phase{}
				}
				byRound[res.round][res.server] = res.p
				r.failures += res.p.failures
				r.lost += res.p.lost
				if r.firstFailure == nil && res.p.failure != nil {
					r.firstFailure = fmt.Errorf("%s: %w", res.server, res.p.failure)
				}
			}
			var rr, fr []*phase
			var rpsRatios, cpuRatios, p99Ratios []float64
			for _, m := range byRound {
				a, b := m["router"], m["floor"]
				if a == nil || b == nil {
					continue
				}
				rr, fr = append(rr, a), append(fr, b)
				rpsRatios = append(rpsRatios, a.rps()/b.rps())
				if b.cpuPerRequest() > 0 {
					cpuRatios = append(cpuRatios, float64(a.cpuPerRequest())/float64(b.cpuPerRequest()))
				}
				if b.percentile(0.99) > 0 {
					p99Ratios = append(p99Ratios, float64(a.percentile(0.99))/float64(b.percentile(0.99)))
				}
			}
			r.rounds = len(rr)
			r.router, r.floor = medianStats(rr), medianStats(fr)
			r.rpsRatio, r.cpuRatio, r.p99Ratio = median(rpsRatios), median(cpuRatios), median(p99Ratios)
			if mode == "saturation" {
				switch s.Name {
				case podgen.Small.Name:
					r.rpsGoal, r.cpuMax = 0.85, 1.5
				case podgen.Large.Name:
					r.rpsGoal = 0.6
				}
			}
			sum.rows = append(sum.rows, r)
		}
	}
	return sum
}

func medianStats(ps []*phase) stats {
	pick := func(f func(*phase) float64) float64 {
		xs := make([]float64, len(ps))
		for i, p := range ps {
			xs[i] = f(p)
		}
		return median(xs)
	}
	dur := func(f func(*phase) time.Duration) time.Duration {
		return time.Duration(pick(func(p *phase) float64 { return float64(f(p)) }))
	}
	return stats{
		rps:  pick((*phase).rps),
		p50:  dur(func(p *phase) time.Duration { return p.percentile(0.50) }),
		p99:  dur(func(p *phase) time.Duration { return p.percentile(0.99) }),
		p999: dur(func(p *phase) time.Duration { return p.percentile(0.999) }),
		cpu:  dur((*phase).cpuPerRequest),
	}
}

// verdict says whether the row meets its targets.
func (r *row) verdict() string {
	var parts []string
	if r.rpsGoal > 0 {
		parts = append(parts, check(r.rpsRatio >= r.rpsGoal, fmt.Sprintf("throughput >= %.2g x floor", r.rpsGoal)))
	}
	if r.cpuMax > 0 {
		parts = append(parts, check(r.cpuRatio <= r.cpuMax, fmt.Sprintf("CPU/req <= %.2g x floor", r.cpuMax)))
	}
	return strings.Join(parts, "; ")
}

func check(ok bool, what string) string {
	if ok {
		return "met: " + what
	}
	return "MISSED: " + what
}

func (s *summary) text() string {
	var b strings.Builder
	b.WriteString("medians over rounds (ratios: median of per-round router/floor)\n")
	for _, r := range s.rows {
		fmt.Fprintf(&b, "%-6s %-10s router %8.0f req/s p50 %-8v p99 %-8v p99.9 %-8v cpu/req %-8v\n",
			r.shape, r.mode, r.router.rps, round(r.router.p50), round(r.router.p99), round(r.router.p999), round(r.router.cpu))
		fmt.Fprintf(&b, "%-6s %-10s floor  %8.0f req/s p50 %-8v p99 %-8v p99.9 %-8v cpu/req %-8v\n",
			"", "", r.floor.rps, round(r.floor.p50), round(r.floor.p99), round(r.floor.p999), round(r.floor.cpu))
		fmt.Fprintf(&b, "%-6s %-10s ratio  throughput %.2f  cpu/req %.2f  p99 %.2f  %s\n", "", "", r.rpsRatio, r.cpuRatio, r.p99Ratio, r.verdict())
		if r.failures > 0 || r.lost > 0 {
			fmt.Fprintf(&b, "%-6s %-10s failed checks: %d, no response in time: %d; first: %v\n", "", "", r.failures, r.lost, r.firstFailure)
		}
	}
	return b.String()
}

func (s *summary) markdown(cmd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`\n\n", cmd)
	b.WriteString("| pod | load | server | req/s | p50 | p99 | p99.9 | server CPU/req | router/floor: throughput | CPU/req | p99 | target |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range s.rows {
		fmt.Fprintf(&b, "| %s | %s | router | %.0f | %v | %v | %v | %v | **%.2f** | **%.2f** | %.2f | %s |\n",
			r.shape, r.mode, r.router.rps, round(r.router.p50), round(r.router.p99), round(r.router.p999), round(r.router.cpu),
			r.rpsRatio, r.cpuRatio, r.p99Ratio, r.verdict())
		fmt.Fprintf(&b, "| | | floor | %.0f | %v | %v | %v | %v | | | | |\n",
			r.floor.rps, round(r.floor.p50), round(r.floor.p99), round(r.floor.p999), round(r.floor.cpu))
	}
	for _, r := range s.rows {
		if r.lost > 0 {
			fmt.Fprintf(&b, "\n%s %s: %d requests got no response within 10 s (the machine stalled during a round; the medians absorb it).\n", r.shape, r.mode, r.lost)
		}
	}
	return b.String()
}

// failed reports responses that failed their check. Requests that got no
// response in time (the machine stalled) do not fail the run: they are
// printed, and the medians over rounds absorb a disturbed round.
func (s *summary) failed() error {
	for _, r := range s.rows {
		if r.failures > 0 {
			return fmt.Errorf("%d responses failed their check (%s %s), first: %v", r.failures, r.shape, r.mode, r.firstFailure)
		}
	}
	return nil
}
