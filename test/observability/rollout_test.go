package observability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
)

// promTimeout bounds every wait on a PromQL figure: a scrape and a rule
// evaluation a second, behind the router's informers.
const promTimeout = 45 * time.Second

const (
	managedNS = "shop"
	pinnedNS  = "pinned"
	replicas  = 10
)

// TestRolloutProgress rolls a Deployment from stable to a 30% canary and
// watches it in Prometheus: the observed canary share converges to the
// target; a pod labelled for canary in a namespace pinned to stable (the
// namespace label wins) shows up as a mismatch; a pod routed to tag prod
// and injected by canary, the revision prod points to, does not. `status`
// agrees with Prometheus at each step.
func TestRolloutProgress(t *testing.T) {
	p := env.prom
	viewer := viewerKubeconfig(t)
	createNamespace(t, managedNS, map[string]string{"canary-router.io/injection": "enabled"})
	rollOut(t, harness.Deployment(managedNS, "web", replicas))
	p.eventually(t, "all pods on stable", `canary_router:routed_share:ratio`, promTimeout, func(v []sample) bool {
		s := byLabel(v, "revision")
		return len(v) == 2 && near(s["stable"], 1) && near(s["canary"], 0)
	})

	if err := env.WritePolicy(harness.Context(t, 30*time.Second), policyYAML(70, 30)); err != nil {
		t.Fatal(err)
	}
	p.eventually(t, "the router applied 70/30", `canary_router:target_share:max{revision="canary"}`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && near(v[0].Value, 0.3)
	})
	trail := watchShare(p, `canary_router:routed_share:ratio{revision="canary"}`)
	restart(t, managedNS, "web", replicas)
	routed, injected := revisions(env.LivePods(t, managedNS, "app=web", replicas))
	if routed["canary"] != 3 || injected["canary"] != 3 || routed["stable"] != 7 {
		t.Fatalf("after the restart: routed %v, injected %v; want 3 of 10 on canary", routed, injected)
	}
	// Observed follows the target for every revision, to the pod.
	p.eventually(t, "observed share converges to the target", `max(abs(canary_router:routed_share:ratio - canary_router:target_share:max))`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Value < 1e-9
	})
	t.Logf("RESULT observed canary share during the restart (PromQL canary_router:routed_share:ratio, 0.5 s samples): %v", trail.stop())
	logQuery(t, `canary_router:routed_share:ratio`)
	logQuery(t, `canary_router:target_share:max`)
	statusMatchesPrometheus(t, viewer)

	forcedMismatch(t)
	taggedPod(t)
	st := statusMatchesPrometheus(t, viewer)
	if st.MismatchedPods != 1 || len(st.Mismatches) != 1 || st.Mismatches[0].Routed != "canary" || st.Mismatches[0].Injected != "stable" {
		t.Errorf("status mismatches %+v, want the one routed canary pod injected by stable", st.Mismatches)
	}
	if st.OverriddenPins != 1 || len(st.PinOverrides) != 1 || st.PinOverrides[0].Routed != "canary" {
		t.Errorf("status pin overrides %d %+v, want the one pinned canary pod", st.OverriddenPins, st.PinOverrides)
	}
	if got := st.Namespaces.ByRevision["stable"]; len(got) != 1 || got[0] != pinnedNS {
		t.Errorf("status namespaces by revision %v, want %s on stable", st.Namespaces.ByRevision, pinnedNS)
	}
	t.Logf("RESULT canary-router status (as %s, read-only):\n%s", viewerUser, runStatus(t, viewer))
	logQuery(t, `canary_router_pods`)
	logQuery(t, `canary_router_pods_mismatched`)
	logQuery(t, `ALERTS`)

	t.Run("dashboard", testDashboardQueries)
	t.Run("docs", testDocsQueries)
	t.Run("self-driving", func(t *testing.T) { testSelfDrivingDashboard(t, viewer) })
}

