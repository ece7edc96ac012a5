package webhook

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/canary-router/canary-router/webhook/wire"
)

// The worker probe answers "can this replica answer an admission in
// time?" the only way that is sure: it sends a test admission through the
// worker pool every probeInterval, as a request does, and /readyz and
// /healthz read how long it waits. It costs the hot path nothing.
const (
	probeInterval = time.Second
	// workersReadyWithin: a replica whose test admission waits longer is
	// not ready, so the Service sends admissions to the other replicas. A
	// third of admissionDeadline: the queue is long enough that
	// admissions here start missing it.
	workersReadyWithin = time.Second
	// workersLiveWithin: a test admission that waits this long, ten
	// deadlines, or a retired worker still running an admission this long
	// after its deadline, means workers are stuck, not busy; /healthz
	// fails, and the kubelet restarts the replica.
	workersLiveWithin = 30 * time.Second
	// probeWait is the probe's own deadline: none to speak of, since it
	// measures how long the wait is.
	probeWait = 24 * time.Hour
)

// probeReview is the test admission: a pod CREATE in no namespace the
// router manages, answered by probeAdmit without a decision, so it
// touches no metric and no routing state.
var probeReview = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` +
	`"uid":"canary-router-worker-probe","kind":{"group":"","version":"v1","kind":"Pod"},` +
	`"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",` +
	`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"worker-probe"}}}}`)

func probeAdmit(r *wire.Review) wire.Response { return wire.Allowed(r.UID, nil) }

// workerProbe keeps the start of the test admission in flight and how
// long the last one took.
type workerProbe struct {
	a   *Admitter
	now func() time.Time
	// pending is the UnixNano start of the test admission in flight, 0
	// when none is.
	pending atomic.Int64
	// lastTook is how long the last test admission took, in nanoseconds.
	lastTook atomic.Int64
}

func newWorkerProbe(a *Admitter, now func() time.Time) *workerProbe {
	return &workerProbe{a: a, now: now}
}

// Run probes every probeInterval until ctx ends.
func (p *workerProbe) Run(ctx context.Context) {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.once()
		}
	}
}

// once sends one test admission and waits for its answer, however long.
func (p *workerProbe) once() {
	start := p.now()
	p.pending.Store(start.UnixNano())
	t, _ := runOnWorker(p.a, probeReview, resourcePods, probeAdmit, time.Now().Add(probeWait).UnixNano())
	p.lastTook.Store(int64(p.now().Sub(start)))
	p.pending.Store(0)
	if t != nil {
		releaseTask(t)
	}
}

// ready is the /readyz check.
func (p *workerProbe) ready() error {
	ready, _ := workerHealth(p.now(), p.pending.Load(), time.Duration(p.lastTook.Load()), oldestRetired())
	return ready
}

// live is the /healthz check.
func (p *workerProbe) live() error {
	_, live := workerHealth(p.now(), p.pending.Load(), time.Duration(p.lastTook.Load()), oldestRetired())
	return live
}

// workerHealth judges the probe's figures: pending is the UnixNano start
// of the test admission in flight (0 for none), lastTook how long the
// last one took, retired when the longest-retired worker still running
// was retired (zero for none).
func workerHealth(now time.Time, pending int64, lastTook time.Duration, retired time.Time) (ready, live error) {
	var waited time.Duration
	if pending != 0 {
		waited = now.Sub(time.Unix(0, pending))
	}
	switch {
	case waited > workersLiveWithin:
		live = fmt.Errorf("a test admission has waited %v for the admission workers (all %d stuck?); the replica is wedged",
			waited.Round(time.Second), maxWorkers)
	case !retired.IsZero() && now.Sub(retired) > workersLiveWithin:
		live = fmt.Errorf("an admission worker has run one admission for %v past its deadline; the replica is wedged",
			now.Sub(retired).Round(time.Second))
	}
	switch {
	case waited > workersReadyWithin:
		ready = fmt.Errorf("a test admission has waited %v for the admission workers (more than %v): admissions here would miss their %v deadline",
			waited.Round(time.Millisecond), workersReadyWithin, admissionDeadline)
	case lastTook > workersReadyWithin:
		ready = fmt.Errorf("the last test admission took %v (more than %v): admissions here would miss their %v deadline",
			lastTook.Round(time.Millisecond), workersReadyWithin, admissionDeadline)
	}
	return ready, live
}
