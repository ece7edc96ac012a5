package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// istiodReady sets istiod-<rev>'s readiness for the rest of the test and
// restores it to ready afterwards, since the other scenarios share it.
func istiodReady(t *testing.T, rev string, ready bool) {
	t.Helper()
	if err := fakeistio.SetIstiodReady(ctxT(t, 30*time.Second), env.cluster.Client, rev, ready); err != nil {
		t.Fatal(err)
	}
	if !ready {
		t.Cleanup(func() {
			if err := fakeistio.SetIstiodReady(context.Background(), env.cluster.Client, rev, true); err != nil {
				t.Errorf("restoring istiod-%s: %v", rev, err)
			}
		})
	}
}

// dryRunPod asks the API server what would become of a bare pod in ns, so
// a test can wait for the router to see a change without creating pods.
func dryRunPod(ctx context.Context, ns string) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "dry-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
	return env.cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// waitRouted waits until a dry-run pod in ns gets a decision for which ok
// is true: the router's informers have caught up with a change.
func waitRouted(t *testing.T, ns, what string, ok func(d routed, err error) bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := dryRunPod(ctx, ns)
		var d routed
		if err == nil {
			d, _ = routedOf(t, p.ObjectMeta)
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

// routed is the router's decision annotation with the fields the routing
// safety scenarios read.
type routed struct {
	Revision     string `json:"revision"`
	Reason       string `json:"reason"`
	Unit         string `json:"unit"`
	TagRevision  string `json:"tagRevision"`
	Avoided      string `json:"avoided"`
	Cause        string `json:"cause"`
	BalancedOver string `json:"balancedOver"`
	PodView      string `json:"podView"`
}

func routedOf(t *testing.T, m metav1.ObjectMeta) (routed, bool) {
	t.Helper()
	raw, ok := m.Annotations["canary-router.io/decision"]
	if !ok {
		return routed{}, false
	}
	var d routed
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("%s: decision annotation %q: %v", m.Name, raw, err)
	}
	return d, true
}
