package rollout

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

const migration = "migration: {batchSize: 5, interval: 0s, readinessTimeout: 2m}\n"

// planDoc is the two-target policy with a rollout walking steps (canary
// weights, each with hold) and one PromQL gate on the canary's rejects.
func planDoc(onFailure string, holds map[int]string, canary ...int) string {
	var b strings.Builder
	b.WriteString(harness.PolicyYAML("workload", "rollout", 100, 0))
	b.WriteString(migration)
	fmt.Fprintf(&b, "rollout:\n  interval: 2s\n  onFailure: %s\n  steps:\n", onFailure)
	for i, w := range canary {
		hold := holds[i]
		if hold == "" {
			hold = "5s"
		}
		fmt.Fprintf(&b, "    - {canary: %d, hold: %s}\n", w, hold)
	}
	fmt.Fprintf(&b, `  gates:
    prometheus:
      url: %s
      timeout: 1s
      istiod: {scrapeInterval: 1s}
      queries:
        - name: xds-rejects
          query: sum(increase(pilot_total_xds_rejects{istio_io_rev="{{ .Revision }}"}[20s])) or (0 * max(up{app="istiod",istio_io_rev="{{ .Revision }}"} == 1))
          max: 0
`, env.prom.url())
	return b.String()
}

var optIn = map[string]string{policy.LabelOptIn: policy.OptInEnabled}

func managedNamespace(t *testing.T, name string) {
	t.Helper()
	env.CreateNamespace(t, name, optIn)
	env.WaitServiceAccount(t, name)
	t.Cleanup(func() {
		_ = env.Cluster.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func createDeployments(t *testing.T, ns string, n int, replicas int32) {
	t.Helper()
	for i := range n {
		env.CreateDeployment(t, harness.Deployment(ns, fmt.Sprintf("app-%02d", i), replicas))
	}
	for i := range n {
		env.WaitAvailable(t, harness.Context(t, 3*time.Minute), ns, fmt.Sprintf("app-%02d", i), replicas)
	}
}

func writePolicy(t *testing.T, doc string) {
	t.Helper()
	if err := env.WritePolicy(harness.Context(t, 30*time.Second), doc); err != nil {
		t.Fatal(err)
	}
}

// statusData reads the status object.
func statusData(ctx context.Context) (map[string]string, error) {
	cm, err := env.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

// timeline records each (step, phase) the rollout passes through.
type timeline struct {
	start time.Time
	lines []string
	seen  []string // "step/phase"
	last  string
}

func newTimeline() *timeline { return &timeline{start: time.Now()} }

func (tl *timeline) observe(st *rollout.State, mst migrate.Status) {
	if st == nil {
		return
	}
	key := fmt.Sprintf("%d/%s", st.Step+1, st.Phase)
	if key == tl.last {
		return
	}
	tl.last = key
	tl.seen = append(tl.seen, key)
	var gates []string
	for _, g := range st.Gates {
		gates = append(gates, fmt.Sprintf("%s=%g(%s)", g.Name, g.Value, g.Verdict))
	}
	tl.lines = append(tl.lines, fmt.Sprintf("+%6.1fs step=%d phase=%-11s weights=%q migration=%s/%s restarted=%d done=%d skipped=%d gates=%s reason=%q",
		time.Since(tl.start).Seconds(), st.Step+1, st.Phase, rollout.FormatWeights(st.Weights), mst.Phase, mst.Digest, mst.Restarted, mst.Done, mst.Skipped,
		strings.Join(gates, ","), st.Reason))
}

func (tl *timeline) print(t *testing.T, name string) {
	for _, l := range tl.lines {
		t.Logf("TIMELINE %s %s", name, l)
	}
}

// waitRollout polls the status object until done says so, recording the
// timeline.
func waitRollout(t *testing.T, tl *timeline, timeout time.Duration, done func(*rollout.State) bool) *rollout.State {
	t.Helper()
	var st *rollout.State
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		data, err := statusData(ctx)
		if err != nil {
			return false, nil
		}
		st, _ = rollout.Decode(data)
		mst, _ := migrate.DecodeStatus(data)
		tl.observe(st, mst)
		return st != nil && done(st), nil
	})
	if err != nil {
		tl.print(t, "timeout")
		t.Fatalf("rollout not there after %s: %+v", timeout, st)
	}
	return st
}

// resetPolicy takes the rollout out of the policy and waits until the
// leader has removed its state, so the next scenario starts a new one.
func resetPolicy(t *testing.T) {
	t.Helper()
	// A completed rollout keeps routing at its final weights after its
	// block is removed, until the targets agree: say them first, as an
	// operator would, then go back to stable.
	if data, err := statusData(harness.Context(t, 10*time.Second)); err == nil {
		if st, _ := rollout.Decode(data); st != nil && st.Phase == rollout.PhaseComplete && len(st.Weights) == 2 {
			writePolicy(t, harness.PolicyYAML("workload", "rollout", st.Weights[0].Weight, st.Weights[1].Weight)+migration)
			waitCleared(t)
		}
	}
	writePolicy(t, harness.PolicyYAML("workload", "rollout", 100, 0)+migration)
	waitCleared(t)
}

// waitCleared waits until the leader removed the rollout's state and
// weights from the status object.
func waitCleared(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		data, err := statusData(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil // no status object: no rollout ever ran
		}
		return err == nil && data[rollout.StateKey] == "" && data[rollout.WeightsKey] == "", nil
	})
	if err != nil {
		t.Fatalf("the leader did not clear the rollout: %v", err)
	}
}

// waitPods waits until every live pod in namespaces is injected by rev.
func waitPods(t *testing.T, rev string, want int, timeout time.Duration, namespaces ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(context.Context) (bool, error) {
		perRev, _, _ := env.PodsByRevision(t, true, namespaces...)
		return perRev[rev] == want && len(perRev) == 1, nil
	})
	if err != nil {
		perRev, _, _ := env.PodsByRevision(t, true, namespaces...)
		t.Fatalf("pods by revision %v, want %d on %s", perRev, want, rev)
	}
}

// cli runs canary-router with args as the cluster admin.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(env.Bin, append(args, "--kubeconfig", env.Cluster.Kubeconfig)...).CombinedOutput()
	if err != nil {
		t.Fatalf("canary-router %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitQuiet waits until the canary's rejects have not risen for the
// gate's window, so a scenario does not inherit the last one's fault (the
// counter only ever rises, as a real one does).
func waitQuiet(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, err := env.prom.query(ctx, `sum(increase(pilot_total_xds_rejects{istio_io_rev="canary"}[20s])) or vector(0)`)
		return err == nil && v == 0, nil
	})
	if err != nil {
		t.Fatalf("the canary's rejects did not settle: %v", err)
	}
}
