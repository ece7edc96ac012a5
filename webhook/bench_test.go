package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/podgen"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook/wire"
)

// The in-process benchmarks behind docs/performance.md. Each admission
// runs the work an admission worker does for a request, from the request
// body to the encoded response, on the benchmark's thread, so that only
// the router's own work is measured; BenchmarkServeParallel adds the
// real http.Handler around it.
//
// Besides wall time (ns/op), each reports cpu-ns/op: the CPU time of the
// benchmark's thread per operation. On a machine shared with builds and
// tests, wall time also counts the time the thread waited for a CPU;
// thread CPU time does not (nor does it count GC work done on other
// threads, a small share at a dozen allocations per admission).

// benchBody is the review of a Deployment pod of the given shape.
func benchBody(tb testing.TB, s podgen.Shape) []byte {
	tb.Helper()
	return podgen.Review(podgen.Pod(s, 0), "uid-1")
}

// BenchmarkAdmitPod: one pod admission end to end (decode, decide, build
// the patch, encode the response).
func BenchmarkAdmitPod(b *testing.B) {
	for _, s := range podgen.Shapes {
		b.Run(s.Name, func(b *testing.B) {
			f := newFixture(b, testPolicy)
			benchAdmit(b, f.admitter, benchBody(b, s), checkRouted)
		})
	}
}

// podGranularityPolicy is testPolicy in pod granularity.
const podGranularityPolicy = "granularity: pod\nseed: unit-test\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\n"

// BenchmarkAdmitPodGranularity: pod granularity against a synced pod view,
// in the worst case for its reservations: pods admitted but never created
// (refused further down the webhook chain, or a load test), so each
// admission adds one. one-unit starts with 100k of them outstanding in the
// benchmark pod's ReplicaSet; units=10k spreads the admissions over the
// pods of 10k ReplicaSets.
func BenchmarkAdmitPodGranularity(b *testing.B) {
	for _, s := range podgen.Shapes {
		b.Run("one-unit/"+s.Name, func(b *testing.B) {
			f, v := podGranularityFixture(b)
			pod := podgen.Pod(s, 0)
			owner := pod.OwnerReferences[0]
			k := podview.Key{Namespace: pod.Namespace, Kind: owner.Kind, Name: owner.Name}
			p := f.store.Load().Policy
			for i := range 100_000 {
				if _, _, ok := v.Place(k, p, nil, uint64(i)*0x9e3779b97f4a7c15, true); !ok {
					b.Fatal("pod view not synced")
				}
			}
			benchAdmit(b, f.admitter, podgen.Review(pod, "uid-1"), checkRouted)
		})
	}
	b.Run("units=10k/4KB", func(b *testing.B) {
		f, _ := podGranularityFixture(b)
		bodies := make([][]byte, 10_000)
		for i := range bodies {
			bodies[i] = podgen.Review(podgen.Pod(podgen.Small, i), "uid-1")
		}
		benchAdmits(b, f.admitter, bodies, checkRouted)
	})
}

// podGranularityFixture is a fixture in pod granularity whose Admitter
// balances with a real pod view, synced from a cluster without pods.
func podGranularityFixture(b *testing.B) (*fixture, *podview.View) {
	b.Helper()
	f := newFixture(b, podGranularityPolicy)
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	v := podview.New(podview.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go v.Run(ctx, metadatafake.NewSimpleMetadataClient(scheme))
	for deadline := time.Now().Add(10 * time.Second); !v.Synced(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("pod view never synced")
		}
	}
	f.admitter.cluster.pods = v
	return f, v
}

// BenchmarkServeParallel serves 4 KB pod admissions through the real
// http.Handler with every CPU busy: many goroutines at once, each request
// on a goroutine of its own as net/http's HTTP/2 server runs it, so the
// handoff to an admission worker (workers.go) and the goroutines' stacks
// are on the path. ns/op is wall time per request over all CPUs, the
// inverse of throughput; floor is the same load on BenchmarkFloor's
// handler, and router/floor the in-process analogue of the load tool's
// saturation ratio, without TLS and HTTP/2.
func BenchmarkServeParallel(b *testing.B) {
	body := benchBody(b, podgen.Small)
	f := newFixture(b, testPolicy)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"router", f.admitter.PodHandler()}, {"floor", floorHandler()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				req, err := http.NewRequest(http.MethodPost, "https://router.test"+PathPods, nil)
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.ContentLength = int64(len(body))
				rd := &rewindBody{}
				w := &discardWriter{h: http.Header{}}
				done := make(chan struct{})
				for pb.Next() {
					go func() {
						rd.Reset(body)
						req.Body = rd
						c.h.ServeHTTP(w, req)
						done <- struct{}{}
					}()
					<-done
				}
			})
		})
	}
}

