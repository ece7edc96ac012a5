package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/harness"
)

// The healthy path, 0 -> 5 -> 25 -> 50 -> 100: each step holds only after
// its migration completed, advances only after its hold with the gates
// passing, and at 100 every workload is on the canary. Then the block is
// removed with the targets still at stable 100: nothing moves back.
func TestHealthyPath(t *testing.T) {
	resetPolicy(t)
	// The suite's scenarios share the canary istiod: an earlier one's
	// fault (the frozen-leader test raises the rejects) must age out of
	// the gate's window first.
	waitQuiet(t)
	namespaces := []string{"healthy-a", "healthy-b"}
	for _, ns := range namespaces {
		managedNamespace(t, ns)
		createDeployments(t, ns, 6, 2)
	}
	tl := newTimeline()
	began := time.Now()
	writePolicy(t, planDoc("rollback", nil, 5, 25, 50, 100))
	st := waitRollout(t, tl, 8*time.Minute, func(s *rollout.State) bool {
		return s.Phase == rollout.PhaseComplete || s.Phase == rollout.PhaseRollingBack || s.Phase == rollout.PhasePaused
	})
	elapsed := time.Since(began)
	tl.print(t, "healthy")
	if st.Phase != rollout.PhaseComplete {
		t.Fatalf("rollout ended %s: %s", st.Phase, st.Reason)
	}
	// Every step held (its migration completed) before the next began.
	held := 0
	for i, k := range tl.seen {
		if strings.HasSuffix(k, "/Holding") {
			held++
		}
		if strings.HasSuffix(k, "/Progressing") && i > 0 && !strings.HasSuffix(tl.seen[i-1], "/Holding") {
			t.Errorf("step entered without the previous one holding: %v", tl.seen)
		}
	}
	waitPods(t, "canary", 24, 2*time.Minute, namespaces...)
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, namespaces...)
	t.Logf("RESULT rollout-healthy: steps=4 phase=%s holds_seen=%d pods_canary=%d pods_stable=%d mismatches=%d unmeshed=%d elapsed=%s",
		st.Phase, held, perRev["canary"], perRev["stable"], mismatches, unmeshed, elapsed.Round(100*time.Millisecond))
	if held < 4 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("holds %d, mismatches %d, unmeshed %d", held, mismatches, unmeshed)
	}
	t.Logf("rollout status:\n%s", cli(t, "rollout", "status"))
	blockRemovedAfterComplete(t, namespaces)
}

