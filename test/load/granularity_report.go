package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// granSummary is what compareGranularities measured.
type granSummary struct {
	names   []string
	targets []granTarget
	// rounds holds, per round, each target's phase (index as targets).
	rounds    [][]*phase
	sustained *sustainedRun
}

// granRow is one target's medians over rounds, with the medians (and the
// range) of its per-round throughput ratios: against the floor (target 0)
// and against workload granularity (target 1).
type granRow struct {
	name                string
	rps                 float64
	p99, cpu            time.Duration
	vsFloor, vsWorkload float64
	floorLo, floorHi    float64
	goalFloor, goalWork float64
	failures, lost      int
	firstFailure        error
	cpuVsFloor          float64
}

func (s *granSummary) rows() []granRow {
	var out []granRow
	for i, g := range s.targets {
		r := granRow{name: s.names[i], goalFloor: g.vsFloor, goalWork: g.vsWorkload}
		var rps, p99, cpu, vf, vw, cf []float64
		for _, round := range s.rounds {
			p, floor, work := round[i], round[0], round[1]
			rps = append(rps, p.rps())
			p99 = append(p99, float64(p.percentile(0.99)))
			cpu = append(cpu, float64(p.cpuPerRequest()))
			vf = append(vf, p.rps()/floor.rps())
			vw = append(vw, p.rps()/work.rps())
			if floor.cpuPerRequest() > 0 {
				cf = append(cf, float64(p.cpuPerRequest())/float64(floor.cpuPerRequest()))
			}
			r.failures += p.failures
			r.lost += p.lost
			if r.firstFailure == nil {
				r.firstFailure = p.failure
			}
		}
		r.rps, r.p99, r.cpu = median(rps), time.Duration(median(p99)), time.Duration(median(cpu))
		r.vsFloor, r.vsWorkload, r.cpuVsFloor = median(vf), median(vw), median(cf)
		if len(vf) > 0 {
			r.floorLo, r.floorHi = slices.Min(vf), slices.Max(vf)
		}
		out = append(out, r)
	}
	return out
}

// verdict says whether the row meets issue 14's throughput targets.
func (r *granRow) verdict() string {
	var parts []string
	if r.goalFloor > 0 {
		parts = append(parts, check(r.vsFloor >= r.goalFloor, fmt.Sprintf("throughput >= %.2g x floor", r.goalFloor)))
	}
	if r.goalWork > 0 {
		parts = append(parts, check(r.vsWorkload >= r.goalWork, fmt.Sprintf(">= %.2g x workload granularity", r.goalWork)))
	}
	return strings.Join(parts, "; ")
}

// drift is the sustained run's figures: throughput of the last window
// over the first, and the router's resident memory growth.
func (r *sustainedRun) drift() (first, last, ratio float64, growth int64) {
	first, last = r.windows[0].rps(), r.windows[len(r.windows)-1].rps()
	return first, last, last / first, r.rssEnd - r.rssStart
}

// machineDrift is the same ratio for the floor, and the router's ratio
// with each window taken relative to the floor's: the drift that is the
// router's own.
func (r *sustainedRun) machineDrift() (floorRatio, relative float64) {
	n := len(r.windows) - 1
	floorRatio = r.floors[n].rps() / r.floors[0].rps()
	relative = (r.windows[n].rps() / r.floors[n].rps()) / (r.windows[0].rps() / r.floors[0].rps())
	return floorRatio, relative
}

func (r *sustainedRun) verdict() string {
	_, _, ratio, growth := r.drift()
	return check(ratio >= 0.9, "last window >= 0.9 x first") + "; " + check(growth < 50<<20, "RSS growth < 50 MB")
}

