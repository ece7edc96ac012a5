package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canary-router/canary-router/test/podgen"
)

// workload is the request bodies for one pod shape: distinct pods (their
// names and template hashes differ) with distinct request UIDs.
type workload struct {
	shape  podgen.Shape
	bodies [][]byte
	uids   []string
}

func newWorkload(s podgen.Shape, n int) *workload {
	w := &workload{shape: s}
	for i := range n {
		uid := fmt.Sprintf("load-%s-%08d", s.Name, i)
		w.bodies = append(w.bodies, podgen.Review(podgen.Pod(s, i), uid))
		w.uids = append(w.uids, uid)
	}
	return w
}

// target is a server and what its answers must hold. The floor does not
// decode, so it cannot echo the request UID.
type target struct {
	name    string
	url     string
	echoUID bool
	// unrouted is a router that admits pods as they are: in namespace
	// granularity the namespace label routes them.
	unrouted bool
	cpu      func() (time.Duration, error)
}

// client is a pool of HTTP/2 connections, one per transport, used round
// robin: kube-apiserver keeps a few long-lived connections per webhook
// and multiplexes its concurrent calls over them.
type client struct {
	pool []*http.Client
	next atomic.Uint64
}

func newClient(roots *x509.CertPool, conns int) *client {
	c := &client{}
	for range conns {
		c.pool = append(c.pool, &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:    &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
				ForceAttemptHTTP2:  true,
				DisableCompression: true,
			},
		})
	}
	return c
}

func (c *client) close() {
	for _, hc := range c.pool {
		hc.CloseIdleConnections()
	}
}

