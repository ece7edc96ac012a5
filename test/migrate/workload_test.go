package migrate

import (
	"fmt"
	"testing"
	"time"

	"github.com/canary-router/canary-router/controller/migrate"
)

// 30 Deployments x 3 replicas in 3 namespaces, workload granularity, 0 ->
// 30 percent: exactly the Deployments the policy moves restart, at most
// the batch size at once, and afterwards nothing has drifted.
func TestWorkloadGranularity(t *testing.T) {
	const batch = 4
	namespaces := []string{"wl-a", "wl-b", "wl-c"}
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	for _, ns := range namespaces {
		managedNamespace(t, ns)
		createDeployments(t, ns, 10, 3)
	}
	doc := policyDoc("workload", 30, fmt.Sprintf("{batchSize: %d, interval: 0s, readinessTimeout: 2m}", batch))
	p := parsePolicy(t, doc)
	want := map[string]bool{}
	for _, ns := range namespaces {
		for i := range 10 {
			ref := migrate.Ref{Namespace: ns, Kind: migrate.KindDeployment, Name: fmt.Sprintf("app-%02d", i)}
			if migrate.WorkloadChoice(p, ref) == "canary" {
				want[ns+"/"+ref.Name] = true
			}
		}
	}
	watch := watchRolling(namespaces...)
	began := time.Now()
	digest := writePolicy(t, doc)
	st := waitPhase(t, digest, migrate.PhaseComplete, 5*time.Minute)
	elapsed := time.Since(began)
	maxRolling := watch.Max()

	restarted, wrong := 0, 0
	for _, ns := range namespaces {
		for name, n := range restarts(t, ns) {
			restarted += n
			if (n == 1) != want[ns+"/"+name] || n > 1 {
				wrong++
				t.Errorf("%s/%s restarted %d times; the policy moves it: %v", ns, name, n, want[ns+"/"+name])
			}
		}
	}
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, namespaces...)
	drift := len(cliPlan(t).Moves)
	t.Logf("RESULT migrate-workload: deployments=30 replicas=3 canary=30%% drifted=%d restarted=%d wrong=%d batches=%d batch_size=%d max_rolling=%d final_drift=%d mismatches=%d unmeshed=%d pods_stable=%d pods_canary=%d elapsed=%s",
		len(want), restarted, wrong, st.Batches, batch, maxRolling, drift, mismatches, unmeshed, perRev["stable"], perRev["canary"], elapsed.Round(100*time.Millisecond))
	if maxRolling > batch {
		t.Errorf("%d Deployments rolling at once, batch size %d", maxRolling, batch)
	}
	if restarted != len(want) || drift != 0 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("restarted %d (want %d), drift %d, mismatches %d, unmeshed %d", restarted, len(want), drift, mismatches, unmeshed)
	}
}

// Pod granularity, 20 replicas, 0 -> 25 percent: one restart, and the new
// ReplicaSet's pods split 15/5.
func TestPodGranularity(t *testing.T) {
	const ns = "pod-a"
	writePolicyAndWait(t, policyDoc("pod", 0, ""))
	managedNamespace(t, ns)
	createDeployments(t, ns, 1, 20)
	digest := writePolicy(t, policyDoc("pod", 25, "{batchSize: 2, interval: 0s, readinessTimeout: 2m}"))
	st := waitPhase(t, digest, migrate.PhaseComplete, 3*time.Minute)
	n := restarts(t, ns)["app-00"]
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, ns)
	t.Logf("RESULT migrate-pod: replicas=20 canary=25%% restarts=%d restarted=%d canary_pods=%d stable_pods=%d mismatches=%d unmeshed=%d",
		n, st.Restarted, perRev["canary"], perRev["stable"], mismatches, unmeshed)
	if n != 1 || perRev["canary"] != 5 || perRev["stable"] != 15 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("restarts %d, split %v, mismatches %d, unmeshed %d", n, perRev, mismatches, unmeshed)
	}
}
