package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/canary-router/canary-router/test/podgen"
	"github.com/canary-router/canary-router/webhook/policy"
)

// The in-process benchmarks behind docs/performance.md. Each admission
// goes through the real http.Handler, from the request body to the encoded
// response, with a request and a ResponseWriter reused across iterations
// so that only the router's own work is measured.

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
			benchHandler(b, f.admitter.PodHandler(), benchBody(b, s), checkRouted)
		})
	}
}

// BenchmarkFloor is the same request answered by a handler that reads the
// body and writes a canned response, as the load tool's floor server does:
// the cost of any handler at all.
func BenchmarkFloor(b *testing.B) {
	canned := appendReview(nil, &response{uid: "uid-1", allowed: true, patch: []byte(`[{"op":"add","path":"/metadata/labels/istio.io~1rev","value":"stable"}]`)})
	floor := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		buf := getBuffer()
		body, _ := readAll(req.Body, *buf, req.ContentLength)
		*buf = body[:0]
		putBuffer(buf)
		w.Header()["Content-Type"] = jsonContentType
		_, _ = w.Write(canned)
	})
	for _, s := range podgen.Shapes {
		b.Run(s.Name, func(b *testing.B) {
			benchHandler(b, floor, benchBody(b, s), checkRouted)
		})
	}
}

// BenchmarkDecodeReview: the decoder alone, and the encoding/json decoder
// it replaced.
func BenchmarkDecodeReview(b *testing.B) {
	for _, s := range podgen.Shapes {
		body := benchBody(b, s)
		b.Run("scanner/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeReview(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encoding-json/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeReviewStd(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecidePod: the routing decision alone, for the benchmark pod.
func BenchmarkDecidePod(b *testing.B) {
	f := newFixture(b, testPolicy)
	r, err := decodeReview(benchBody(b, podgen.Small))
	if err != nil {
		b.Fatal(err)
	}
	snap := f.store.Load()
	s := policy.PodSubject{
		Namespace: r.Namespace, GenerateName: r.Object.GenerateName, Labels: r.Object.Labels,
		Annotations: r.Object.Annotations, Owner: r.Object.controller(), Draw: 1 << 62,
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := snap.Policy.DecidePod(s); d.Revision == "" {
			b.Fatal("not routed")
		}
	}
}

// benchHandler serves body to h b.N times after checking one response.
func benchHandler(b *testing.B, h http.Handler, body []byte, check func(testing.TB, []byte)) {
	req, err := http.NewRequest(http.MethodPost, "https://router.test"+PathPods, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	rd := &rewindBody{}
	w := &discardWriter{h: http.Header{}}
	serve := func() {
		rd.Reset(body)
		req.Body = rd
		w.code, w.buf = 0, w.buf[:0]
		h.ServeHTTP(w, req)
	}
	w.keep = true
	serve()
	if w.code != http.StatusOK {
		b.Fatalf("HTTP %d: %s", w.code, w.buf)
	}
	check(b, w.buf)
	w.keep = false
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		serve()
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
