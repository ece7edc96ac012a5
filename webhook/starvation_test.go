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

	"github.com/canary-router/canary-router/policy"
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

// blocker is an admission that holds its worker until released, and says
// when it started.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker(n int) *blocker {
	return &blocker{entered: make(chan struct{}, n), release: make(chan struct{})}
}

func (b *blocker) admit(r *wire.Review) wire.Response {
	b.entered <- struct{}{}
	<-b.release
	return wire.Allowed(r.UID, nil)
}

func (b *blocker) wait(n int) {
	for range n {
		<-b.entered
	}
}

func (b *blocker) unblock() { b.once.Do(func() { close(b.release) }) }

// TestStuckAdmissionsAnsweredByDeadline wedges as many admissions as
// there are workers: each is answered by its deadline, as its webhook's
// failure policy has it, their workers are retired and replaced so the
// next pod is routed, and a worker stuck long past its deadline fails
// liveness.
func TestStuckAdmissionsAnsweredByDeadline(t *testing.T) {
	withDeadline(t, 300*time.Millisecond)
	f := newFixture(t, testPolicy)
	a := f.admitter
	b := newBlocker(int(maxWorkers) + 1)
	defer b.unblock()
	pod := deploymentPod("shop", "web", "7d4b9c", nil)
	podBody := reviewBody(t, "pods", "CREATE", "shop", pod, false)
	stuck := a.handler(resourcePods, b.admit, nil)
	results := make(chan answered, maxWorkers)
	for range maxWorkers {
		go func() { results <- timedServe(stuck, podBody) }()
	}
	b.wait(int(maxWorkers))
	for range maxWorkers {
		got := <-results
		if got.err != nil || got.code != http.StatusOK || got.resp.Allowed || got.resp.UID != "uid-1" ||
			got.resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(got.resp.Result.Message, "no routing decision within 300ms") {
			t.Errorf("stuck pod: HTTP %d, %+v, %v; want a 503 refusal for uid-1", got.code, got.resp, got.err)
		}
		if got.took > time.Second {
			t.Errorf("stuck pod answered after %v, deadline %v", got.took, admissionDeadline)
		}
	}
	if n := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(resourcePods, causeTimeout)); n != float64(maxWorkers) {
		t.Errorf("pods timed out counted %v, want %d", n, maxWorkers)
	}
	if got := timedServe(a.PodHandler(), podBody); got.err != nil || !got.resp.Allowed || len(got.resp.Patch) == 0 || got.took > time.Second {
		t.Errorf("pod after %d workers were retired: %+v, %v in %v; want routed at once", maxWorkers, got.resp, got.err, got.took)
	}

	ns := reviewBody(t, "namespaces", "CREATE", "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, false)
	got := timedServe(a.handler(resourceNamespaces, b.admit, nil), ns)
	if got.err != nil || !got.resp.Allowed || len(got.resp.Warnings) != 1 || !strings.Contains(got.resp.Warnings[0], "admitted unchanged") {
		t.Errorf("stuck namespace: %+v, %v; want admitted unchanged with a warning", got.resp, got.err)
	}

	later := newWorkerProbe(a, func() time.Time { return time.Now().Add(workersLiveWithin + time.Second) })
	if err := later.live(); err == nil || !strings.Contains(err.Error(), "past its deadline") {
		t.Errorf("live with workers stuck %v past their deadline = %v, want an error", workersLiveWithin, err)
	}
	b.unblock()
	for deadline := time.Now().Add(5 * time.Second); !oldestRetired().IsZero(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("retired workers still listed 5s after their work ended")
		}
	}
	if err := later.live(); err != nil {
		t.Errorf("live once the retired workers ended = %v", err)
	}
}

// TestBusyWorkersFailReadiness keeps every worker busy (within its
// deadline): the worker probe's test admission waits, and /readyz fails
// until the workers are free again.
func TestBusyWorkersFailReadiness(t *testing.T) {
	f := newFixture(t, testPolicy)
	a := f.admitter
	b := newBlocker(int(maxWorkers))
	defer b.unblock()
	pod := deploymentPod("shop", "web", "7d4b9c", nil)
	podBody := reviewBody(t, "pods", "CREATE", "shop", pod, false)
	var holders sync.WaitGroup
	defer holders.Wait()
	far := time.Now().Add(time.Hour).UnixNano()
	for range maxWorkers {
		holders.Go(func() {
			if t, _ := runOnWorker(a, podBody, resourcePods, b.admit, far); t != nil {
				releaseTask(t)
			}
		})
	}
	b.wait(int(maxWorkers))
	p := newWorkerProbe(a, time.Now)
	probed := make(chan struct{})
	go func() {
		p.once()
		close(probed)
	}()
	time.Sleep(workersReadyWithin + 200*time.Millisecond)
	if err := p.ready(); err == nil || !strings.Contains(err.Error(), "waited") {
		t.Errorf("ready with every worker busy = %v, want an error", err)
	}
	if err := p.live(); err != nil {
		t.Errorf("live after %v busy = %v, want nil (not wedged)", workersReadyWithin, err)
	}
	b.unblock()
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
		retired          time.Time
		wantReady, wantL bool
	}{
		{"never probed", 0, 0, time.Time{}, true, true},
		{"fast", 0, 50 * time.Microsecond, time.Time{}, true, true},
		{"in flight briefly", ago(200 * time.Millisecond), 0, time.Time{}, true, true},
		{"in flight past readiness", ago(workersReadyWithin + time.Millisecond), 0, time.Time{}, false, true},
		{"last one slow", 0, workersReadyWithin + time.Millisecond, time.Time{}, false, true},
		{"probe wedged", ago(workersLiveWithin + time.Second), 0, time.Time{}, false, false},
		{"a worker retired a while ago", 0, 0, now.Add(-time.Second), true, true},
		{"a worker retired long ago", 0, 0, now.Add(-workersLiveWithin - time.Second), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ready, live := workerHealth(now, c.pending, c.lastTook, c.retired)
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
