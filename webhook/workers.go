package webhook

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canary-router/canary-router/webhook/wire"
)

// Admissions run on a few long-lived worker goroutines, not on the
// request's own.
//
// net/http serves each HTTP/2 request on a new goroutine, which starts
// with a 2 KB stack. Decoding a review walks about a dozen nested frames
// of the decoder and jsontext's tokenizer, so on that goroutine every
// admission grew its stack, copying each frame above it and adjusting
// its pointers: a third of a fresh goroutine's admission in process
// (BenchmarkAdmitPodFreshGoroutine), and the largest single cost the
// router added over the floor server under load. A worker's stack grows
// once, on its first admission, and stays grown.
//
// Only CPU work goes to a worker: decoding the body already read,
// checking it and deciding. Reading the body and writing the response,
// which wait on the client, stay on the request's goroutine, so a slow
// client never holds a worker. The work a worker does is bounded by the
// body limit and never waits on the network, so a request waits for a
// worker at most for other requests' CPU time.
//
// That bound is not a deadline: a decision that runs away (a bug, a
// pathological input, a starved CPU) holds its worker, and enough of them
// starve every admission behind them. So each admission also has a
// deadline, admissionDeadline from the request's start, kept two ways
// that cost the common case nothing measurable:
//
//   - waiting for a free worker, the request arms a timer, pooled in its
//     task; only a request that finds every worker busy does;
//   - running, it is watched by the watchdog, one goroutine that looks at
//     what each worker runs every watchdogTick. A task past its deadline
//     is abandoned: its request answers on its own (deadline.go,
//     timedOut), and its worker is retired, to exit when the work ends,
//     so a new worker can take its place. A timer per request here cost
//     6% of the router's CPU under parallel load (the timer joins the
//     runtime's heap whenever the request blocks on it), the watchdog
//     two atomic stores and a compare-and-swap.
//
// A worker still running 30 s after it was retired fails /healthz
// (workers_health.go). Work that is not a pod or namespace admission
// (the policy validator) never runs here: it has a small pool of its own
// (sidePool).

// maxWorkers bounds the workers: enough to keep every CPU busy while
// some run a large pod, few enough to stay warm.
var maxWorkers = int32(max(8, 4*runtime.GOMAXPROCS(0)))

// watchdogTick is how often the watchdog looks: an admission past its
// deadline is answered at most this much later.
const watchdogTick = 50 * time.Millisecond

// task is one admission handed to a worker: the request's goroutine sets
// the input, waits on done, then reads the answer.
type task struct {
	a        *Admitter
	body     []byte
	resource string
	admit    admitFunc

	code int
	resp wire.Response

	done chan struct{}
	// expires is the request's deadline in UnixNano while the task is
	// queued or running; taskAnswered once a worker answered it, and
	// taskAbandoned once the watchdog gave up on it. One word, so the
	// worker and the watchdog settle it with a compare-and-swap each, and
	// a task reused by a later request never passes for the earlier one.
	expires atomic.Int64
	// queued is the deadline while waiting for a free worker.
	queued *time.Timer
}

const (
	taskAnswered  = 0
	taskAbandoned = -1
)

// worker is what the watchdog sees of one worker goroutine.
type worker struct {
	running atomic.Pointer[task]
	// Pads to a cache line: each worker writes only its own.
	_ [56]byte
}

var (
	tasks = sync.Pool{New: func() any {
		t := &task{done: make(chan struct{}, 1), queued: time.NewTimer(time.Hour)}
		t.queued.Stop()
		return t
	}}
	// idle hands a task to a worker waiting for one: unbuffered, so a
	// send succeeds only when a worker is free.
	idle = make(chan *task)
	// workers is how many workers are in service, at most maxWorkers; a
	// retired worker no longer counts.
	workers atomic.Int32
	// inService holds the workers in service, for the watchdog; a new
	// worker takes a free entry.
	inService     = make([]atomic.Pointer[worker], maxWorkers)
	watchdogStart sync.Once
	// retiredAt holds when each retired worker still running was retired.
	retiredMu sync.Mutex
	retiredAt = map[*worker]time.Time{}
)

