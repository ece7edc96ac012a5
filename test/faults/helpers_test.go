package faults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/harness"
)

// managedNamespace creates a namespace opted in to routing and waits for
// its default ServiceAccount, without which pods are refused.
func managedNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.CreateNamespaceObject(harness.Context(t, 30*time.Second), name, map[string]string{"canary-router.io/injection": "enabled"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	env.WaitServiceAccount(t, name)
}

var probeOnce sync.Once

func probeNamespace(t *testing.T) {
	t.Helper()
	probeOnce.Do(func() { managedNamespace(t, "probe") })
}

// newPod is a bare pod with a generated name and labels.
func newPod(generateName string, labels map[string]string) *corev1.Pod {
	p := harness.Pod(generateName)
	p.Labels = labels
	return p
}

// waitRouted creates probe pods in ns until one is routed with a decision
// ok accepts, for up to 30 seconds.
func waitRouted(t *testing.T, ns string, ok func(harness.Decision) bool) harness.Decision {
	t.Helper()
	var last string
	var got harness.Decision
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := env.Cluster.Client.CoreV1().Pods(ns).Create(ctx, newPod("probe-", map[string]string{"probe": "true"}), metav1.CreateOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		d, routed := harness.ParseDecision(p.ObjectMeta)
		last = fmt.Sprintf("pod %s decision %+v", p.Name, d)
		got = d
		return routed && ok(d), nil
	})
	if err != nil {
		t.Fatalf("no probe pod in %s routed as expected after 30s; last: %s", ns, last)
	}
	return got
}

// applyPolicy writes doc and waits until the router routes by it.
func applyPolicy(t *testing.T, doc string) {
	t.Helper()
	if err := env.WritePolicy(harness.Context(t, 30*time.Second), doc); err != nil {
		t.Fatal(err)
	}
	probeNamespace(t)
	waitRouted(t, "probe", func(d harness.Decision) bool { return d.Policy == harness.Digest(doc) })
}

// audit checks every live pod in ns matching selector: routed by the
// router (label istio.io/rev and a decision), and injected by the
// revision the label names. It returns the pods per injected revision
// and the number of pods that break the rule.
func audit(t *testing.T, ns, selector string) (perRevision map[string]int, bad int) {
	t.Helper()
	return harness.RoutedPods(t, harness.Live(env.ListPods(t, ns, selector)))
}
