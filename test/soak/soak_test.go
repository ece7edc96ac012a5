// Package soak runs the router binary at a fixed request rate on loopback
// and checks that nothing fails and nothing grows: errors, p99 per window,
// heap, goroutines and open file descriptors, read from the router's own
// /metrics. CI runs the short form (20 s); the ten-minute form behind
// docs/reliability.md is the same test with flags:
//
//	go test ./test/soak -run TestSoak -v -timeout 20m -soak-duration 10m -soak-window 1m -soak-sample 5s
//
// The load itself is `canary-router-load soak` (test/load), the same
// HTTP/2 driver the performance figures use; this test builds it and the
// router, runs it against a real kube-apiserver and etcd, and judges the
// JSON it writes.
package soak

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/harness"
)

var (
	duration    = flag.Duration("soak-duration", 20*time.Second, "length of the measured run")
	window      = flag.Duration("soak-window", 5*time.Second, "p99 is reported per window of this length")
	sampleEvery = flag.Duration("soak-sample", time.Second, "how often the router's /metrics is scraped")
	rate        = flag.Int("soak-rate", 200, "requests a second")
	mdOut       = flag.String("soak-md", "", "also write the Markdown report to this file")
)

// bins are the binaries TestMain builds.
var bins struct{ router, load, dir string }

func TestMain(m *testing.M) {
	// The load driver starts its own kube-apiserver and etcd.
	os.Exit(harness.Main(m, harness.Suite{Name: "soak", NoControlPlane: true, Setup: setup}))
}

func setup(_ context.Context, e *harness.Env) error {
	bins.dir, bins.router = e.Dir, e.Bin
	bins.load = filepath.Join(e.Dir, "canary-router-load")
	build := exec.Command("go", "build", "-trimpath", "-o", bins.load, "../load")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building ../load: %v\n%s", err, b)
	}
	return nil
}

// run mirrors the JSON `canary-router-load soak` writes (test/load/soak.go).
type run struct {
	Rate           int      `json:"rate"`
	WarmupRequests int      `json:"warmupRequests"`
	WarmupErrors   int      `json:"warmupErrors"`
	Requests       int      `json:"requests"`
	Errors         int      `json:"errors"`
	FirstErrors    []string `json:"firstErrors"`
	P99OverallMs   float64  `json:"p99OverallMs"`
	Windows        []struct {
		FromSec  float64 `json:"fromSeconds"`
		Requests int     `json:"requests"`
		Errors   int     `json:"errors"`
		P99Ms    float64 `json:"p99Ms"`
	} `json:"windows"`
	Start     sample `json:"start"`
	End       sample `json:"end"`
	Idle      sample `json:"idle"`
	RouterLog string `json:"routerLog"`
}

type sample struct {
	HeapAllocBytes float64 `json:"heapAllocBytes"`
	Goroutines     float64 `json:"goroutines"`
	OpenFDs        float64 `json:"openFDs"`
	RSSBytes       float64 `json:"rssBytes"`
}

// Bounds a steady router stays within. They are loose enough for a busy
// two-core CI machine and tight enough to catch a leak of anything per
// request: 20 s at 200/s is 4,000 requests, so a leaked body (4-64 KB) or
// a leaked goroutine or connection per request is far past them.
const (
	maxP99         = time.Second
	maxHeapGrowth  = 32 << 20
	maxGoroutines  = 10
	maxFDGrowth    = 5
	minSentPercent = 95
)

func TestSoak(t *testing.T) {
	out := filepath.Join(bins.dir, "soak.json")
	args := []string{"soak", "-router", bins.router, "-json", out,
		"-duration", duration.String(), "-window", window.String(), "-sample", sampleEvery.String(),
		"-rate", strconv.Itoa(*rate), "-warmup", "5s", "-idle", "5s"}
	if *mdOut != "" {
		args = append(args, "-md", *mdOut)
	}
	cmd := exec.Command(bins.load, args...)
	output, err := cmd.CombinedOutput()
	t.Logf("canary-router-load %v:\n%s", args, output)
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("no result (%v); soak: %v", rerr, err)
	}
	var r run
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT soak %s at %d/s: %d requests, %d errors, p99 %.2f ms; heap %.1f -> %.1f MiB (idle %.1f), goroutines %.0f -> %.0f (idle %.0f), open fds %.0f -> %.0f (idle %.0f)",
		duration, r.Rate, r.Requests, r.Errors, r.P99OverallMs, r.Start.HeapAllocBytes/(1<<20), r.End.HeapAllocBytes/(1<<20), r.Idle.HeapAllocBytes/(1<<20),
		r.Start.Goroutines, r.End.Goroutines, r.Idle.Goroutines, r.Start.OpenFDs, r.End.OpenFDs, r.Idle.OpenFDs)
	if r.Errors+r.WarmupErrors > 0 {
		t.Errorf("%d failed requests (and %d in the warm-up): %v", r.Errors, r.WarmupErrors, r.FirstErrors)
	}
	if want := int(duration.Seconds()) * *rate * minSentPercent / 100; r.Requests < want {
		t.Errorf("%d requests sent, want at least %d: the load generator fell behind", r.Requests, want)
	}
	for _, w := range r.Windows {
		if time.Duration(w.P99Ms*float64(time.Millisecond)) > maxP99 {
			t.Errorf("window from %.0fs: p99 %.1f ms, over %s", w.FromSec, w.P99Ms, maxP99)
		}
	}
	if g := r.Idle.HeapAllocBytes - r.Start.HeapAllocBytes; g > maxHeapGrowth {
		t.Errorf("heap grew by %.1f MiB from the start to the idle router", g/(1<<20))
	}
	if g := r.Idle.Goroutines - r.Start.Goroutines; g > maxGoroutines {
		t.Errorf("%.0f more goroutines once idle than at the start", g)
	}
	if g := r.Idle.OpenFDs - r.Start.OpenFDs; g > maxFDGrowth {
		t.Errorf("%.0f more open fds once idle than at the start", g)
	}
	if err != nil && !t.Failed() {
		t.Errorf("soak: %v", err)
	}
}
