package webhook

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/canary-router/canary-router/istio"
)

// TestNotAnsweringFallsBack: a revision whose injector fails the active
// check is routed around like one without ready endpoints, with its own
// cause in the decision, the warning and the fallback metric.
func TestNotAnsweringFallsBack(t *testing.T) {
	why := "the injector webhook of revision canary (istio-sidecar-injector-canary/rev.namespace.sidecar-injector.istio.io at https://istiod-canary.istio-system.svc:443/inject) failed 2 checks in a row (last: EOF)"
	s := cluster("canary-router", "stable", "canary").WithNotAnswering(map[string]string{"canary": why})
	f := gated(t, workload5050, s, nil)
	if got := testutil.ToFloat64(f.metrics.routing.fallbacks.WithLabelValues("canary", "not-answering")); got != 0 {
		t.Fatalf("fallbacks{canary,not-answering} = %v before any pod", got)
	}
	resp, rev, d := admitPodResult(t, f, canaryUnit(t), false)
	if !resp.allowed || rev != "stable" || d.Reason != "fallback" || d.Avoided != "canary" || d.Cause != "not-answering" {
		t.Fatalf("allowed %v label %q decision %+v, want a fallback from canary to stable", resp.allowed, rev, d)
	}
	if !resp.warned("instead of canary: " + why) {
		t.Errorf("warnings %q do not carry the check's detail", resp.warnings)
	}
	if got := testutil.ToFloat64(f.metrics.routing.fallbacks.WithLabelValues("canary", "not-answering")); got != 1 {
		t.Errorf("fallbacks{canary,not-answering} = %v, want 1", got)
	}
}

func TestObserveProbes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, "test")
	m.ObserveProbes([]istio.ProbeResult{
		{Revision: "stable", Latency: 3 * time.Millisecond},
		{Revision: "canary", Err: errors.New("EOF"), Latency: time.Millisecond, Down: true},
	})
	if got := testutil.ToFloat64(m.probe.up.WithLabelValues("stable")); got != 1 {
		t.Errorf("up{stable} = %v", got)
	}
	if got := testutil.ToFloat64(m.probe.up.WithLabelValues("canary")); got != 0 {
		t.Errorf("up{canary} = %v", got)
	}
	if got := testutil.ToFloat64(m.probe.failures.WithLabelValues("canary")); got != 1 {
		t.Errorf("failures{canary} = %v", got)
	}
	// canary leaves the cluster: its series go.
	m.ObserveProbes([]istio.ProbeResult{{Revision: "stable", Latency: time.Millisecond}})
	if n := testutil.CollectAndCount(m.probe.up); n != 1 {
		t.Errorf("%d up series after canary left, want 1", n)
	}
	if n := testutil.CollectAndCount(m.probe.duration); n != 1 {
		t.Errorf("%d duration series after canary left, want 1", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if p.Metric == "canary_router_injector_probe_duration_seconds" || p.Metric == "canary_router_injector_up" || p.Metric == "canary_router_injector_probe_failures_total" {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}
