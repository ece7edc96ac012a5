package migrate

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

func statusToken(ctx context.Context) controller.Token {
	cm, err := env.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		return controller.Token{}
	}
	tok, _ := controller.ParseToken(cm.Data[controller.TermKey])
	return tok
}

// The leader freezes (SIGSTOP) mid-batch, past its lease; the other
// replica takes over and carries the migration on; the old one wakes
// (SIGCONT) with a pass it planned before the freeze. None of its writes
// lands, no workload restarts twice, and the status object is the new
// leader's.
func TestFrozenLeaderMidBatch(t *testing.T) {
	const ns = "frozen"
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	managedNamespace(t, ns)
	createDeployments(t, ns, 10, 1)
	ctx := harness.Context(t, 4*time.Minute)
	makeLeader(t, ctx, "router-a")
	writes := harness.WatchTerms(t, ctx, env.Cluster.Client)
	digest := writePolicy(t, policyDoc("workload", 100, "{batchSize: 2, interval: 2s, readinessTimeout: 2m}"))
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		st, _, err := migrationStatus(ctx)
		return err == nil && st.Digest == digest && st.Batch != nil && st.Batch.Index >= 2, nil
	}); err != nil {
		dumpLogs(t)
		t.Fatal("the migration never reached its second batch")
	}
	before, _, _ := migrationStatus(ctx)
	oldTerm := statusToken(ctx)
	a := env.replicas["router-a"]
	aLog := a.logPath
	frozen := time.Now()
	a.proc.Freeze()
	t.Cleanup(func() {
		if a.proc != nil {
			a.proc.Thaw()
		}
	})
	// Let router-b take over and act: its term's token on the status
	// object and a batch of its own started.
	var newTerm controller.Token
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		newTerm = statusToken(ctx)
		st, _, _ := migrationStatus(ctx)
		return newTerm.Transitions > oldTerm.Transitions && st.Batch != nil && st.Batch.Index > before.Batch.Index, nil
	}); err != nil {
		t.Fatalf("router-b never acted: token %+v (old %+v)", newTerm, oldTerm)
	}
	takeover := time.Since(frozen)
	a.proc.Thaw()
	thawed := time.Now()
	st := waitPhase(t, digest, migrate.PhaseComplete, 2*time.Minute)
	// Give the old process's loops time to try (its passes tick every 10 s).
	time.Sleep(max(0, 12*time.Second-time.Since(thawed)))
	total, stale := writes.Stale(oldTerm)
	r := restarts(t, ns)
	twice := 0
	for name, n := range r {
		if n != 1 {
			twice++
			t.Errorf("%s restarted %d times", name, n)
		}
	}
	final := statusToken(harness.Context(t, 10*time.Second))
	refused := 0
	if b, err := os.ReadFile(aLog); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "not leading") || strings.Contains(l, "deposed") {
				refused++
			}
		}
	}
	t.Logf("RESULT fencing-mid-batch: frozen_at_batch=%d old_term=%d new_term=%d takeover=%s status_writes=%d old_term_writes_after_new=%d restarted=%d deployments=%d restarted_twice=%d final_term=%d/%s phase=%s old_leader_refusals_logged=%d",
		before.Batch.Index, oldTerm.Transitions, newTerm.Transitions, takeover.Round(100*time.Millisecond), total, stale, sum(r), len(r), twice,
		final.Transitions, final.Holder, st.Phase, refused)
	if stale != 0 || twice != 0 || final.Transitions < newTerm.Transitions || sum(r) != 10 {
		dumpLogs(t)
		t.Errorf("old-term writes %d, restarted twice %d, final token %+v (new term %+v), restarts %d", stale, twice, final, newTerm, sum(r))
	}
}
