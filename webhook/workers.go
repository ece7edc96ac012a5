package webhook

import (
	"runtime"
	"sync"
	"sync/atomic"

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
}

var (
	tasks = sync.Pool{New: func() any { return &task{done: make(chan struct{}, 1)} }}
	// idle hands a task to a worker waiting for one: unbuffered, so a
	// send succeeds only when a worker is free.
	idle = make(chan *task)
	// workers is how many worker goroutines were started; they never
	// stop, and there are at most maxWorkers of them per process.
	workers atomic.Int32
)

// runOnWorker answers body on a worker and returns the task holding the
// answer; the caller hands it back with releaseTask once the answer is
// written.
func runOnWorker(a *Admitter, body []byte, resource string, admit admitFunc) *task {
	t := tasks.Get().(*task)
	t.a, t.body, t.resource, t.admit = a, body, resource, admit
	select {
	case idle <- t:
	default:
		if workers.Add(1) <= maxWorkers {
			go work(t)
		} else {
			workers.Add(-1)
			idle <- t
		}
	}
	<-t.done
	return t
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
