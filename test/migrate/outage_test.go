package migrate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/harness"
)

// namespaceWrites counts updates to the namespaces named, from a watch.
type namespaceWrites struct {
	mu    sync.Mutex
	names map[string]bool
	n     int
}

func watchNamespaces(t *testing.T, ctx context.Context, names []string) *namespaceWrites {
	t.Helper()
	w, err := env.Cluster.Client.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nw := &namespaceWrites{names: map[string]bool{}}
	for _, n := range names {
		nw.names[n] = true
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			ns, ok := ev.Object.(*corev1.Namespace)
			if ok && ev.Type == watch.Modified && nw.names[ns.Name] {
				nw.mu.Lock()
				nw.n++
				nw.mu.Unlock()
			}
		}
	}()
	return nw
}

func (nw *namespaceWrites) count() int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.n
}

// revisions reads istio.io/rev and failover-from of each namespace.
func revisions(ctx context.Context, names []string) (rev, from map[string]string, err error) {
	rev, from = map[string]string{}, map[string]string{}
	for _, n := range names {
		ns, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		rev[n], from[n] = ns.Labels[policy.LabelIstioRev], ns.Annotations[policy.AnnotationFailoverFrom]
	}
	return rev, from, nil
}

// Namespace granularity beside stand-in injectors: the canary injector
// dropping every request for 8 s changes no namespace; down past
// namespaceFailover.after, every canary namespace moves to stable, and
// after recovery exactly those move back, though the weights changed
// meanwhile: 0 split.
func TestNamespaceOutage(t *testing.T) {
	const failover = "namespaceFailover: {after: 20s, maxPerMinute: 600}\n"
	writePolicyAndWait(t, harness.PolicyYAML("namespace", "outage", 50, 50)+failover)
	var names []string
	for i := range 24 {
		name := fmt.Sprintf("nso-%02d", i)
		managedNamespace(t, name)
		names = append(names, name)
	}
	ctx := harness.Context(t, 5*time.Minute)
	var orig map[string]string
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		rev, _, err := revisions(ctx, names)
		if err != nil {
			return false, nil
		}
		for _, r := range rev {
			if r == "" {
				return false, nil
			}
		}
		orig = rev
		return true, nil
	}); err != nil {
		t.Fatal("namespaces never routed")
	}
	var onCanary []string
	for _, n := range names {
		if orig[n] == "canary" {
			onCanary = append(onCanary, n)
		}
	}
	if len(onCanary) == 0 || len(onCanary) == len(names) {
		t.Fatalf("%d of %d namespaces on canary: no split to test", len(onCanary), len(names))
	}
	writes := watchNamespaces(t, ctx, names)
	defer env.istio.Revive("canary")

	// A blip: 8 s down, then 20 s more of watching (past the threshold
	// counted from the kill).
	env.istio.Kill("canary")
	time.Sleep(8 * time.Second)
	env.istio.Revive("canary")
	time.Sleep(20 * time.Second)
	blipWrites := writes.count()
	if blipWrites != 0 {
		t.Errorf("an 8 s outage wrote %d namespaces", blipWrites)
	}

	// The operator moves the weights meanwhile: a new namespace of most of
	// these names would now go to stable.
	writePolicy(t, harness.PolicyYAML("namespace", "outage", 90, 10)+failover)
	base := writes.count()
	killed := time.Now()
	env.istio.Kill("canary")
	var movedAfter time.Duration
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		rev, from, err := revisions(ctx, onCanary)
		if err != nil {
			return false, nil
		}
		for _, n := range onCanary {
			if rev[n] != "stable" || from[n] != "canary" {
				return false, nil
			}
		}
		movedAfter = time.Since(killed)
		return true, nil
	}); err != nil {
		rev, from, _ := revisions(context.Background(), onCanary)
		t.Fatalf("canary namespaces not all moved off the dead injector: %v %v", rev, from)
	}
	moveWrites := writes.count() - base
	revived := time.Now()
	env.istio.Revive("canary")
	var backAfter time.Duration
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		rev, from, err := revisions(ctx, onCanary)
		if err != nil {
			return false, nil
		}
		for _, n := range onCanary {
			if rev[n] != "canary" || from[n] != "" {
				return false, nil
			}
		}
		backAfter = time.Since(revived)
		return true, nil
	}); err != nil {
		rev, from, _ := revisions(context.Background(), onCanary)
		t.Fatalf("moved namespaces not all back: %v %v", rev, from)
	}
	time.Sleep(3 * time.Second) // any straggling write shows
	rev, _, err := revisions(harness.Context(t, 10*time.Second), names)
	if err != nil {
		t.Fatal(err)
	}
	split := 0
	for _, n := range names {
		if rev[n] != orig[n] {
			split++
			t.Errorf("%s on %s, was on %s", n, rev[n], orig[n])
		}
	}
	total := writes.count() - base
	t.Logf("RESULT namespace-outage: namespaces=%d on_canary=%d blip=8s blip_writes=%d after=20s moved=%d moved_after_kill=%s moved_back_after_revive=%s writes=%d (moves %d) split=%d",
		len(names), len(onCanary), blipWrites, len(onCanary), movedAfter.Round(100*time.Millisecond), backAfter.Round(100*time.Millisecond), total, moveWrites, split)
	if total != 2*len(onCanary) {
		t.Errorf("%d namespace writes for %d namespaces moved away and back", total, len(onCanary))
	}
}
