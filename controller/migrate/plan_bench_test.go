package migrate

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

// scaleInput is the cluster view of the scale acceptance item: 10,000
// workloads and 100,000 pods (10 each) in 100 namespaces, every pod on
// stable, planned for a 30 percent canary.
func scaleInput(t testing.TB) (Input, []PodRecord) {
	p := mustPolicy(t, "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\n")
	in := Input{Policy: p, Digest: "d1", Revisions: map[string]string{"stable": "1-24", "canary": "1-25"}}
	var recs []PodRecord
	for n := range 100 {
		ns := fmt.Sprintf("ns-%03d", n)
		in.Namespaces = append(in.Namespaces, Namespace{Name: ns, Labels: map[string]string{policy.LabelOptIn: policy.OptInEnabled}})
		for w := range 100 {
			wl := healthy(ns, KindDeployment, fmt.Sprintf("app-%03d", w), 10)
			in.Workloads = append(in.Workloads, wl)
			for range 10 {
				recs = append(recs, PodRecord{Unit: wl.Ref, Injected: "1-24"})
			}
		}
	}
	return in, recs
}

// BenchmarkPlanScale is one pass's planning work from the informer caches:
// aggregating 100,000 pod records and planning 10,000 workloads.
func BenchmarkPlanScale(b *testing.B) {
	in, recs := scaleInput(b)
	b.ResetTimer()
	for b.Loop() {
		in.Pods = Aggregate(recs)
		_ = NewPlan(in, 10)
	}
}

// TestPlanScale checks the acceptance bound (a plan for 10,000 workloads
// and 100,000 pods in under 1 s) and prints the figures for
// docs/performance.md.
func TestPlanScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale figures: run without -short")
	}
	in, recs := scaleInput(t)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	began := time.Now()
	in.Pods = Aggregate(recs)
	plan := NewPlan(in, 10)
	took := time.Since(began)
	runtime.ReadMemStats(&after)
	t.Logf("RESULT migrate-plan-scale: workloads=%d pods=%d moves=%d batches=%d plan_time=%s allocated=%.1fMB",
		len(in.Workloads), len(recs), len(plan.Moves), len(plan.Batches()), took.Round(time.Millisecond),
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if took > time.Second {
		t.Errorf("plan took %s, bound 1s", took)
	}
}
