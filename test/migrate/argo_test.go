package migrate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// Argo Rollouts' Rollouts, restarted by the real Argo Rollouts controller
// (started by setup), migrate like Deployments: 12 Rollouts x 2 replicas,
// workload granularity, 0 -> 30 percent. Exactly the Rollouts the policy
// moves get spec.restartAt, once each, at most a batch at a time (a batch
// waits for Argo's status.restartedAt); their pods come back on the
// canary revision; the others keep their pods; nothing has drifted
// afterwards.
func TestArgoRollouts(t *testing.T) {
	const (
		ns       = "argo-a"
		n        = 12
		replicas = 2
		batch    = 3
	)
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	managedNamespace(t, ns)
	dyn, err := dynamic.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	ro := dyn.Resource(migrate.RolloutGVR).Namespace(ns)
	ctx := harness.Context(t, 8*time.Minute)
	var names []string
	for i := range n {
		name := fmt.Sprintf("ro-%02d", i)
		if _, err := ro.Create(ctx, rolloutObject(name, replicas), metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating Rollout %s: %v", name, err)
		}
		names = append(names, name)
	}
	waitRolloutsHealthy(t, ro, names, replicas)
	before := podsByRollout(t, ns)
	perRev, _, _ := env.PodsByRevision(t, false, ns)
	if perRev["stable"] != n*replicas {
		t.Fatalf("before the migration, pods per revision %v, want %d on stable", perRev, n*replicas)
	}

	doc := policyDoc("workload", 30, fmt.Sprintf("{batchSize: %d, interval: 0s, readinessTimeout: 2m}", batch))
	p := parsePolicy(t, doc)
	want := map[string]bool{}
	for _, name := range names {
		if migrate.WorkloadChoice(p, migrate.Ref{Namespace: ns, Kind: migrate.KindRollout, Name: name}) == "canary" {
			want[name] = true
		}
	}
	if len(want) == 0 || len(want) == n {
		t.Fatalf("the policy moves %d of %d Rollouts: the test needs some to move and some to stay", len(want), n)
	}
	seen := watchRestartAt(t, ro)
	began := time.Now()
	digest := writePolicy(t, doc)
	st := waitPhase(t, digest, migrate.PhaseComplete, 5*time.Minute)
	elapsed := time.Since(began)
	restartAt, maxRolling := seen.stop()

	after := podsByRollout(t, ns)
	restarted, wrong, podsMoved, kept := 0, 0, 0, 0
	for _, name := range names {
		u, err := ro.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		times := len(restartAt[name])
		marked := u.GetAnnotations()[migrate.AnnotationMigrated] == digest
		done, _, _ := unstructured.NestedString(u.Object, "status", "restartedAt")
		if times > 0 {
			restarted++
		}
		switch {
		case want[name] && (times != 1 || !marked || done == ""):
			wrong++
			t.Errorf("%s must move: spec.restartAt set %d times %v, marked %v, status.restartedAt %q", name, times, restartAt[name], marked, done)
		case !want[name] && (times != 0 || marked):
			wrong++
			t.Errorf("%s must stay: spec.restartAt set %d times, marked %v", name, times, marked)
		}
		for _, pod := range after[name] {
			rev := fakeistio.InjectedRevision(&pod)
			_, old := before[name][pod.Name]
			switch {
			case want[name] && (old || rev != "canary"):
				t.Errorf("%s: pod %s (from before the migration: %v) on %q, want a new pod on canary", name, pod.Name, old, rev)
			case !want[name] && (!old || rev != "stable"):
				t.Errorf("%s: pod %s (from before the migration: %v) on %q, want its old pod on stable", name, pod.Name, old, rev)
			case want[name]:
				podsMoved++
			default:
				kept++
			}
		}
		if len(after[name]) != replicas {
			t.Errorf("%s has %d live pods, want %d", name, len(after[name]), replicas)
		}
	}
	perRev, mismatches, unmeshed := env.PodsByRevision(t, true, ns)
	drift := len(cliPlan(t).Moves)
	t.Logf("RESULT migrate-argo-rollouts: rollouts=%d replicas=%d canary=30%% drifted=%d restarted=%d wrong=%d batches=%d batch_size=%d max_rolling=%d pods_moved=%d pods_kept=%d final_drift=%d mismatches=%d unmeshed=%d pods_stable=%d pods_canary=%d elapsed=%s",
		n, replicas, len(want), restarted, wrong, st.Batches, batch, maxRolling, podsMoved, kept, drift, mismatches, unmeshed, perRev["stable"], perRev["canary"], elapsed.Round(100*time.Millisecond))
	if maxRolling > batch {
		t.Errorf("%d Rollouts rolling at once, batch size %d", maxRolling, batch)
	}
	if restarted != len(want) || st.Restarted != len(want) || drift != 0 || mismatches != 0 || unmeshed != 0 {
		t.Errorf("restarted %d (status %d, want %d), drift %d, mismatches %d, unmeshed %d", restarted, st.Restarted, len(want), drift, mismatches, unmeshed)
	}
	if perRev["canary"] != len(want)*replicas || perRev["stable"] != (n-len(want))*replicas {
		t.Errorf("pods per revision %v, want %d canary and %d stable", perRev, len(want)*replicas, (n-len(want))*replicas)
	}
}

