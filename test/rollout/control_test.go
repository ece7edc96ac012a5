package rollout

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// operatorKubeconfig is a ServiceAccount bound only to the documented
// Role (deploy/operator/rollout-operator.yaml): no cluster-admin.
func operatorKubeconfig(t *testing.T) string {
	t.Helper()
	ctx := harness.Context(t, time.Minute)
	role, err := filepath.Abs(filepath.Join("..", "..", "deploy", "operator", "rollout-operator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := env.Cluster.Kubectl(ctx, "apply", "-f", role); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	path, _, err := env.ServiceAccountKubeconfig(ctx, localrouter.Namespace, "rollout-operator")
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Cluster.Client.RbacV1().RoleBindings(localrouter.Namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "rollout-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "canary-router-rollout-operator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "rollout-operator", Namespace: localrouter.Namespace}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// asOperator runs canary-router rollout <action> with the operator's
// kubeconfig.
func asOperator(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := exec.Command(env.Bin, append(append([]string{"rollout"}, args...), "--kubeconfig", kubeconfig)...).CombinedOutput()
	if err != nil {
		t.Fatalf("canary-router rollout %v as the operator: %v\n%s", args, err, out)
	}
	return string(out)
}

// pause, resume, promote, abort and retry through the CLI, as a user with
// only the documented namespaced Role.
func TestOperatorCommands(t *testing.T) {
	resetPolicy(t)
	// ops-b, not ops-a: the router's hashing puts one of its four
	// workloads on the canary at 10 percent (ops-a has none below 40), and
	// a step with no canary pods to judge never completes.
	managedNamespace(t, "ops-b")
	createDeployments(t, "ops-b", 4, 2)
	kc := operatorKubeconfig(t)
	// The operator may not read the policy, let alone write it.
	if out, err := exec.Command(env.Bin, "migrate", "--kubeconfig", kc).CombinedOutput(); err == nil {
		t.Errorf("the operator could plan a migration (reads the policy):\n%s", out)
	}
	tl := newTimeline()
	writePolicy(t, planDoc("pause", map[int]string{0: "manual", 1: "manual"}, 10, 50, 100))
	holding := func(step int) func(*rollout.State) bool {
		return func(s *rollout.State) bool { return s.Step == step && s.Phase == rollout.PhaseHolding }
	}
	waitRollout(t, tl, 3*time.Minute, holding(0))
	var results []string
	step := func(args []string, want func(*rollout.State) bool) {
		t.Helper()
		asOperator(t, kc, args...)
		st := waitRollout(t, tl, 2*time.Minute, want)
		results = append(results, args[0]+"="+string(st.Phase)+"@"+itoa(st.Step+1))
	}
	step([]string{"pause", "--reason", "change freeze"}, func(s *rollout.State) bool {
		return s.Phase == rollout.PhasePaused && strings.Contains(s.Reason, "change freeze")
	})
	step([]string{"resume"}, holding(0))
	step([]string{"promote"}, holding(1))
	step([]string{"abort"}, func(s *rollout.State) bool { return s.Phase == rollout.PhaseAborted })
	step([]string{"retry"}, func(s *rollout.State) bool { return s.Attempt == 1 && s.Step == 0 && s.Phase == rollout.PhaseHolding })
	status := asOperator(t, kc, "status")
	tl.print(t, "operator")
	t.Logf("RESULT rollout-operator-commands: %s status_ok=%v", strings.Join(results, " "), strings.Contains(status, "Phase:    Holding"))
	if !strings.Contains(status, "Phase:    Holding") {
		t.Errorf("rollout status as the operator:\n%s", status)
	}
}

// The router restarted, then killed, mid-hold: the rollout carries on at
// the same step, its hold and its finished migration kept.
func TestRestartMidHold(t *testing.T) {
	resetPolicy(t)
	managedNamespace(t, "restart-a")
	createDeployments(t, "restart-a", 6, 2)
	tl := newTimeline()
	// 25, not 10, percent first: at 10 none of the six workloads is on the
	// canary, and a step with no canary pods to judge never completes.
	writePolicy(t, planDoc("pause", map[int]string{1: "10m"}, 25, 50, 100))
	before := waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Step == 1 && s.Phase == rollout.PhaseHolding })
	rs := replicaSets(t, "restart-a")
	for _, how := range []string{"restart", "kill"} {
		at := time.Now()
		if how == "kill" {
			env.router.Kill()
			<-env.router.Exited()
			env.router = nil
		} else {
			stopRouter()
		}
		if err := startRouter(harness.Context(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// A killed leader holds the Lease until it expires (15 s).
		st := waitRollout(t, tl, 2*time.Minute, func(s *rollout.State) bool { return s.LastMeasured.After(at) })
		t.Logf("RESULT rollout-%s-mid-hold: step=%d phase=%s hold_kept=%v attempt=%d replicasets_before=%d after=%d resumed_after=%s",
			how, st.Step+1, st.Phase, st.HoldStarted.Equal(before.HoldStarted), st.Attempt, rs, replicaSets(t, "restart-a"),
			time.Since(at).Round(100*time.Millisecond))
		if st.Step != 1 || st.Phase != rollout.PhaseHolding || !st.HoldStarted.Equal(before.HoldStarted) || replicaSets(t, "restart-a") != rs {
			t.Errorf("%s: %+v", how, st)
		}
	}
	tl.print(t, "restart")
}

func replicaSets(t *testing.T, ns string) int {
	t.Helper()
	l, err := env.Cluster.Client.AppsV1().ReplicaSets(ns).List(harness.Context(t, 30*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

func itoa(i int) string { return strconv.Itoa(i) }

// The status object deleted mid-hold: the rollout stops at the step in
// force (Paused, "state lost", the migration paused), never starts again
// from step 1, and moves no workload; an operator's resume carries on.
func TestStatusObjectDeletedMidHold(t *testing.T) {
	resetPolicy(t)
	managedNamespace(t, "memory-a")
	createDeployments(t, "memory-a", 4, 2)
	tl := newTimeline()
	writePolicy(t, planDoc("pause", map[int]string{1: "10m"}, 25, 50, 100))
	waitRollout(t, tl, 3*time.Minute, func(s *rollout.State) bool { return s.Step == 1 && s.Phase == rollout.PhaseHolding })
	rs := replicaSets(t, "memory-a")
	at := time.Now()
	if err := env.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Delete(harness.Context(t, 10*time.Second),
		migrate.StatusConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, tl, time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhasePaused })
	stoppedAfter := time.Since(at)
	time.Sleep(10 * time.Second) // leader passes and migration re-plans
	data, err := statusData(harness.Context(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st, _ = rollout.Decode(data)
	restarted := replicaSets(t, "memory-a") - rs
	t.Logf("RESULT rollout-status-deleted-mid-hold: phase=%s step=%d restarted_from_step_1=%v workloads_restarted=%d migration_paused=%s stopped_after=%s reason=%q",
		st.Phase, st.Step+1, st.Step == 0, restarted, data[migrate.PausedKey], stoppedAfter.Round(100*time.Millisecond), st.Reason)
	if st.Phase != rollout.PhasePaused || st.Step != 1 || !strings.Contains(st.Reason, "state lost") || restarted != 0 || data[migrate.PausedKey] != "true" {
		t.Errorf("after the status object was deleted: %+v, %d workloads restarted, migration paused %q", st, restarted, data[migrate.PausedKey])
	}
	cli(t, "rollout", "resume")
	st = waitRollout(t, tl, 2*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseHolding })
	tl.print(t, "lost")
	if st.Step != 1 {
		t.Errorf("resume went to step %d, want 2", st.Step+1)
	}
}
