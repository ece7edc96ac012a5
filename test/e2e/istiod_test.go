package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// istiodReady sets istiod-<rev>'s readiness for the rest of the test and
// restores it to ready afterwards, since the other scenarios share it.
func istiodReady(t *testing.T, rev string, ready bool) {
	t.Helper()
	if err := fakeistio.SetIstiodReady(harness.Context(t, 30*time.Second), env.Cluster.Client, rev, ready); err != nil {
		t.Fatal(err)
	}
	if !ready {
		t.Cleanup(func() {
			if err := fakeistio.SetIstiodReady(context.Background(), env.Cluster.Client, rev, true); err != nil {
				t.Errorf("restoring istiod-%s: %v", rev, err)
			}
		})
	}
}

// dryRunPod asks the API server what would become of a bare pod in ns, so
// a test can wait for the router to see a change without creating pods.
func dryRunPod(ctx context.Context, ns string) (*corev1.Pod, error) {
	p := harness.Pod("dry-")
	return env.Cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// waitRouted waits until a dry-run pod in ns gets a decision for which ok
// is true: the router's informers have caught up with a change.
func waitRouted(t *testing.T, ns, what string, ok func(d harness.Decision, err error) bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := dryRunPod(ctx, ns)
		var d harness.Decision
		if err == nil {
			d, _ = harness.DecisionOf(t, p.ObjectMeta)
		}
		last = fmt.Sprintf("decision %+v, error %v", d, err)
		return ok(d, err), nil
	})
	if err != nil {
		t.Fatalf("router never saw %s: last %s", what, last)
	}
}

// warnings collects the API server's warning headers for a client.
type warnings struct{ seen []string }

// HandleWarningHeader implements rest.WarningHandler.
func (w *warnings) HandleWarningHeader(_ int, _ string, text string) { w.seen = append(w.seen, text) }

func (w *warnings) mention(sub string) bool {
	for _, s := range w.seen {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
