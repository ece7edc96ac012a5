package migrate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
)

// faultTaint keeps new pods off the only node, so a restarted workload's
// new pods never turn Ready while its old ones keep serving: the fault a
// bad rollout shows.
const faultTaint = "canary-router.io/test-fault"

func setFault(t *testing.T, on bool) {
	t.Helper()
	patch := `{"spec":{"taints":null}}`
	if on {
		patch = fmt.Sprintf(`{"spec":{"taints":[{"key":%q,"value":"never-ready","effect":"NoSchedule"}]}}`, faultTaint)
	}
	if _, err := env.Cluster.Client.CoreV1().Nodes().Patch(harness.Context(t, 30*time.Second), cluster.FakeNodeName,
		types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A Deployment whose new pods never turn Ready pauses the migration after
// its batch, with a Warning Event on it and the reason in status; nothing
// else restarts until `migrate resume` after the fault is removed, and the
// failed Deployment is not restarted again.
func TestFailedBatchPauses(t *testing.T) {
	const ns = "fault"
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	managedNamespace(t, ns)
	createDeployments(t, ns, 4, 2)
	setFault(t, true)
	t.Cleanup(func() { setFault(t, false) })
	digest := writePolicy(t, policyDoc("workload", 100, "{batchSize: 1, interval: 0s, readinessTimeout: 15s}"))
	st := waitPhase(t, digest, migrate.PhasePaused, 2*time.Minute)
	_, ctl, err := migrationStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	failed := ""
	if len(st.Failures) > 0 {
		failed = st.Failures[len(st.Failures)-1].Name
	}
	events, err := env.Cluster.Client.CoreV1().Events(ns).List(harness.Context(t, 30*time.Second),
		metav1.ListOptions{FieldSelector: "reason=MigrationFailed"})
	if err != nil {
		t.Fatal(err)
	}
	warned := 0
	for _, e := range events.Items {
		if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == failed {
			warned++
		}
	}
	// Paused: nothing else restarts while the fault lasts.
	time.Sleep(10 * time.Second)
	whilePaused := sum(restarts(t, ns))
	setFault(t, false)
	cli(t, "migrate", "resume")
	st = waitPhase(t, digest, migrate.PhaseComplete, 2*time.Minute)
	after := restarts(t, ns)
	t.Logf("RESULT migrate-fault: paused=%v reason=%q failed=%s warning_events=%d restarts_while_paused=%d restarts_after_resume=%d failed_restarts=%d",
		ctl.Paused, ctl.PauseReason, failed, warned, whilePaused, sum(after), after[failed])
	if !ctl.Paused || failed == "" || !strings.Contains(ctl.PauseReason, failed) || warned == 0 {
		t.Errorf("paused %v reason %q failed %q events %d", ctl.Paused, ctl.PauseReason, failed, warned)
	}
	if whilePaused != 1 || sum(after) != 4 || after[failed] != 1 {
		t.Errorf("restarts while paused %d (want 1), after %v (want each once)", whilePaused, after)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
