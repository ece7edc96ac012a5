package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
)

// setFault taints the only node so new pods never start, while the old
// ones keep serving: canary-injected pods that never turn Ready.
func setFault(t *testing.T, on bool) {
	t.Helper()
	patch := `{"spec":{"taints":null}}`
	if on {
		patch = `{"spec":{"taints":[{"key":"canary-router.io/test-fault","value":"never-ready","effect":"NoSchedule"}]}}`
	}
	if _, err := env.Cluster.Client.CoreV1().Nodes().Patch(harness.Context(t, 30*time.Second), cluster.FakeNodeName,
		types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Canary-injected pods that stop turning Ready at 25 percent: the step's
// migration fails its readiness timeout, the rollout rolls back, and once
// the fault is gone every workload is back on stable.
func TestUnreadyCanaryRollsBack(t *testing.T) {
	resetPolicy(t)
	// Names whose workloads put some on the canary at 5 percent: a step
	// with no canary pods to judge never completes.
	namespaces := []string{"unready-a", "unready-b"}
	for _, ns := range namespaces {
		managedNamespace(t, ns)
		createDeployments(t, ns, 6, 2)
	}
	waitQuiet(t)
	tl := newTimeline()
	const timeout = 15 * time.Second
	doc := strings.Replace(planDoc("rollback", map[int]string{0: "10s"}, 5, 25, 100),
		"readinessTimeout: 2m", fmt.Sprintf("readinessTimeout: %s", timeout), 1)
	writePolicy(t, doc)
	waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Step == 0 && s.Phase == rollout.PhaseHolding })
	setFault(t, true)
	t.Cleanup(func() { setFault(t, false) })
	faultAt := time.Now()
	st := waitRollout(t, tl, 2*time.Minute, func(s *rollout.State) bool {
		return s.Phase == rollout.PhaseRollingBack || s.Phase == rollout.PhasePaused
	})
	detect := st.LastTransition.Sub(faultAt)
	reason := st.Reason
	if st.Phase != rollout.PhaseRollingBack {
		tl.print(t, "unready")
		t.Fatalf("after the fault: %s (%s)", st.Phase, st.Reason)
	}
	setFault(t, false)
	st = waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseAborted })
	tl.print(t, "unready")
	waitPods(t, "stable", 24, 3*time.Minute, namespaces...)
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, namespaces...)
	// The step's batch has its readiness timeout to turn ready; then the
	// rollout acts within its own poll.
	bound := 10*time.Second + timeout + 2*time.Second + 10*time.Second
	t.Logf("RESULT rollout-unready-canary: step=%d fault_to_rollback=%s bound=%s phase=%s pods_stable=%d pods_canary=%d mismatches=%d unmeshed=%d reason=%q",
		st.Step+1, detect.Round(100*time.Millisecond), bound, st.Phase, perRev["stable"], perRev["canary"], mismatches, unmeshed, reason)
	if detect > bound || !strings.Contains(reason, "migration of step 2 failed") || perRev["canary"] != 0 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("detect %s (bound %s), reason %q, after %v, mismatches %d, unmeshed %d", detect, bound, reason, perRev, mismatches, unmeshed)
	}
}