// blockRemovedAfterComplete removes the rollout block of a completed
// rollout while targets still say stable at 100: routing stays at the
// completed weights, so no workload is restarted and every pod stays on
// the canary; once the targets agree, the leader removes the weights.
func blockRemovedAfterComplete(t *testing.T, namespaces []string) {
	rs := 0
	for _, ns := range namespaces {
		rs += replicaSets(t, ns)
	}
	writePolicy(t, harness.PolicyYAML("workload", "rollout", 100, 0)+migration)
	time.Sleep(15 * time.Second) // several leader passes and migration re-plans
	data, err := statusData(harness.Context(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	perRev, _, unmeshed := env.PodsByRevision(t, true, namespaces...)
	after := 0
	for _, ns := range namespaces {
		after += replicaSets(t, ns)
	}
	t.Logf("RESULT rollout-block-removed-after-complete: weights_kept=%v pods_canary=%d pods_stable=%d unmeshed=%d replicasets_before=%d after=%d",
		data[rollout.WeightsKey] != "", perRev["canary"], perRev["stable"], unmeshed, rs, after)
	if data[rollout.WeightsKey] == "" || perRev["stable"] != 0 || after != rs {
		t.Errorf("removing the completed rollout's block moved workloads: weights key %q, pods %v, replica sets %d -> %d",
			data[rollout.WeightsKey], perRev, rs, after)
	}
	writePolicy(t, harness.PolicyYAML("workload", "rollout", 0, 100)+migration)
	waitCleared(t)
}

// A canary whose istiod's pilot_total_xds_rejects starts rising at 25
// percent is rolled back: the rollback starts within the gate interval,
// the scrape interval and 10 s of the fault, and every workload moved to
// the canary goes back to stable.
func TestBadCanaryRollsBack(t *testing.T) {
	resetPolicy(t)
	// Names whose workloads put some on the canary at 5 percent (the
	// router's hashing): a step with no canary pods to judge never
	// completes, and bad-a/bad-b have none there.
	namespaces := []string{"fault-a", "fault-b"}
	for _, ns := range namespaces {
		managedNamespace(t, ns)
		createDeployments(t, ns, 6, 2)
	}
	waitQuiet(t)
	tl := newTimeline()
	writePolicy(t, planDoc("rollback", map[int]string{1: "2m"}, 5, 25, 50, 100))
	waitRollout(t, tl, 5*time.Minute, func(s *rollout.State) bool { return s.Step == 1 && s.Phase == rollout.PhaseHolding })
	moved, _, _ := env.PodsByRevision(t, true, namespaces...)
	faultAt := time.Now()
	env.istiod.rejects.Add(3)
	st := waitRollout(t, tl, time.Minute, func(s *rollout.State) bool { return s.Phase != rollout.PhaseHolding })
	detect := st.LastTransition.Sub(faultAt)
	if st.Phase != rollout.PhaseRollingBack {
		tl.print(t, "bad")
		t.Fatalf("after the fault: %s (%s)", st.Phase, st.Reason)
	}
	st = waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseAborted })
	tl.print(t, "bad")
	waitPods(t, "stable", 24, 2*time.Minute, namespaces...)
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, namespaces...)
	bound := 2*time.Second + env.prom.scrapeInt + 10*time.Second
	t.Logf("RESULT rollout-bad-canary: step=%d canary_pods_at_fault=%d fault_to_rollback=%s bound=%s phase=%s pods_stable=%d pods_canary=%d mismatches=%d unmeshed=%d reason=%q",
		st.Step+1, moved["canary"], detect.Round(100*time.Millisecond), bound, st.Phase, perRev["stable"], perRev["canary"], mismatches, unmeshed, st.Reason)
	if detect > bound || moved["canary"] == 0 || perRev["canary"] != 0 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("detect %s (bound %s), canary pods at fault %d, after %v, mismatches %d, unmeshed %d",
			detect, bound, moved["canary"], perRev, mismatches, unmeshed)
	}
}

// Prometheus unreachable during a hold: the rollout pauses with that
// reason and resumes by itself once Prometheus answers again.
func TestPrometheusUnreachablePauses(t *testing.T) {
	resetPolicy(t)
	managedNamespace(t, "prom-a")
	createDeployments(t, "prom-a", 4, 2)
	waitQuiet(t)
	tl := newTimeline()
	writePolicy(t, planDoc("rollback", map[int]string{0: "2m"}, 25, 100))
	waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseHolding })
	env.prom.stop()
	downAt := time.Now()
	st := waitRollout(t, tl, time.Minute, func(s *rollout.State) bool { return s.Phase != rollout.PhaseHolding })
	paused, reason := st.Phase, st.Reason
	pausedAfter := time.Since(downAt)
	if err := env.prom.start(harness.Context(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	st = waitRollout(t, tl, time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseHolding })
	tl.print(t, "prometheus")
	t.Logf("RESULT rollout-prometheus-unreachable: paused=%s after=%s reason=%q resumed=%s step=%d",
		paused, pausedAfter.Round(100*time.Millisecond), reason, st.Phase, st.Step+1)
	if paused != rollout.PhasePaused || !strings.Contains(reason, "unknown") || st.Step != 0 {
		t.Errorf("paused %s (%s), then %s at step %d", paused, reason, st.Phase, st.Step+1)
	}
}
