package wire_test

import (
	"runtime"
	"testing"

	"github.com/canary-router/canary-router/test/podgen"
	"github.com/canary-router/canary-router/test/wiretest"
	"github.com/canary-router/canary-router/webhook/wire"
)

// BenchmarkDecodeReview: the decoder alone, and the typed decode with
// k8s.io/api types by sigs.k8s.io/json it is tested against.
func BenchmarkDecodeReview(b *testing.B) {
	for _, s := range podgen.Shapes {
		body := benchBody(b, s)
		b.Run("jsontext/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			loop(b, func() {
				if _, err := wire.DecodeReview(body); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("typed/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			loop(b, func() {
				if _, _, err := wiretest.DecodeKube(body); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
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
