package main

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// routerSample is one scrape of the router's /metrics: the figures that
// must stay flat under steady load.
type routerSample struct {
	AtSec          float64 `json:"atSeconds"` // since the measured run began
	HeapAllocBytes float64 `json:"heapAllocBytes"`
	HeapInuseBytes float64 `json:"heapInuseBytes"`
	Goroutines     float64 `json:"goroutines"`
	Threads        float64 `json:"threads"`
	RSSBytes       float64 `json:"rssBytes"`
	OpenFDs        float64 `json:"openFDs"`
}

// sampleSeries maps each metric the soak reads to its field.
var sampleSeries = map[string]func(*routerSample) *float64{
	"go_memstats_heap_alloc_bytes":  func(s *routerSample) *float64 { return &s.HeapAllocBytes },
	"go_memstats_heap_inuse_bytes":  func(s *routerSample) *float64 { return &s.HeapInuseBytes },
	"go_goroutines":                 func(s *routerSample) *float64 { return &s.Goroutines },
	"go_threads":                    func(s *routerSample) *float64 { return &s.Threads },
	"process_resident_memory_bytes": func(s *routerSample) *float64 { return &s.RSSBytes },
	"process_open_fds":              func(s *routerSample) *float64 { return &s.OpenFDs },
}

// scrapeRouter reads url (the router's /metrics, or any health endpoint
// when only its status matters).
func scrapeRouter(url string) (routerSample, error) {
	var s routerSample
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if field, known := sampleSeries[name]; ok && known {
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				*field(&s) = v
			}
		}
	}
	return s, sc.Err()
}

// sampler scrapes the router at a fixed interval in the background.
type sampler struct {
	mu      sync.Mutex
	samples []routerSample
	times   []time.Time
	done    chan struct{}
	wg      sync.WaitGroup
}

func startSampler(url string, every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case now := <-tick.C:
				if r, err := scrapeRouter(url); err == nil {
					s.mu.Lock()
					s.samples, s.times = append(s.samples, r), append(s.times, now)
					s.mu.Unlock()
				}
			}
		}
	})
	return s
}

// stop ends the sampling and returns the samples, timed from began.
func (s *sampler) stop(began time.Time) []routerSample {
	close(s.done)
	s.wg.Wait()
	out := slices.Clone(s.samples)
	for i := range out {
		out[i].AtSec = s.times[i].Sub(began).Seconds()
	}
	return out
}

// soakWindow is one window of the run.
type soakWindow struct {
	FromSec  float64 `json:"fromSeconds"`
	ToSec    float64 `json:"toSeconds"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50Ms    float64 `json:"p50Ms"`
	P99Ms    float64 `json:"p99Ms"`
	MaxMs    float64 `json:"maxMs"`
	// Router is the last sample taken in the window.
	Router routerSample `json:"router"`
}

func (w *windowed) requests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.all)
	for _, f := range w.fails {
		n += f
	}
	return n
}

func (w *windowed) errors() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range w.fails {
		n += f
	}
	return n
}

func (w *windowed) firstErrors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.first)
}

func (w *windowed) overall(q float64) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return quantile(w.all, q)
}

// windows summarises each window with the last router sample in it.
func (w *windowed) windows(samples []routerSample) []soakWindow {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]soakWindow, len(w.lat))
	for i, lat := range w.lat {
		from, to := float64(i)*w.width.Seconds(), float64(i+1)*w.width.Seconds()
		out[i] = soakWindow{FromSec: from, ToSec: to, Requests: len(lat) + w.fails[i], Errors: w.fails[i],
			P50Ms: ms(quantile(lat, 0.5)), P99Ms: ms(quantile(lat, 0.99)), MaxMs: ms(quantile(lat, 1))}
		for _, s := range samples {
			if s.AtSec <= to {
				out[i].Router = s
			}
		}
	}
	return out
}

// quantile sorts lat in place and returns its q-quantile.
func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func (r *soakRun) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-9s %8s %6s %9s %9s %9s %11s %10s %6s\n", "window", "requests", "errors", "p50", "p99", "max", "heap alloc", "goroutines", "fds")
	for _, w := range r.Windows {
		fmt.Fprintf(&b, "%4.0f-%-4.0f %8d %6d %7.2fms %7.2fms %7.2fms %11s %10.0f %6.0f\n", w.FromSec, w.ToSec, w.Requests, w.Errors,
			w.P50Ms, w.P99Ms, w.MaxMs, mib(w.Router.HeapAllocBytes), w.Router.Goroutines, w.Router.OpenFDs)
	}
	fmt.Fprintf(&b, "\nrequests %d, errors %d (warm-up: %d requests, %d errors), p99 overall %.2fms, router CPU %.1fs (%.0fµs/request)\n",
		r.Requests, r.Errors, r.WarmupRequests, r.WarmupErrors, r.P99Overall, r.RouterCPU, 1e6*r.RouterCPU/float64(max(1, r.Requests)))
	for _, e := range r.FirstErrors {
		fmt.Fprintf(&b, "  error %s\n", e)
	}
	for _, s := range []struct {
		name string
		s    routerSample
	}{{"start", r.Start}, {"end", r.End}, {"idle", r.Idle}} {
		fmt.Fprintf(&b, "%-5s heap alloc %s, heap in use %s, goroutines %.0f, threads %.0f, RSS %s, open fds %.0f\n",
			s.name, mib(s.s.HeapAllocBytes), mib(s.s.HeapInuseBytes), s.s.Goroutines, s.s.Threads, mib(s.s.RSSBytes), s.s.OpenFDs)
	}
	return b.String()
}

func (r *soakRun) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	b.WriteString("| window (s) | requests | errors | p50 | p99 | max | heap alloc | goroutines | open fds |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.Windows {
		fmt.Fprintf(&b, "| %.0f-%.0f | %d | %d | %.2f ms | %.2f ms | %.2f ms | %s | %.0f | %.0f |\n", w.FromSec, w.ToSec, w.Requests, w.Errors,
			w.P50Ms, w.P99Ms, w.MaxMs, mib(w.Router.HeapAllocBytes), w.Router.Goroutines, w.Router.OpenFDs)
	}
	fmt.Fprintf(&b, "\nRequests %d, errors %d (warm-up %d requests, %d errors); p99 over the whole run %.2f ms; router CPU %.1f s.\n\n",
		r.Requests, r.Errors, r.WarmupRequests, r.WarmupErrors, r.P99Overall, r.RouterCPU)
	b.WriteString("| router | heap alloc | heap in use | goroutines | threads | RSS | open fds |\n|---|---|---|---|---|---|---|\n")
	for _, s := range []struct {
		name string
		s    routerSample
	}{{"start (after warm-up)", r.Start}, {"end (last answer)", r.End}, {"idle (after the quiet time)", r.Idle}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f | %s | %.0f |\n", s.name, mib(s.s.HeapAllocBytes), mib(s.s.HeapInuseBytes),
			s.s.Goroutines, s.s.Threads, mib(s.s.RSSBytes), s.s.OpenFDs)
	}
	return b.String()
}