// reviewOut is the part of a response the check reads.
type reviewOut struct {
	Response *struct {
		UID       string  `json:"uid"`
		Allowed   bool    `json:"allowed"`
		Patch     []byte  `json:"patch"`
		PatchType *string `json:"patchType"`
		Status    *struct {
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

// badAnswer is a response that fails its check, as opposed to a request
// that got no response (a timeout, a reset connection).
type badAnswer struct{ error }

func bad(format string, args ...any) error { return badAnswer{fmt.Errorf(format, args...)} }

// call sends request i of w to t and checks the answer: HTTP/2, status
// 200, an AdmissionReview that admits the pod with a JSON Patch setting
// istio.io/rev, and for the router the request's UID.
func (c *client) call(t *target, w *workload, i int) error {
	j := i % len(w.bodies)
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(w.bodies[j]))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.pool[c.next.Add(1)%uint64(len(c.pool))].Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.ProtoMajor != 2 {
		return bad("served over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusOK {
		return bad("HTTP %d: %.200s", resp.StatusCode, body)
	}
	var out reviewOut
	if err := json.Unmarshal(body, &out); err != nil || out.Response == nil {
		return bad("not an AdmissionReview response (%v): %.200s", err, body)
	}
	r := out.Response
	switch {
	case t.echoUID && r.UID != w.uids[j]:
		return bad("uid %q, want %q", r.UID, w.uids[j])
	case !r.Allowed:
		msg := ""
		if r.Status != nil {
			msg = r.Status.Message
		}
		return bad("pod refused: %s", msg)
	case t.unrouted:
		if bytes.Contains(r.Patch, []byte(`istio.io~1rev`)) {
			return bad("pod routed by a router in namespace granularity: patch %s", r.Patch)
		}
	case r.PatchType == nil || *r.PatchType != "JSONPatch" || !bytes.Contains(r.Patch, []byte(`"/metadata/labels/istio.io~1rev"`)):
		return bad("pod not routed: patch %s", r.Patch)
	}
	return nil
}

// phase is what one measured run of requests against one server gave.
type phase struct {
	requests int
	// failures are responses that failed their check; lost are requests
	// that got no response in time.
	failures, lost int
	failure        error
	elapsed        time.Duration
	latencies      []time.Duration // sorted
	serverCPU      time.Duration
	// genCPU is the load generator's own CPU time over the phase: it
	// shares the machine with the server, so what it spends per request
	// bounds every server's throughput alike.
	genCPU time.Duration
}

func (p *phase) rps() float64 { return float64(p.requests) / p.elapsed.Seconds() }

// merge adds q's requests to p (nil for none yet).
func (p *phase) merge(q *phase) *phase {
	if p == nil {
		return q
	}
	m := &phase{
		requests: p.requests + q.requests, failures: p.failures + q.failures, lost: p.lost + q.lost,
		failure: p.failure, elapsed: p.elapsed + q.elapsed, serverCPU: p.serverCPU + q.serverCPU, genCPU: p.genCPU + q.genCPU,
		latencies: append(slices.Clone(p.latencies), q.latencies...),
	}
	if m.failure == nil {
		m.failure = q.failure
	}
	slices.Sort(m.latencies)
	return m
}

// cpuPerRequest is the server's CPU time per answered request.
func (p *phase) cpuPerRequest() time.Duration {
	if p.requests == 0 {
		return 0
	}
	return p.serverCPU / time.Duration(p.requests)
}

// genPerRequest is the load generator's CPU time per answered request.
func (p *phase) genPerRequest() time.Duration {
	if p.requests == 0 {
		return 0
	}
	return p.genCPU / time.Duration(p.requests)
}

func (p *phase) percentile(q float64) time.Duration {
	if len(p.latencies) == 0 {
		return 0
	}
	return p.latencies[min(len(p.latencies)-1, int(q*float64(len(p.latencies))))]
}

// recorder collects latencies and failures from concurrent workers.
type recorder struct {
	mu             sync.Mutex
	latencies      []time.Duration
	failures, lost int
	failure        error
}

func (r *recorder) record(lat time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ba badAnswer
	switch {
	case err == nil:
		r.latencies = append(r.latencies, lat)
		return
	case errors.As(err, &ba):
		r.failures++
	default:
		r.lost++
	}
	if r.failure == nil {
		r.failure = err
	}
}

// measure runs load and brackets it with the server's CPU time.
func measure(t *target, load func(*recorder) time.Duration) (*phase, error) {
	cpu0, err := t.cpu()
	if err != nil {
		return nil, err
	}
	gen0, err := processCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	rec := &recorder{}
	elapsed := load(rec)
	cpu1, err := t.cpu()
	if err != nil {
		return nil, err
	}
	gen1, err := processCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	slices.Sort(rec.latencies)
	return &phase{
		requests: len(rec.latencies), failures: rec.failures, lost: rec.lost, failure: rec.failure,
		elapsed: elapsed, latencies: rec.latencies, serverCPU: cpu1 - cpu0, genCPU: gen1 - gen0,
	}, nil
}

// saturate keeps concurrency requests in flight for d, or until max
// requests were sent: closed loop, as fast as the server answers.
func (c *client) saturate(ctx context.Context, t *target, w *workload, concurrency int, d time.Duration, max int) (*phase, error) {
	return measure(t, func(rec *recorder) time.Duration {
		var sent atomic.Int64
		start := time.Now()
		end := start.Add(d)
		var wg sync.WaitGroup
		for range concurrency {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(end) {
					i := int(sent.Add(1))
					if i > max {
						return
					}
					t0 := time.Now()
					err := c.call(t, w, i)
					rec.record(time.Since(t0), err)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	})
}

// fixedRate sends rate requests a second for d, open loop: each request
// starts at its scheduled time whatever the server's state, and its
// latency counts from that time, so a server that falls behind shows it
// (no coordinated omission). maxInFlight bounds the goroutines.
func (c *client) fixedRate(ctx context.Context, t *target, w *workload, rate int, d time.Duration, maxInFlight int) (*phase, error) {
	if rate <= 0 {
		return nil, errors.New("rate must be positive")
	}
	return measure(t, func(rec *recorder) time.Duration {
		interval := time.Second / time.Duration(rate)
		n := int(d / interval)
		sem := make(chan struct{}, maxInFlight)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			if ctx.Err() != nil {
				break
			}
			due := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(due))
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := c.call(t, w, i)
				rec.record(time.Since(due), err)
			})
		}
		wg.Wait()
		return time.Since(start)
	})
}
