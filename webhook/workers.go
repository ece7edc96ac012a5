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
// pathological input) holds its worker, and enough of them starve every
// admission behind them. So each admission also has a deadline,
// admissionDeadline from the request's start: past it the request's
// goroutine stops waiting and answers on its own (handler.go,
// timedOut), leaving the task and its body to the worker. Work that is
// not a pod or namespace admission (the policy validator) never runs
// here: it has a small pool of its own (sidePool).

// maxWorkers bounds the workers: enough to keep every CPU busy while
// some run a large pod, few enough to stay warm.
var maxWorkers = int32(max(8, 4*runtime.GOMAXPROCS(0)))

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
	// deadline is the request's admissionDeadline; it lives with the task
	// so the hot path arms a pooled timer instead of allocating one.
	deadline *time.Timer
}

var (
	tasks = sync.Pool{New: func() any {
		t := &task{done: make(chan struct{}, 1), deadline: time.NewTimer(time.Hour)}
		t.deadline.Stop()
		return t
	}}
	// idle hands a task to a worker waiting for one: unbuffered, so a
	// send succeeds only when a worker is free.
	idle = make(chan *task)
	// workers is how many worker goroutines were started; they never
	// stop, and there are at most maxWorkers of them per process.
	workers atomic.Int32
)

// runOnWorker answers body on a worker and returns the task holding the
// answer; the caller hands it back with releaseTask once the answer is
// written. It returns nil when no answer came within wait, and whether a
// worker still holds body then: the caller must not reuse it.
func runOnWorker(a *Admitter, body []byte, resource string, admit admitFunc, wait time.Duration) (t *task, bodyHeld bool) {
	t = tasks.Get().(*task)
	t.a, t.body, t.resource, t.admit = a, body, resource, admit
	// With Go 1.23's timers, Reset and Stop leave no stale tick behind.
	t.deadline.Reset(wait)
	select {
	case idle <- t:
	default:
		if workers.Add(1) <= maxWorkers {
			go work(t)
		} else {
			workers.Add(-1)
			select {
			case idle <- t:
			case <-t.deadline.C:
				// No worker took it: t is still ours.
				releaseTask(t)
				return nil, false
			}
		}
	}
	select {
	case <-t.done:
		t.deadline.Stop()
		return t, false
	case <-t.deadline.C:
		// A worker holds t and body; it finishes with them, and they go
		// to the collector, not back to their pools.
		return nil, true
	}
}

// work answers t, then every task handed to it, forever.
func work(t *task) {
	for {
		t.code, t.resp = t.a.answer(t.body, t.resource, t.admit)
		t.done <- struct{}{}
		t = <-idle
	}
}

// releaseTask returns t to the pool without what it referenced.
func releaseTask(t *task) {
	t.a, t.body, t.admit, t.resp = nil, nil, nil, wire.Response{}
	tasks.Put(t)
}
