package rollout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// holder is the Lease holder's POD_NAME.
func holder(ctx context.Context) string {
	l, err := env.Cluster.Client.CoordinationV1().Leases(localrouter.Namespace).Get(ctx, "canary-router-leader", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	name, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return name
}

// startStandby runs a second router replica, which serves no admissions
// (the webhook configuration points at the first) but takes part in the
// election.
func startStandby(ctx context.Context, name string) (*localrouter.Router, string, error) {
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(env.Dir, name+".log")
	if err := os.Setenv("POD_NAME", name); err != nil {
		return nil, "", err
	}
	defer os.Setenv("POD_NAME", "router")
	p, err := localrouter.Run(ctx, env.Bin, serveArgs(ports[0], ports[1]), logPath, ports[0], ports[1])
	return p, logPath, err
}

// The leader freezes (SIGSTOP) mid-hold, past its lease; the other
// replica takes over and, on a fault, rolls back; the old leader wakes
// (SIGCONT) with its view of a healthy hold. None of its writes lands, and
// the step and phase in the status object are the new leader's.
func TestFrozenLeaderMidHold(t *testing.T) {
	resetPolicy(t)
	const ns = "frozen-hold"
	managedNamespace(t, ns)
	createDeployments(t, ns, 6, 1)
	waitQuiet(t)
	ctx := harness.Context(t, 6*time.Minute)
	standby, standbyLog, err := startStandby(ctx, "router-2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Thaw(); standby.Stop(); <-standby.Exited() })
	// router-2 must lead (router serves the admissions the rollback needs):
	// restarting router hands it the Lease.
	stopRouter()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return holder(ctx) == "router-2", nil
	}); err != nil {
		t.Fatal("router-2 never led")
	}
	if err := startRouter(ctx); err != nil {
		t.Fatal(err)
	}
	tl := newTimeline()
	writePolicy(t, planDoc("rollback", map[int]string{1: "10m"}, 10, 50, 100))
	before := waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Step == 1 && s.Phase == rollout.PhaseHolding })
	data, _ := statusData(ctx)
	oldTerm, _ := controller.ParseToken(data[controller.TermKey])
	writes := harness.WatchTerms(t, ctx, env.Cluster.Client)
	frozen := time.Now()
	standby.Freeze()
	var newTerm controller.Token
	waitRollout(t, tl, 2*time.Minute, func(s *rollout.State) bool {
		d, _ := statusData(ctx)
		newTerm, _ = controller.ParseToken(d[controller.TermKey])
		return newTerm.Transitions > oldTerm.Transitions
	})
	takeover := time.Since(frozen)
	// The fault the new leader must act on, once it leads: the gate reads
	// the rejects of the last 20 s, shorter than a takeover.
	env.istiod.rejects.Add(3)
	st := waitRollout(t, tl, time.Minute, func(s *rollout.State) bool { return s.Phase != rollout.PhaseHolding })
	acted := st.Phase
	standby.Thaw()
	thawed := time.Now()
	st = waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseAborted })
	time.Sleep(max(0, 12*time.Second-time.Since(thawed))) // the old loops tick every 5 s
	tl.print(t, "frozen-hold")
	data, _ = statusData(harness.Context(t, 10*time.Second))
	final, _ := controller.ParseToken(data[controller.TermKey])
	last, _ := rollout.Decode(data)
	total, stale := writes.Stale(oldTerm)
	refused := 0
	if b, err := os.ReadFile(standbyLog); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "not leading") || strings.Contains(l, "deposed") {
				refused++
			}
		}
	}
	waitPods(t, "stable", 6, 2*time.Minute, ns)
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, ns)
	t.Logf("RESULT fencing-mid-hold: frozen_at_step=%d old_term=%d new_term=%d takeover=%s new_leader_acted=%s status_writes=%d old_term_writes_after_new=%d final_term=%d/%s step=%d phase=%s pods_stable=%d pods_canary=%d mismatches=%d unmeshed=%d old_leader_refusals_logged=%d",
		before.Step+1, oldTerm.Transitions, newTerm.Transitions, takeover.Round(100*time.Millisecond), acted, total, stale, final.Transitions, final.Holder,
		last.Step+1, last.Phase, perRev["stable"], perRev["canary"], mismatches, unmeshed, refused)
	if stale != 0 || final.Transitions < newTerm.Transitions || !strings.HasPrefix(final.Holder, "router_") || last.Phase != rollout.PhaseAborted {
		t.Errorf("old-term writes %d, final token %+v (new %+v), final phase %s", stale, final, newTerm, last.Phase)
	}
}