// jsonContentType is the floor handler's Content-Type, shared so that
// setting it does not allocate.
var jsonContentType = []string{"application/json"}

// BenchmarkFloor is the same request answered by a handler that reads the
// body and writes a canned response, as the load tool's floor server does:
// the cost of any handler at all.
func BenchmarkFloor(b *testing.B) {
	floor := floorHandler()
	for _, s := range podgen.Shapes {
		b.Run(s.Name, func(b *testing.B) {
			body := benchBody(b, s)
			req, err := http.NewRequest(http.MethodPost, "https://router.test"+PathPods, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(body))
			rd := &rewindBody{}
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			loop(b, func() {
				rd.Reset(body)
				req.Body = rd
				floor.ServeHTTP(w, req)
			})
		})
	}
}

// floorHandler reads the body and writes a canned response.
func floorHandler() http.Handler {
	canned := wire.AppendReview(nil, &wire.Response{UID: "uid-1", Allowed: true, Patch: []byte(`[{"op":"add","path":"/metadata/labels/istio.io~1rev","value":"stable"}]`)})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		buf := wire.GetBuffer()
		body, _ := wire.ReadAll(req.Body, *buf, req.ContentLength)
		*buf = body[:0]
		wire.PutBuffer(buf)
		w.Header()["Content-Type"] = jsonContentType
		_, _ = w.Write(canned)
	})
}

// BenchmarkDecidePod: the routing decision alone, for the benchmark pod.
func BenchmarkDecidePod(b *testing.B) {
	f := newFixture(b, testPolicy)
	r, err := wire.DecodeReview(benchBody(b, podgen.Small))
	if err != nil {
		b.Fatal(err)
	}
	snap := f.store.Load()
	s := policy.PodSubject{
		Namespace: r.Namespace, GenerateName: r.Object.GenerateName, Labels: r.Object.Labels,
		Annotations: r.Object.Annotations, Owner: controllerOf(&r.Object), Draw: 1 << 62,
	}
	loop(b, func() {
		if d := snap.Policy.DecidePod(s); d.Revision == "" {
			b.Fatal("not routed")
		}
	})
}

// benchAdmit runs a's pod admission of body b.N times, after checking
// one response.
func benchAdmit(b *testing.B, a *Admitter, body []byte, check func(testing.TB, []byte)) {
	benchAdmits(b, a, [][]byte{body}, check)
}

// benchAdmits runs a's pod admission of the bodies in turn, b.N in all,
// after checking the response to the first: the CPU work an admission
// worker does for one request (decode, decide, patch, encode the
// response), on the benchmark's thread. Reading the body off the
// connection and handing the work to a worker are the HTTP server's part,
// measured with it (BenchmarkServeParallel, the load tool).
func benchAdmits(b *testing.B, a *Admitter, bodies [][]byte, check func(testing.TB, []byte)) {
	var out []byte
	next := 0
	admit := func() {
		body := bodies[next]
		if next++; next == len(bodies) {
			next = 0
		}
		code, resp := a.answer(body, resourcePods, a.admitPod)
		if code != http.StatusOK {
			b.Fatalf("HTTP %d: %s", code, resp.Message)
		}
		out = wire.AppendReview(out[:0], &resp)
	}
	admit()
	check(b, out)
	b.SetBytes(int64(len(bodies[0])))
	loop(b, admit)
}

// loop runs f for b's iterations on one locked OS thread and reports
// allocations and the thread's CPU time per iteration.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, ok := threadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if cpu1, _ := threadCPU(); ok && n > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/op")
	}
}

// checkRouted fails unless resp admits the pod with a patch.
func checkRouted(tb testing.TB, resp []byte) {
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(resp, &out); err != nil || out.Response == nil {
		tb.Fatalf("response %s: %v", resp, err)
	}
	if !out.Response.Allowed || len(out.Response.Patch) == 0 || string(out.Response.UID) != "uid-1" {
		tb.Fatalf("pod not routed: %s", resp)
	}
}

type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

var _ io.ReadCloser = (*rewindBody)(nil)

// discardWriter is a reusable ResponseWriter; it keeps the body only
// when asked, so the measured loop copies nothing.
type discardWriter struct {
	h    http.Header
	code int
	keep bool
	buf  []byte
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) { w.code = code }

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.keep {
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}