// runOnWorker answers body on a worker and returns the task holding the
// answer; the caller hands it back with releaseTask once the answer is
// written. It returns nil when no answer came by expires (UnixNano), and
// whether a worker still holds body then: the caller must not reuse it.
func runOnWorker(a *Admitter, body []byte, resource string, admit admitFunc, expires int64) (t *task, bodyHeld bool) {
	t = tasks.Get().(*task)
	t.a, t.body, t.resource, t.admit = a, body, resource, admit
	t.expires.Store(expires)
	select {
	case idle <- t:
	default:
		if workers.Add(1) <= maxWorkers {
			startWorker(t)
		} else {
			workers.Add(-1)
			// With Go 1.23's timers, Reset and Stop leave no stale tick.
			t.queued.Reset(time.Until(time.Unix(0, expires)))
			select {
			case idle <- t:
				t.queued.Stop()
			case <-t.queued.C:
				// No worker took it: t is still ours.
				releaseTask(t)
				return nil, false
			}
		}
	}
	<-t.done
	if t.expires.Load() == taskAbandoned {
		// A retired worker holds t and body; it finishes with them, and
		// they go to the collector, not back to their pools.
		return nil, true
	}
	return t, false
}

// startWorker starts a worker on t, in a free entry of inService (there
// is one: the caller counted the worker in).
func startWorker(t *task) {
	watchdogStart.Do(func() { go watchdog() })
	w := &worker{}
	for i := range inService {
		if inService[i].CompareAndSwap(nil, w) {
			go work(w, t)
			return
		}
	}
	panic("canary-router: no free admission worker entry for a counted worker")
}

// work answers t, then every task handed to it, until the watchdog
// retires it.
func work(w *worker, t *task) {
	for {
		exp := t.expires.Load()
		w.running.Store(t)
		t.code, t.resp = t.a.answer(t.body, t.resource, t.admit)
		w.running.Store(nil)
		if !t.expires.CompareAndSwap(exp, taskAnswered) {
			// Abandoned: the watchdog answered for t and retired w.
			retiredMu.Lock()
			delete(retiredAt, w)
			retiredMu.Unlock()
			return
		}
		t.done <- struct{}{}
		t = <-idle
	}
}

// watchdog abandons tasks past their deadline, every watchdogTick,
// forever.
func watchdog() {
	tick := time.NewTicker(watchdogTick)
	defer tick.Stop()
	for now := range tick.C {
		abandonExpired(now)
	}
}

// abandonExpired abandons every running task whose deadline is before
// now, and retires its worker.
func abandonExpired(now time.Time) {
	for i := range inService {
		w := inService[i].Load()
		if w == nil {
			continue
		}
		t := w.running.Load()
		if t == nil {
			continue
		}
		exp := t.expires.Load()
		if exp <= taskAnswered || now.UnixNano() < exp {
			continue
		}
		// Under the lock, so the worker, whose own compare-and-swap now
		// fails, cannot drop its entry before it is made.
		retiredMu.Lock()
		abandoned := t.expires.CompareAndSwap(exp, taskAbandoned)
		if abandoned {
			retiredAt[w] = now
		}
		retiredMu.Unlock()
		if !abandoned {
			continue
		}
		inService[i].Store(nil)
		workers.Add(-1)
		t.done <- struct{}{}
	}
}

// oldestRetired is when the longest-retired worker still running was
// retired; zero when none is.
func oldestRetired() time.Time {
	retiredMu.Lock()
	defer retiredMu.Unlock()
	var oldest time.Time
	for _, at := range retiredAt {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest
}

// releaseTask returns t to the pool without what it referenced.
func releaseTask(t *task) {
	t.a, t.body, t.admit, t.resp = nil, nil, nil, wire.Response{}
	tasks.Put(t)
}
