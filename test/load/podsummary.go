package main

import (
	"fmt"
	"strings"
)

// podSummary reports the pod-creation measurement: for each router
// granularity, one row per namespace of perfNamespacesFor, and the ratios
// the targets are about.
type podSummary struct {
	args []string
	runs []granularityRun
}

// granularityRun is one granularity's batches, indexed like
// perfNamespacesFor: the router's namespace, the floor's, the plain one.
type granularityRun struct {
	granularity string
	results     []batch
}

const (
	withRouter = iota
	withFloor
	withNone
)

// ratio is the median over rounds of a's throughput over b's in the
// same round: batches of one round run back to back, so a pause of the
// shared machine or of the apiserver (a compaction, a collection) moves
// one round's ratio, not the result, as it moves a ratio of totals.
func (g *granularityRun) ratio(a, b int) float64 {
	ra, rb := g.results[a].rates, g.results[b].rates
	var rs []float64
	for k := range min(len(ra), len(rb)) {
		rs = append(rs, ra[k]/rb[k])
	}
	return median(rs)
}

func (g *granularityRun) p99Ratio(a, b int) float64 {
	return float64(g.results[a].p99()) / float64(g.results[b].p99())
}

// verdict judges the router against the do-nothing floor webhook of the
// same apiserver and run (issue 14): any webhook costs the apiserver the
// same, so the ratio to no webhook at all is reported, not judged.
func (g *granularityRun) verdict() string {
	return check(g.ratio(withRouter, withFloor) >= 0.97, "throughput >= 0.97 x floor webhook")
}

func (s *podSummary) text() string {
	var b strings.Builder
	for _, g := range s.runs {
		fmt.Fprintf(&b, "router in %s granularity:\n", g.granularity)
		for i, ns := range perfNamespacesFor(g.granularity) {
			r := &g.results[i]
			fmt.Fprintf(&b, "  %-22s %6.1f pods/s  p50 %-9v p99 %-9v CPU/pod: apiserver %-8v router %-8v floor %v\n",
				ns.name, r.rate(), r.p50(), r.p99(), r.cpuPerPod(0), r.cpuPerPod(1), r.cpuPerPod(2))
		}
		fmt.Fprintf(&b, "  with router / with floor webhook: throughput %.3f (%s), p99 %.2f\n",
			g.ratio(withRouter, withFloor), g.verdict(), g.p99Ratio(withRouter, withFloor))
		fmt.Fprintf(&b, "  with router / without: throughput %.3f, p99 %.2f\n", g.ratio(withRouter, withNone), g.p99Ratio(withRouter, withNone))
		fmt.Fprintf(&b, "  with floor webhook / without: throughput %.3f, p99 %.2f\n", g.ratio(withFloor, withNone), g.p99Ratio(withFloor, withNone))
	}
	return b.String()
}

func (s *podSummary) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `canary-router-load apiserver %s`\n\n", strings.Join(s.args, " "))
	b.WriteString("| router granularity | pods created | pods/s | p50 create | p99 create | apiserver CPU/pod | router CPU/pod | floor CPU/pod |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, g := range s.runs {
		for i, ns := range perfNamespacesFor(g.granularity) {
			r := &g.results[i]
			fmt.Fprintf(&b, "| %s | %d %s | %.1f | %v | %v | %v | %v | %v |\n",
				g.granularity, r.count(), ns.what, r.rate(), r.p50(), r.p99(), r.cpuPerPod(0), r.cpuPerPod(1), r.cpuPerPod(2))
		}
	}
	b.WriteString("\n| router granularity | **with router / with floor webhook**: throughput | p99 | target | with router / without | with floor webhook / without |\n|---|--:|--:|---|--:|--:|\n")
	for _, g := range s.runs {
		fmt.Fprintf(&b, "| %s | **%.3f** | %.2f | %s | %.3f | %.3f |\n", g.granularity,
			g.ratio(withRouter, withFloor), g.p99Ratio(withRouter, withFloor), g.verdict(),
			g.ratio(withRouter, withNone), g.ratio(withFloor, withNone))
	}
	b.WriteString("\nEach granularity is its own run: the router restarted under that policy, its pods created in rounds interleaved with the floor's and the plain namespace's; ratios are medians of per-round ratios. " +
		"CPU per pod is each process's CPU time while that namespace's pods were created, divided by their number; the router's includes its informers, which see every pod. " +
		"In namespace granularity the router's namespace is one it routed (`istio.io/rev` on the namespace), so pods are admitted unchanged. " +
		"Istio's injector configs are registered with a stand-in injector behind them, which the apiserver calls for the router's and the floor's pods alike.\n")
	return b.String()
}