func (s *granSummary) text() string {
	var b strings.Builder
	b.WriteString("\ngranularities, 4KB saturation: medians over rounds (ratios: median of per-round ratios)\n")
	for _, r := range s.rows() {
		fmt.Fprintf(&b, "%-15s %8.0f req/s p99 %-8v cpu/req %-8v vs floor %.2f [%.2f-%.2f] vs workload %.2f  %s\n",
			r.name, r.rps, round(r.p99), round(r.cpu), r.vsFloor, r.floorLo, r.floorHi, r.vsWorkload, r.verdict())
		if r.failures > 0 || r.lost > 0 {
			fmt.Fprintf(&b, "%-15s failed checks: %d, no response in time: %d; first: %v\n", "", r.failures, r.lost, r.firstFailure)
		}
	}
	if r := s.sustained; r != nil {
		first, last, ratio, growth := r.drift()
		fl, rel := r.machineDrift()
		fmt.Fprintf(&b, "sustained pod granularity, 1 unit: first %v %.0f req/s, last %.0f req/s (%.2f; floor %.2f, relative to the floor %.2f), router RSS %s -> %s (%+.1f MiB)  %s\n",
			r.window, first, last, ratio, fl, rel, mib(float64(r.rssStart)), mib(float64(r.rssEnd)), float64(growth)/(1<<20), r.verdict())
	}
	return b.String()
}

func (s *granSummary) markdown() string {
	var b strings.Builder
	b.WriteString("\n#### Granularities: 4 KB pods at saturation\n\n")
	b.WriteString("Each router serves the same requests (pods are never created, so pod granularity's reservations pile up); " +
		"`pod, 1 unit` sends pods of a single ReplicaSet, the worst case; `pod, 10k units` spreads them over 10,000 ReplicaSets. " +
		"The servers take turns in slices as above; ratios are medians of per-round ratios, with their range.\n\n")
	b.WriteString("| server | req/s | p99 | server CPU/req | throughput vs floor [range] | vs workload | CPU/req vs floor | target |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range s.rows() {
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | **%.2f** [%.2f-%.2f] | %.2f | %.2f | %s |\n",
			r.name, r.rps, round(r.p99), round(r.cpu), r.vsFloor, r.floorLo, r.floorHi, r.vsWorkload, r.cpuVsFloor, r.verdict())
	}
	if r := s.sustained; r != nil {
		first, last, ratio, growth := r.drift()
		fmt.Fprintf(&b, "\n#### Sustained: pod granularity, 1 unit, pods never created, %v at saturation\n\n", r.window*time.Duration(len(r.windows)))
		b.WriteString("The last tenth of each window goes to the floor, whose throughput shows what the shared machine gave any server then.\n\n")
		b.WriteString("| window | router req/s | p99 | server CPU/req | floor req/s (last tenth) | router / floor |\n|---|--:|--:|--:|--:|--:|\n")
		for i, p := range r.windows {
			f := r.floors[i]
			fmt.Fprintf(&b, "| %v-%v | %.0f | %v | %v | %.0f | %.2f |\n", r.window*time.Duration(i), r.window*time.Duration(i+1),
				p.rps(), round(p.percentile(0.99)), round(p.cpuPerRequest()), f.rps(), p.rps()/f.rps())
		}
		fl, rel := r.machineDrift()
		fmt.Fprintf(&b, "\nLast window over first: **%.2f** (%.0f -> %.0f req/s; the floor's %.2f, the router's relative to the floor %.2f); router RSS %s -> %s, growth **%.1f MiB**. %s.\n",
			ratio, first, last, fl, rel, mib(float64(r.rssStart)), mib(float64(r.rssEnd)), float64(growth)/(1<<20), r.verdict())
	}
	return b.String()
}

// failed reports responses that failed their check.
func (s *granSummary) failed() error {
	for _, r := range s.rows() {
		if r.failures > 0 {
			return fmt.Errorf("%d responses failed their check (%s), first: %v", r.failures, r.name, r.firstFailure)
		}
	}
	if r := s.sustained; r != nil {
		for _, p := range r.windows {
			if p.failures > 0 {
				return fmt.Errorf("%d responses failed their check in the sustained run, first: %v", p.failures, p.failure)
			}
		}
	}
	return nil
}
