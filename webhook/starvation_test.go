package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/webhook/policy"
	"github.com/canary-router/canary-router/webhook/wire"
)

// withDeadline shortens the admission deadline for one test.
func withDeadline(t *testing.T, d time.Duration) {
	t.Helper()
	old := admissionDeadline
	admissionDeadline = d
	t.Cleanup(func() { admissionDeadline = old })
}

// nestedTemplatePolicy is the policy that wedged the router when gate
// queries were Go templates: forty templates, each calling the one below
// twice, 2^40 calls to check.
func nestedTemplatePolicy() string {
	var q strings.Builder
	q.WriteString(`{{define "t0"}}x{{end}}`)
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&q, `{{define "t%d"}}{{template "t%d" .}}{{template "t%d" .}}{{end}}`, i, i-1, i-1)
	}
	q.WriteString(`{{template "t39" .}}`)
	return "granularity: namespace\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n" +
		"rollout:\n  steps: [{canary: 10}]\n  gates:\n    prometheus:\n      url: http://prometheus:9090\n" +
		"      queries: [{name: bomb, max: 0, query: '" + q.String() + "'}]\n"
}

// answered is one request's outcome.
type answered struct {
	code int
	resp *admissionv1.AdmissionResponse
	err  error
	took time.Duration
}

func timedServe(h http.Handler, body []byte) answered {
	start := time.Now()
	code, resp, err := serveReview(h, body, "application/json")
	return answered{code: code, resp: resp, err: err, took: time.Since(start)}
}

// podLoad admits pods from 4 clients until stop closes, and returns
// every outcome.
func podLoad(t *testing.T, h http.Handler, stop <-chan struct{}) func() []answered {
	t.Helper()
	pod := deploymentPod("shop", "web", "7d4b9c", nil)
	body := reviewBody(t, "pods", "CREATE", "shop", pod, false)
	var mu sync.Mutex
	var out []answered
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := timedServe(h, body)
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return func() []answered {
		wg.Wait()
		return out
	}
}

// checkPodsRouted fails for a pod admission that was not routed in time.
func checkPodsRouted(t *testing.T, pods []answered) {
	t.Helper()
	if len(pods) < 20 {
		t.Fatalf("only %d pod admissions were answered", len(pods))
	}
	var slowest time.Duration
	for _, a := range pods {
		slowest = max(slowest, a.took)
		if a.err != nil || a.code != http.StatusOK || !a.resp.Allowed || len(a.resp.Patch) == 0 {
			t.Fatalf("pod admission: HTTP %d, %+v, %v: want routed", a.code, a.resp, a.err)
		}
	}
	if slowest >= admissionDeadline {
		t.Errorf("slowest of %d pod admissions took %v, not within the %v deadline", len(pods), slowest, admissionDeadline)
	}
	t.Logf("%d pod admissions routed, slowest %v", len(pods), slowest)
}

// TestHostilePoliciesDoNotStarvePods sends the nested-template policy to
// /validate-policy eight times at once, as many as there are admission
// workers on two CPUs, while pods are admitted: every validation is
// refused with the field named, and every pod routed within the deadline.
// Before gate queries had a language of their own and validations a pool
// of their own, the validations filled every worker for good.
func TestHostilePoliciesDoNotStarvePods(t *testing.T) {
	f := newFixture(t, testPolicy)
	v := &PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy"}
	hostile := reviewBody(t, "configmaps", "UPDATE", "canary-router-system",
		policyConfigMap("canary-router-policy", nestedTemplatePolicy(), true), false)
	stop := make(chan struct{})
	pods := podLoad(t, f.admitter.PodHandler(), stop)
	results := make(chan answered, 8)
	for range 8 {
		go func() { results <- timedServe(f.admitter.PolicyHandler(v), hostile) }()
	}
	timeout := time.After(20 * time.Second)
	for range 8 {
		select {
		case a := <-results:
			if a.err != nil || a.resp.Allowed || a.resp.Result.Code != http.StatusUnprocessableEntity ||
				!strings.Contains(a.resp.Result.Message, `rollout.gates.prometheus.queries[0].query: gate "bomb": {{ define }} is not allowed`) {
				t.Errorf("hostile policy: HTTP %d, %+v, %v; want 422 naming the query", a.code, a.resp, a.err)
			}
		case <-timeout:
			t.Fatal("hostile policy validations not answered within 20s")
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	checkPodsRouted(t, pods())
}

// TestSlowValidationsDoNotStarvePods holds eight validations in flight,
// whatever makes them slow: they run on their own small pool, so pods are
// still routed within the deadline, and each validation is answered by
// its deadline with a refusal.
func TestSlowValidationsDoNotStarvePods(t *testing.T) {
	withDeadline(t, 500*time.Millisecond)
	f := newFixture(t, testPolicy)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	v := &PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy",
		parse: func(b []byte) (*policy.Policy, error) {
			<-release
			return policy.Parse(b)
		}}
	body := reviewBody(t, "configmaps", "UPDATE", "canary-router-system",
		policyConfigMap("canary-router-policy", testPolicy, true), false)
	stop := make(chan struct{})
	pods := podLoad(t, f.admitter.PodHandler(), stop)
	results := make(chan answered, 8)
	for range 8 {
		go func() { results <- timedServe(f.admitter.PolicyHandler(v), body) }()
	}
	for range 8 {
		a := <-results
		if a.err != nil || a.code != http.StatusOK || a.resp.Allowed || a.resp.Result.Code != http.StatusServiceUnavailable ||
			a.resp.UID != "uid-1" || !strings.Contains(a.resp.Result.Message, "could not be validated within 500ms") {
			t.Errorf("held validation: HTTP %d, %+v, %v; want a 503 refusal for uid-1", a.code, a.resp, a.err)
		}
		if a.took > 2*admissionDeadline {
			t.Errorf("held validation answered after %v, deadline %v", a.took, admissionDeadline)
		}
	}
	close(stop)
	checkPodsRouted(t, pods())
	unblock()
	// The pool drains once the held work ends, and validates again.
	for deadline := time.Now().Add(5 * time.Second); len(policyPool.slots) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d policy slots still taken after the held validations ended", len(policyPool.slots))
		}
	}
	if a := timedServe(f.admitter.PolicyHandler(v), body); a.err != nil || !a.resp.Allowed {
		t.Errorf("validation after the pool drained: %+v, %v; want allowed", a.resp, a.err)
	}
}

