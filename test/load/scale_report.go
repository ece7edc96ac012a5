package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// scaleSummary renders the scale run's results.
type scaleSummary struct {
	args    []string
	results []scaleResult
}

// scaleColumns are the table's columns, each read from one result.
var scaleColumns = []struct {
	head string
	cell func(r scaleResult) string
}{
	{"pods", func(r scaleResult) string { return fmt.Sprint(r.shape.pods) }},
	{"Deployments / namespaces", func(r scaleResult) string {
		return fmt.Sprintf("%d / %d", r.shape.workloads(), r.shape.namespaces())
	}},
	{"follower ready (pod view synced)", func(r scaleResult) string { return secs(r.follower.ready) }},
	{"leader ready / controllers synced", func(r scaleResult) string {
		return secs(r.leader.ready) + " / " + secs(r.leader.leading)
	}},
	{"follower RSS ready / steady (peak)", func(r scaleResult) string {
		return fmt.Sprintf("%.0f / %.0f MiB (%.0f)", r.follower.rssReady, r.follower.rssSteady, r.follower.peak)
	}},
	{"leader RSS synced / steady (peak)", func(r scaleResult) string {
		return fmt.Sprintf("%.0f / %.0f MiB (%.0f)", r.leader.rssReady, r.leader.rssSteady, r.leader.peak)
	}},
	{"anonymous RSS at steady state (the rest is the binary's pages): follower / leader", func(r scaleResult) string {
		return fmt.Sprintf("%.0f / %.0f MiB", r.follower.anonSteady, r.leader.anonSteady)
	}},
	{"Go heap at steady state, in use + idle kept: follower / leader", func(r scaleResult) string {
		return fmt.Sprintf("%.0f + %.0f / %.0f + %.0f MiB", r.follower.heapInuse, r.follower.heapIdle, r.leader.heapInuse, r.leader.heapIdle)
	}},
	{"start-up: LIST requests, watches opened, MB sent (follower / leader)", func(r scaleResult) string {
		return startTraffic(r.follower.start) + " / " + startTraffic(r.leader.start)
	}},
	{"pod watches opened at start (follower / leader)", func(r scaleResult) string {
		return fmt.Sprintf("%.0f / %.0f", r.follower.start.opened["pods"], r.leader.start.opened["pods"])
	}},
	{"steady state, both replicas, per minute (LIST, WATCH, GET, writes)", func(r scaleResult) string {
		m := r.steadyFor.Minutes()
		return fmt.Sprintf("%.0f, %.0f, %.0f, %.0f", r.steady.lists/m, r.steady.watches/m, r.steady.gets/m, r.steady.writes/m)
	}},
	{"admission p50 / p99: router vs no-op floor", func(r scaleResult) string {
		return fmt.Sprintf("%s / %s vs %s / %s (p99 %.2fx)", msText(r.router.p50()), msText(r.router.p99()), msText(r.floor.p50()), msText(r.floor.p99()),
			float64(r.router.p99())/float64(r.floor.p99()))
	}},
	{"failover: leader killed to new leader synced (RSS)", func(r scaleResult) string {
		return fmt.Sprintf("%s (%.0f MiB)", secs(r.failover), r.newLeaderRSS)
	}},
}

// startTraffic is a start-up's LIST requests, watches opened, and bytes
// sent in list responses and watch events (the streaming list's initial
// state is sent as watch events).
func startTraffic(d apiDelta) string {
	opened := 0.0
	for _, n := range d.opened {
		opened += max(n, 0)
	}
	return fmt.Sprintf("%.0f, %.0f, %.1f", d.lists, opened, (d.totalBytes+d.watchBytes)/1e6)
}

func secs(d time.Duration) string   { return fmt.Sprintf("%.1f s", d.Seconds()) }
func msText(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }

func (s scaleSummary) text() string {
	var b strings.Builder
	for _, r := range s.results {
		fmt.Fprintf(&b, "%d pods:\n", r.shape.pods)
		for _, c := range scaleColumns[1:] {
			fmt.Fprintf(&b, "  %-70s %s\n", c.head, c.cell(r))
		}
	}
	b.WriteString(s.targets())
	return b.String()
}