// rolloutObject is a canary Rollout of replicas bare pods labelled
// app=name; with no steps, a new template is promoted at once.
func rolloutObject(name string, replicas int64) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": migrate.RolloutGVR.GroupVersion().String(),
		"kind":       "Rollout",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"},
				}},
			},
			"strategy": map[string]any{"canary": map[string]any{}},
		},
	}}
}

// waitRolloutsHealthy waits until the Argo Rollouts controller reports
// every Rollout Healthy with all its replicas available.
func waitRolloutsHealthy(t *testing.T, ro dynamic.ResourceInterface, names []string, replicas int32) {
	t.Helper()
	pending := names
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var still []string
		for _, name := range pending {
			u, err := ro.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				still = append(still, name)
				continue
			}
			phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
			w := migrate.FromRollout(u)
			if phase != "Healthy" || !migrate.Complete(w) || w.Available != replicas {
				still = append(still, name)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("Rollouts not Healthy after 3m: %v\n%s\nrollouts-controller log:\n%s", pending, env.ClusterState("argo-a"),
			harness.TailFile(env.Cluster.Dir+"/logs/rollouts-controller.log", 3000))
	}
}

// podsByRollout returns the live pods of ns by their app label, keyed by
// pod name.
func podsByRollout(t *testing.T, ns string) map[string]map[string]corev1.Pod {
	t.Helper()
	out := map[string]map[string]corev1.Pod{}
	for _, pod := range harness.Live(env.ListPods(t, ns, "")) {
		app := pod.Labels["app"]
		if out[app] == nil {
			out[app] = map[string]corev1.Pod{}
		}
		out[app][pod.Name] = pod
	}
	return out
}

// restartWatch records each distinct spec.restartAt a Rollout is given
// while it runs (one value per restart), and the most Rollouts rolling at
// once: restarted and not yet reported done by Argo (status.restartedAt).
type restartWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	seen    map[string][]string
	rolling map[string]bool
	maxSeen int
}

func watchRestartAt(t *testing.T, ro dynamic.ResourceInterface) *restartWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := ro.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &restartWatch{cancel: cancel, done: make(chan struct{}), seen: map[string][]string{}, rolling: map[string]bool{}}
	for i := range list.Items {
		w.record(&list.Items[i])
	}
	wi, err := ro.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer wi.Stop()
		for ev := range wi.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				w.record(u)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *restartWatch) record(u *unstructured.Unstructured) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rolling[u.GetName()] = rolloutRolling(u)
	n := 0
	for _, r := range w.rolling {
		if r {
			n++
		}
	}
	w.maxSeen = max(w.maxSeen, n)
	at, _, _ := unstructured.NestedString(u.Object, "spec", "restartAt")
	if at == "" {
		return
	}
	vals := w.seen[u.GetName()]
	if len(vals) == 0 || vals[len(vals)-1] != at {
		w.seen[u.GetName()] = append(vals, at)
	}
}

// rolloutRolling reports whether Argo is still restarting a Rollout
// (status.restartedAt older than spec.restartAt) or has replicas
// unavailable: read here from the object, not through the migrator's
// FromRollout, so the count does not share a bug with the code under test.
func rolloutRolling(u *unstructured.Unstructured) bool {
	want, _, _ := unstructured.NestedString(u.Object, "spec", "restartAt")
	done, _, _ := unstructured.NestedString(u.Object, "status", "restartedAt")
	replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	available, _, _ := unstructured.NestedInt64(u.Object, "status", "availableReplicas")
	return want > done || available < replicas
}

// stop ends the watch and returns the values seen per Rollout and the
// most rolling at once.
func (w *restartWatch) stop() (map[string][]string, int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen, w.maxSeen
}
