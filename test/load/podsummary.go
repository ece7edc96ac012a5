package main

import (
	"fmt"
	"strings"
)

// podSummary reports the pod-creation measurement: one row per
// namespace of perfNamespaces, and the ratios the targets are about.
type podSummary struct {
	args    []string
	results []batch // indexed like perfNamespaces
}

func (s *podSummary) ratio(a, b int) float64 { return s.results[a].rate() / s.results[b].rate() }

func (s *podSummary) p99Ratio(a, b int) float64 {
	return float64(s.results[a].p99()) / float64(s.results[b].p99())
}

func (s *podSummary) text() string {
	var b strings.Builder
	for i, ns := range perfNamespaces {
		r := &s.results[i]
		fmt.Fprintf(&b, "%-12s %6.1f pods/s  p50 %-9v p99 %-9v CPU/pod: apiserver %-8v router %-8v floor %v\n",
			ns.name, r.rate(), r.p50(), r.p99(), r.cpuPerPod(0), r.cpuPerPod(1), r.cpuPerPod(2))
	}
	fmt.Fprintf(&b, "with router / with floor webhook: throughput %.3f (%s), p99 %.2f\n", s.ratio(0, 1), s.verdict(), s.p99Ratio(0, 1))
	fmt.Fprintf(&b, "with router / without: throughput %.3f, p99 %.2f\n", s.ratio(0, 2), s.p99Ratio(0, 2))
	fmt.Fprintf(&b, "with floor webhook / without: throughput %.3f, p99 %.2f\n", s.ratio(1, 2), s.p99Ratio(1, 2))
	return b.String()
}

// verdict judges the router against the do-nothing floor webhook of the
// same apiserver and run (issue 14): any webhook costs the apiserver the
// same, so the ratio to no webhook at all is reported, not judged.
func (s *podSummary) verdict() string {
	return check(s.ratio(0, 1) >= 0.97, "throughput >= 0.97 x floor webhook")
}

func (s *podSummary) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `canary-router-load apiserver %s`\n\n", strings.Join(s.args, " "))
	b.WriteString("| pods created | pods/s | p50 create | p99 create | apiserver CPU/pod | router CPU/pod | floor CPU/pod |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for i, ns := range perfNamespaces {
		r := &s.results[i]
		fmt.Fprintf(&b, "| %d %s | %.1f | %v | %v | %v | %v | %v |\n",
			r.count(), ns.what, r.rate(), r.p50(), r.p99(), r.cpuPerPod(0), r.cpuPerPod(1), r.cpuPerPod(2))
	}
	fmt.Fprintf(&b, "\n| ratio | pod creation throughput | p99 create |\n|---|--:|--:|\n")
	fmt.Fprintf(&b, "| **with router / with floor webhook** (%s) | **%.3f** | %.2f |\n", s.verdict(), s.ratio(0, 1), s.p99Ratio(0, 1))
	fmt.Fprintf(&b, "| with router / without | %.3f | %.2f |\n", s.ratio(0, 2), s.p99Ratio(0, 2))
	fmt.Fprintf(&b, "| with floor webhook / without | %.3f | %.2f |\n", s.ratio(1, 2), s.p99Ratio(1, 2))
	b.WriteString("\nCPU per pod is each process's CPU time while that namespace's pods were created, divided by their number; the router's includes its informers, which see every pod. " +
		"The router runs in workload granularity; the other granularities are measured over HTTP only (above). " +
		"Istio's injector configs are registered with a stand-in injector behind them, which the apiserver calls for the router's and the floor's pods alike.\n")
	return b.String()
}