func (s scaleSummary) markdown(svgPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `bin/canary-router-load scale %s`\n\n", strings.Join(s.args, " "))
	heads := make([]string, len(scaleColumns))
	for i, c := range scaleColumns {
		heads[i] = c.head
	}
	// One row per measured quantity, one column per size: the sizes
	// read side by side.
	b.WriteString("| |")
	for _, r := range s.results {
		fmt.Fprintf(&b, " %d pods |", r.shape.pods)
	}
	b.WriteString("\n|---|")
	for range s.results {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, c := range scaleColumns[1:] {
		fmt.Fprintf(&b, "| %s |", c.head)
		for _, r := range s.results {
			fmt.Fprintf(&b, " %s |", c.cell(r))
		}
		b.WriteString("\n")
	}
	if len(s.results) > 0 {
		last := s.results[len(s.results)-1]
		fmt.Fprintf(&b, "\nWatches the two replicas held open at steady state at %d pods (the leader's controllers included): %s.\n", last.shape.pods, openedText(last.watches))
		fmt.Fprintf(&b, "Start-up requests of the leader at %d pods: %s.\n", last.shape.pods, last.leader.start)
	}
	b.WriteString("\n" + strings.ReplaceAll(s.targets(), "\n  ", "\n- "))
	if svgPath != "" {
		fmt.Fprintf(&b, "\n![memory, sync time and admission p99 against cluster size](images/%s)\n", filepath.Base(svgPath))
	}
	return b.String()
}

// targets marks the targets, scaled to the largest size run.
func (s scaleSummary) targets() string {
	if len(s.results) == 0 {
		return ""
	}
	r := s.results[len(s.results)-1]
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	worstRSS := max(r.leader.rssSteady, r.leader.peak, r.follower.rssSteady, r.follower.peak, r.newLeaderRSS)
	ratio := float64(r.router.p99()) / float64(r.floor.p99())
	var b strings.Builder
	fmt.Fprintf(&b, "Targets at %d pods:\n", r.shape.pods)
	fmt.Fprintf(&b, "  every replica under 150 MiB RSS, the leader included (highest seen, peaks included: %.0f MiB): %s\n", worstRSS, mark(worstRSS < 150))
	fmt.Fprintf(&b, "  ready within 30 s of start (follower %s, leader %s, leader's controllers %s): %s\n",
		secs(r.follower.ready), secs(r.leader.ready), secs(r.leader.leading), mark(max(r.follower.ready, r.leader.ready) < 30*time.Second))
	fmt.Fprintf(&b, "  admission p99 through kube-apiserver within 10%% of the no-op webhook (%.2fx): %s\n", ratio, mark(ratio <= 1.10))
	fmt.Fprintf(&b, "  no LIST at steady state (%.0f in %s): %s\n", r.steady.lists, r.steadyFor.Round(time.Second), mark(r.steady.lists == 0))
	return b.String()
}

// svg plots, against pods, each replica's steady RSS, the follower's
// time to ready and the leader's to synced controllers, and the router's
// and the floor's admission p99: three small panels side by side.
func (s scaleSummary) svg() string {
	type series struct {
		name  string
		color string
		y     func(r scaleResult) float64
	}
	panels := []struct {
		title, unit string
		series      []series
	}{
		{"RSS at steady state", "MiB", []series{
			{"leader", "#d62728", func(r scaleResult) float64 { return r.leader.rssSteady }},
			{"follower", "#1f77b4", func(r scaleResult) float64 { return r.follower.rssSteady }},
		}},
		{"start to synced", "s", []series{
			{"leader controllers", "#d62728", func(r scaleResult) float64 { return r.leader.leading.Seconds() }},
			{"follower ready", "#1f77b4", func(r scaleResult) float64 { return r.follower.ready.Seconds() }},
		}},
		{"pod admission p99", "ms", []series{
			{"router", "#d62728", func(r scaleResult) float64 { return float64(r.router.p99()) / 1e6 }},
			{"no-op floor", "#7f7f7f", func(r scaleResult) float64 { return float64(r.floor.p99()) / 1e6 }},
		}},
	}
	const pw, ph, left, top, bottom = 300.0, 220.0, 50.0, 30.0, 45.0
	width := float64(len(panels))*(pw+left+20) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, ph+top+bottom+30)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	maxX := 0.0
	for _, r := range s.results {
		maxX = math.Max(maxX, float64(r.shape.pods))
	}
	for i, p := range panels {
		x0 := 10 + float64(i)*(pw+left+20) + left
		maxY := 0.0
		for _, se := range p.series {
			for _, r := range s.results {
				maxY = math.Max(maxY, se.y(r))
			}
		}
		maxY = niceCeil(maxY)
		fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13" font-weight="bold">%s (%s)</text>`+"\n", x0, p.title, p.unit)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, top+ph, x0+pw, top+ph)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, top, x0, top+ph)
		for k := 0; k <= 4; k++ {
			v := maxY * float64(k) / 4
			y := top + ph - ph*float64(k)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text>`+"\n", x0-4, y+4, trimFloat(v))
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n", x0, y, x0+pw, y)
			xv := maxX * float64(k) / 4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x0+pw*float64(k)/4, top+ph+15, trimFloat(xv/1000)+"k")
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">pods</text>`+"\n", x0+pw/2, top+ph+30)
		for j, se := range p.series {
			pts := make([]string, 0, len(s.results))
			for _, r := range s.results {
				x := x0 + pw*float64(r.shape.pods)/maxX
				y := top + ph - ph*se.y(r)/maxY
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, se.color)
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", se.color, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", x0+8, top+14+14*float64(j), se.color, se.name)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