// TestStuckWorkersDeadlineAndReadiness wedges every admission worker: an
// admission is still answered by its deadline, as each webhook's failure
// policy has it, the worker probe takes the replica out of readiness, and
// it comes back once the workers are free.
func TestStuckWorkersDeadlineAndReadiness(t *testing.T) {
	withDeadline(t, 300*time.Millisecond)
	f := newFixture(t, testPolicy)
	a := f.admitter
	entered := make(chan struct{}, maxWorkers)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	stuck := a.handler(resourcePods, func(r *wire.Review) wire.Response {
		entered <- struct{}{}
		<-release
		return wire.Allowed(r.UID, nil)
	}, nil)
	pod := deploymentPod("shop", "web", "7d4b9c", nil)
	podBody := reviewBody(t, "pods", "CREATE", "shop", pod, false)
	var holders sync.WaitGroup
	defer holders.Wait()
	for range maxWorkers {
		holders.Go(func() { timedServe(stuck, podBody) })
	}
	for range maxWorkers {
		<-entered
	}

	got := timedServe(a.PodHandler(), podBody)
	if got.err != nil || got.code != http.StatusOK || got.resp.Allowed || got.resp.UID != "uid-1" ||
		got.resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(got.resp.Result.Message, "no routing decision within 300ms") {
		t.Errorf("pod with every worker stuck: HTTP %d, %+v, %v; want a 503 refusal for uid-1", got.code, got.resp, got.err)
	}
	if got.took > time.Second {
		t.Errorf("pod with every worker stuck answered after %v, deadline %v", got.took, admissionDeadline)
	}
	ns := reviewBody(t, "namespaces", "CREATE", "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, false)
	got = timedServe(a.NamespaceHandler(), ns)
	if got.err != nil || !got.resp.Allowed || len(got.resp.Warnings) != 1 || !strings.Contains(got.resp.Warnings[0], "admitted unchanged") {
		t.Errorf("namespace with every worker stuck: %+v, %v; want admitted unchanged with a warning", got.resp, got.err)
	}
	if n := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(resourcePods, causeTimeout)); n < 1 {
		t.Errorf("pods timed out counted %v, want at least 1", n)
	}

	p := newWorkerProbe(a, time.Now)
	probed := make(chan struct{})
	go func() {
		p.once()
		close(probed)
	}()
	time.Sleep(workersReadyWithin + 200*time.Millisecond)
	if err := p.ready(); err == nil || !strings.Contains(err.Error(), "waited") {
		t.Errorf("ready with every worker stuck = %v, want an error", err)
	}
	if err := p.live(); err != nil {
		t.Errorf("live after %v stuck = %v, want nil (not yet wedged)", workersReadyWithin, err)
	}
	unblock()
	<-probed
	p.once()
	if err := p.ready(); err != nil {
		t.Errorf("ready once the workers are free = %v", err)
	}
}

func TestWorkerHealth(t *testing.T) {
	now := time.Unix(1700000000, 0)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	for _, c := range []struct {
		name             string
		pending          int64
		lastTook         time.Duration
		wantReady, wantL bool
	}{
		{"never probed", 0, 0, true, true},
		{"fast", 0, 50 * time.Microsecond, true, true},
		{"in flight briefly", ago(200 * time.Millisecond), 0, true, true},
		{"in flight past readiness", ago(workersReadyWithin + time.Millisecond), 0, false, true},
		{"last one slow", 0, workersReadyWithin + time.Millisecond, false, true},
		{"wedged", ago(workersLiveWithin + time.Second), 0, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ready, live := workerHealth(now, c.pending, c.lastTook)
			if (ready == nil) != c.wantReady || (live == nil) != c.wantL {
				t.Errorf("workerHealth = ready %v, live %v; want ready %v, live %v", ready, live, c.wantReady, c.wantL)
			}
		})
	}
}

// TestHealthzFailsWhenWedged: /healthz reads the worker probe.
func TestHealthzFailsWhenWedged(t *testing.T) {
	f := newFixture(t, testPolicy)
	s := NewServer(ServerOptions{}, f.admitter, nil)
	code := func() int {
		req, _ := http.NewRequest(http.MethodGet, "/healthz", nil)
		rec := httptest.NewRecorder()
		s.healthz(rec, req)
		return rec.Code
	}
	if c := code(); c != http.StatusOK {
		t.Fatalf("healthz of a fresh server: %d", c)
	}
	s.workers.pending.Store(time.Now().Add(-workersLiveWithin - time.Second).UnixNano())
	if c := code(); c != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the probe stuck past %v: %d, want 503", workersLiveWithin, c)
	}
}

// TestProbeReviewDecodes: the test admission is a review the worker
// answers, not one it refuses as malformed.
func TestProbeReviewDecodes(t *testing.T) {
	f := newFixture(t, testPolicy)
	code, resp := f.admitter.answer(probeReview, resourcePods, probeAdmit)
	raw, _ := json.Marshal(resp)
	if code != http.StatusOK || !resp.Allowed || resp.UID != "canary-router-worker-probe" {
		t.Fatalf("probe answered %d %s", code, raw)
	}
}