// forcedMismatch creates two pods labelled istio.io/rev=canary in a
// namespace labelled istio.io/rev=stable, where the router's pod webhook
// skips them and Istio's namespace webhook for stable injects them. One
// was pinned by its owner: Istio's precedence overrides the pin, which
// canary_router_pods_pin_overridden reports. The other carries a
// decision annotation, as a pod the router routed before someone pinned
// its namespace would: that is the router's mismatch, which the mismatch
// series and alert report.
func forcedMismatch(t *testing.T) {
	t.Helper()
	createNamespace(t, pinnedNS, map[string]string{"istio.io/rev": "stable"})
	routed := barePod(pinnedNS, "routed-to-canary", map[string]string{"istio.io/rev": "canary"})
	routed.Annotations = map[string]string{"canary-router.io/decision": `{"revision":"canary","reason":"sticky"}`}
	for _, p := range []*corev1.Pod{barePod(pinnedNS, "asks-for-canary", map[string]string{"istio.io/rev": "canary"}), routed} {
		pod, err := env.Cluster.Client.CoreV1().Pods(pinnedNS).Create(harness.Context(t, 30*time.Second), p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pod.Annotations["istio.io/rev"]; got != "stable" {
			t.Fatalf("pod %s injected by %q, want stable (the namespace label wins)", pod.Name, got)
		}
	}
	p := env.prom
	p.eventually(t, "the mismatch series", `canary_router_pods{routed_revision="canary",injected_revision="stable"}`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Value == 2
	})
	p.eventually(t, "the mismatch count", `canary_router_pods_mismatched`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Value == 1
	})
	p.eventually(t, "the overridden pin", `canary_router_pods_pin_overridden`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Value == 1
	})
	// The alert waits 10 minutes before firing; pending shows the rule
	// sees it.
	p.eventually(t, "the mismatch alert", `ALERTS{alertname="CanaryRouterPodsMismatched"}`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Labels["alertstate"] == "pending"
	})
}

// taggedPod creates a pod routed to tag prod (-> canary) in the managed
// namespace: it is pinned, the tag's webhook injects canary, and the
// mismatch count stays where it was.
func taggedPod(t *testing.T) {
	t.Helper()
	pod, err := env.Cluster.Client.CoreV1().Pods(managedNS).Create(harness.Context(t, 30*time.Second),
		barePod(managedNS, "on-prod", map[string]string{"istio.io/rev": "prod"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations["istio.io/rev"]; got != "canary" {
		t.Fatalf("pod %s injected by %q, want canary (tag prod)", pod.Name, got)
	}
	p := env.prom
	p.eventually(t, "the tagged pod", `canary_router_pods{routed_revision="prod"}`, promTimeout, func(v []sample) bool {
		return len(v) == 1 && v[0].Value == 1 && v[0].Labels["injected_revision"] == "canary"
	})
	if v, err := p.query(context.Background(), `canary_router_pods_mismatched`); err != nil || len(v) != 1 || v[0].Value != 1 {
		t.Errorf("after the tagged pod, mismatched %v (%v), want still 1", v, err)
	}
}

// shareTrail samples a share while something happens.
type shareTrail struct {
	mu   sync.Mutex
	seen []string
	done chan struct{}
	wg   sync.WaitGroup
}

// watchShare samples expr every half second until stop, keeping each
// value that differs from the previous one.
func watchShare(p *prometheus, expr string) *shareTrail {
	tr := &shareTrail{done: make(chan struct{})}
	tr.wg.Go(func() {
		last := ""
		for {
			select {
			case <-tr.done:
				return
			case <-time.After(500 * time.Millisecond):
			}
			v, err := p.query(context.Background(), expr)
			if err != nil || len(v) != 1 {
				continue
			}
			if s := fmt.Sprintf("%.3f", v[0].Value); s != last {
				tr.mu.Lock()
				tr.seen = append(tr.seen, s)
				tr.mu.Unlock()
				last = s
			}
		}
	})
	return tr
}

func (tr *shareTrail) stop() []string {
	close(tr.done)
	tr.wg.Wait()
	return tr.seen
}

// logQuery logs a query's result for the test report.
func logQuery(t *testing.T, expr string) {
	t.Helper()
	v, err := env.prom.query(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT %s => %v", expr, v)
}
