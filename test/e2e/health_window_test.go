package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// windowGoal is the longest the router may keep routing pods to a dead
// istiod whose EndpointSlice still says ready (issue 13, item 4).
const windowGoal = 3 * time.Second

// attempt is one pod creation of the continuous load.
type attempt struct {
	start, end time.Time
	err        error
	// label is the pod's istio.io/rev, injected the revision that injected
	// it, d the router's decision.
	label, injected string
	d               harness.Decision
}

func (a attempt) fallbackFrom(rev, cause string) bool {
	return a.err == nil && a.d.Reason == "fallback" && a.d.Avoided == rev && a.d.Cause == cause
}

// podLoad creates a bare pod in ns every 100 ms until stopped, without
// waiting for the previous one: the steady stream a busy cluster sends
// while an istiod dies, where one slow refusal does not hold up the
// pods behind it.
type podLoad struct {
	client   kubernetes.Interface
	mu       sync.Mutex
	attempts []attempt // in the order they finished
	cancel   context.CancelFunc
	done     chan struct{}
}

func startPodLoad(t *testing.T, ns string) *podLoad {
	t.Helper()
	// Hundreds of fallback warnings would drown the test's log.
	cfg := rest.CopyConfig(env.Cluster.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &podLoad{client: client, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		// Room for the pods a hung injector holds for the API server's 10 s
		// webhook timeout.
		inFlight := make(chan struct{}, 100)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case inFlight <- struct{}{}:
			}
			wg.Go(func() {
				defer func() { <-inFlight }()
				l.create(ns)
			})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

// create creates one pod named by the API server, as a ReplicaSet's are:
// loads that follow each other in one namespace never collide.
func (l *podLoad) create(ns string) {
	a := attempt{start: time.Now()}
	// Not the load's context: a stopped load still waits for the answers
	// of the pods it sent, a hung injector's refusals included.
	reqCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := harness.Pod("")
	pod.GenerateName = "load-"
	p, err := l.client.CoreV1().Pods(ns).Create(reqCtx, pod, metav1.CreateOptions{})
	a.end, a.err = time.Now(), err
	if err == nil {
		a.label, a.injected = p.Labels["istio.io/rev"], fakeistio.InjectedRevision(p)
		// ParseDecision, not DecisionOf: t.Fatal is not for other
		// goroutines.
		a.d, _ = harness.ParseDecision(p.ObjectMeta)
	}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

// first returns the first attempt that started after since and satisfies
// ok, waiting up to limit for it.
func (l *podLoad) first(since time.Time, limit time.Duration, ok func(attempt) bool) (attempt, bool) {
	deadline := time.Now().Add(limit)
	for seen := 0; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		all := l.attempts[seen:]
		for _, a := range all {
			if a.start.After(since) && ok(a) {
				l.mu.Unlock()
				return a, true
			}
		}
		seen += len(all)
		l.mu.Unlock()
	}
	return attempt{}, false
}

// between returns the attempts that started in [from, to).
func (l *podLoad) between(from, to time.Time) []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []attempt
	for _, a := range l.attempts {
		if !a.start.Before(from) && a.start.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

func (l *podLoad) stop() {
	l.cancel()
	<-l.done
}

// tallyAttempts counts attempts: refused, admitted without a sidecar, and admitted
// per injecting revision.
func tallyAttempts(as []attempt) (refused, unmeshed int, injected map[string]int, firstRefusal string) {
	injected = map[string]int{}
	for _, a := range as {
		switch {
		case a.err != nil:
			refused++
			if firstRefusal == "" {
				firstRefusal = a.err.Error()
			}
		case a.injected == "":
			unmeshed++
		default:
			injected[a.injected]++
		}
	}
	return refused, unmeshed, injected, firstRefusal
}

// TestHealthGateWindow kills canary's injector while its istiod
// EndpointSlice stays ready, the window the EndpointSlice gate cannot
// see, under a steady stream of pod creations that all want canary. With
// the router's injector check off, pods keep going to canary and Istio's
// fail-closed webhook refuses them for as long as the endpoints look
// ready. With the check on (the default), the router falls back to stable
// within 3 s of the kill and returns to canary within 3 s of its recovery.
func TestHealthGateWindow(t *testing.T) {
	const ns = "window"
	doc := policyYAML("pod", 0, 100) // every pod wants canary
	managedNamespace(t, ns)
	env.WaitServiceAccount(t, ns)
	t.Cleanup(func() { env.injectors.Revive("canary") })

	t.Run("check off: the EndpointSlice gate is blind", func(t *testing.T) {
		policyPath := filepath.Join(env.router.dir, "policy.yaml")
		if err := os.WriteFile(policyPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := env.router.launch(harness.Context(t, time.Minute), "--policy-file", policyPath, "--injector-probe-interval=0"); err != nil {
			t.Fatal(err)
		}
		load := startPodLoad(t, ns)
		time.Sleep(time.Second)
		kill := time.Now()
		env.injectors.Kill("canary")
		_, fellBack := load.first(kill, 2*windowGoal, func(a attempt) bool { return a.fallbackFrom("canary", "not-answering") })
		load.stop()
		env.injectors.Revive("canary")
		refused, unmeshed, injected, why := tallyAttempts(load.between(kill, time.Now()))
		t.Logf("RESULT health-gate-window probe=off fallback_within_%s=%v refused_after_kill=%d unmeshed=%d injected=%v",
			2*windowGoal, fellBack, refused, unmeshed, injected)
		t.Logf("a refusal Istio's fail-closed webhook gave meanwhile: %s", why)
		if fellBack || refused == 0 {
			t.Errorf("without the check: fallback %v, %d refused; want no fallback and pods refused, else this scenario proves nothing", fellBack, refused)
		}
		if unmeshed != 0 {
			t.Errorf("%d pods admitted without a sidecar", unmeshed)
		}
	})

	t.Run("check on, injector drops connections: fallback within 3 s, back within 3 s", func(t *testing.T) {
		usePolicy(t, doc)
		measureWindow(t, ns, "drop", env.injectors.Kill)
	})
	t.Run("check on, injector hangs: fallback within 3 s, back within 3 s", func(t *testing.T) {
		usePolicy(t, doc)
		measureWindow(t, ns, "hang", env.injectors.Freeze)
	})
}

// measureWindow streams pods that all want canary into ns, fails canary's
// injector with kill, and measures kill to the first pod the router sends
// to stable, then recovery to the first pod back on canary.
func measureWindow(t *testing.T, ns, mode string, kill func(rev string)) {
	const fallbacks = `canary_router_fallbacks_total{cause="not-answering",revision="canary"}`
	before := scrape(t)[fallbacks]
	load := startPodLoad(t, ns)
	defer load.stop()
	if _, ok := load.first(time.Now(), 10*time.Second, func(a attempt) bool { return a.err == nil && a.injected == "canary" }); !ok {
		t.Fatal("no pod reached canary before the kill")
	}
	killed := time.Now()
	kill("canary")
	fb, ok := load.first(killed, 5*windowGoal, func(a attempt) bool { return a.fallbackFrom("canary", "not-answering") })
	if !ok {
		t.Fatalf("no pod routed away from the dead canary within %s", 5*windowGoal)
	}
	window := fb.end.Sub(killed)
	// Pods created after the first fallback settle on stable; let a few
	// through, then bring canary back.
	time.Sleep(time.Second)
	revive := time.Now()
	env.injectors.Revive("canary")
	back, ok := load.first(revive, 5*windowGoal, func(a attempt) bool {
		return a.err == nil && a.injected == "canary" && a.d.Reason != "fallback"
	})
	if !ok {
		t.Fatalf("no pod went back to canary within %s of its recovery", 5*windowGoal)
	}
	recovery := back.end.Sub(revive)
	time.Sleep(500 * time.Millisecond)
	load.stop()

	blindRefused, blindUnmeshed, _, why := tallyAttempts(load.between(killed, fb.start))
	afterRefused, afterUnmeshed, afterInjected, afterWhy := tallyAttempts(load.between(fb.start, revive))
	t.Logf("RESULT health-gate-window probe=on injector=%s kill_to_first_fallback_ms=%d recovery_to_first_canary_ms=%d refused_in_window=%d refused_after_fallback=%d injected_after_fallback=%v unmeshed=%d goal_ms=%d",
		mode, window.Milliseconds(), recovery.Milliseconds(), blindRefused, afterRefused, afterInjected, blindUnmeshed+afterUnmeshed, windowGoal.Milliseconds())
	if blindRefused > 0 {
		t.Logf("a refusal in the window: %s", why)
	}
	if window > windowGoal {
		t.Errorf("kill to first fallback took %s, goal %s", window, windowGoal)
	}
	if recovery > windowGoal {
		t.Errorf("recovery to first canary pod took %s, goal %s", recovery, windowGoal)
	}
	if afterRefused != 0 || afterInjected["canary"] != 0 {
		t.Errorf("after the first fallback: %d refused (%s), injected %v; want every pod on stable", afterRefused, afterWhy, afterInjected)
	}
	if blindUnmeshed+afterUnmeshed != 0 {
		t.Errorf("%d pods admitted without a sidecar", blindUnmeshed+afterUnmeshed)
	}
	if fb.label != "stable" || fb.injected != "stable" {
		t.Errorf("first fallback pod: label %q injected by %q decision %+v", fb.label, fb.injected, fb.d)
	}
	m := scrape(t)
	if got := m[fallbacks] - before; got < 1 {
		t.Errorf("%s rose by %v", fallbacks, got)
	}
	if got := m[`canary_router_injector_up{revision="canary"}`]; got != 1 {
		t.Errorf("canary_router_injector_up{canary} = %v after recovery, want 1", got)
	}
}
