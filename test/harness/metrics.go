package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metrics maps each sample of a Prometheus text exposition, keyed by its
// series as printed (`name{k="v",...}`, or the bare name), to its value.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format just far enough for
// counters and gauges; comments and blank lines are skipped.
func ParseMetrics(text []byte) (Metrics, error) {
	out := Metrics{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Label values may hold spaces; the value follows the last "} ".
		cut := strings.LastIndex(line, "} ") + 1
		if cut == 0 {
			cut = strings.Index(line, " ")
		}
		if cut <= 0 {
			continue
		}
		fields := strings.Fields(line[cut:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		out[line[:cut]] = v
	}
	return out, sc.Err()
}

// Scrape reads http://addr/metrics.
func Scrape(t testing.TB, addr string) Metrics {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	m, err := ParseMetrics(body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// APIServerMetrics reads the kube-apiserver's own /metrics.
func (e *Env) APIServerMetrics(t testing.TB, ctx context.Context) Metrics {
	t.Helper()
	raw, err := e.Cluster.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("scraping the apiserver: %v", err)
	}
	m, err := ParseMetrics(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Sum adds the samples of the metric called name whose labels include
// every `k="v"` in match. A metric with no sample yet sums to 0.
func (m Metrics) Sum(name string, match ...string) float64 {
	var sum float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		all := true
		for _, l := range match {
			all = all && strings.Contains(series, l)
		}
		if all {
			sum += v
		}
	}
	return sum
}
