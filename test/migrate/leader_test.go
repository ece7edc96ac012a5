package migrate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

const leaseName = "canary-router-leader"

// leader returns the replica holding the Lease.
func leader(ctx context.Context) (string, error) {
	l, err := env.Cluster.Client.CoordinationV1().Leases(localrouter.Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return "", err
	}
	name, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return name, nil
}

// makeLeader hands the Lease to replica name: while another replica
// holds it, that one stops (releasing the Lease) and starts again only
// once name holds it. Restarting at once would race the campaigner, whose
// retries are 2 s apart, and a fresh process usually wins.
func makeLeader(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	who, _ := leader(ctx)
	if who == name {
		return
	}
	var stopped []*replica
	for n, r := range env.replicas {
		if n != name && r.proc != nil {
			r.stop()
			stopped = append(stopped, r)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		who, _ = leader(ctx)
		return who == name, nil
	}); err != nil {
		t.Fatalf("%s never led (the Lease names %q)", name, who)
	}
	for _, r := range stopped {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The leader is killed mid-migration: the other replica takes over
// within the lease duration and finishes, and no workload restarts twice.
func TestLeaderKilled(t *testing.T) {
	const ns = "leader"
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	managedNamespace(t, ns)
	createDeployments(t, ns, 12, 2)
	// Admissions go to router-b, so router-a must lead to be killed.
	ctx := harness.Context(t, 2*time.Minute)
	makeLeader(t, ctx, "router-a")
	digest := writePolicy(t, policyDoc("workload", 100, "{batchSize: 2, interval: 3s, readinessTimeout: 2m}"))
	// Mid-migration: after the second batch started.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		st, _, err := migrationStatus(ctx)
		return err == nil && st.Digest == digest && st.Batch != nil && st.Batch.Index >= 2, nil
	}); err != nil {
		st, _, _ := migrationStatus(context.Background())
		dumpLogs(t)
		t.Logf("plan now:\n%s", cli(t, "migrate"))
		t.Fatalf("the migration never reached its second batch: %+v", st)
	}
	before, _, _ := migrationStatus(ctx)
	a := env.replicas["router-a"]
	killed := time.Now()
	a.proc.Kill()
	<-a.proc.Exited()
	a.proc = nil
	var takeover time.Duration
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		who, _ := leader(ctx)
		takeover = time.Since(killed)
		return who == "router-b", nil
	}); err != nil {
		t.Fatal("router-b never took over")
	}
	st := waitPhase(t, digest, migrate.PhaseComplete, 90*time.Second)
	finished := time.Since(killed)
	// router-a comes back as a follower for the suite's next tests.
	if err := a.start(harness.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := restarts(t, ns)
	twice := 0
	for name, n := range r {
		if n != 1 {
			twice++
			t.Errorf("%s restarted %d times", name, n)
		}
	}
	if twice > 0 {
		dumpLogs(t)
		t.Logf("status %+v\nplan now:\n%s", st, cli(t, "migrate"))
	}
	_, mismatches, unmeshed := env.PodsByRevision(t, true, ns)
	t.Logf("RESULT migrate-leader: killed_at_batch=%d takeover=%s lease_duration=15s finished_after_kill=%s restarted=%d deployments=%d restarted_twice=%d mismatches=%d unmeshed=%d",
		before.Batch.Index, takeover.Round(100*time.Millisecond), finished.Round(100*time.Millisecond), sum(r), len(r), twice, mismatches, unmeshed)
	// A standby may take the Lease only LeaseDuration (15 s) after the dead
	// leader's last renewal, and it retries every RetryPeriod (2 s, jittered);
	// 25 s leaves room for a loaded machine.
	if takeover > 25*time.Second || sum(r) != 12 || st.Restarted != 12 {
		t.Errorf("takeover %s, restarts %d, status restarted %d", takeover, sum(r), st.Restarted)
	}
}

// Namespace granularity, 20 namespaces, 0 -> 50 percent: only the
// namespaces whose choice changed are relabelled, and only their
// workloads restart.
func TestNamespaceGranularity(t *testing.T) {
	writePolicyAndWait(t, policyDoc("namespace", 0, ""))
	var namespaces []string
	for i := range 20 {
		ns := fmt.Sprintf("nsg-%02d", i)
		managedNamespace(t, ns)
		namespaces = append(namespaces, ns)
	}
	for _, ns := range namespaces {
		env.CreateDeployment(t, harness.Deployment(ns, "app", 1))
	}
	for _, ns := range namespaces {
		env.WaitAvailable(t, harness.Context(t, 2*time.Minute), ns, "app", 1)
	}
	doc := policyDoc("namespace", 50, "{batchSize: 5, interval: 0s, readinessTimeout: 2m}")
	p := parsePolicy(t, doc)
	want := map[string]bool{}
	for _, ns := range namespaces {
		if migrate.NamespaceChoice(p, ns) == "canary" {
			want[ns] = true
		}
	}
	digest := writePolicy(t, doc)
	st := waitPhase(t, digest, migrate.PhaseComplete, 3*time.Minute)
	relabelled, restartedNS, wrong := 0, 0, 0
	for _, ns := range namespaces {
		n, err := env.Cluster.Client.CoreV1().Namespaces().Get(harness.Context(t, 10*time.Second), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		moved := n.Labels["istio.io/rev"] == "canary"
		r := restarts(t, ns)["app"]
		if moved {
			relabelled++
		}
		if r > 0 {
			restartedNS++
		}
		if moved != want[ns] || (r == 1) != want[ns] || r > 1 {
			wrong++
			t.Errorf("%s: relabelled %v, restarted %d, policy moves it %v", ns, moved, r, want[ns])
		}
	}
	perRev, _, unmeshed := env.PodsByRevision(t, false, namespaces...)
	drift := len(cliPlan(t).Moves)
	t.Logf("RESULT migrate-namespace: namespaces=20 canary=50%% moved_by_policy=%d relabelled=%d restarted=%d wrong=%d status_restarted=%d final_drift=%d pods=%v unmeshed=%d",
		len(want), relabelled, restartedNS, wrong, st.Restarted, drift, perRev, unmeshed)
	if drift != 0 || unmeshed != 0 {
		t.Errorf("drift %d, unmeshed %d", drift, unmeshed)
	}
}
