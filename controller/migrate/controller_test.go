package migrate

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
)

// fakeWriter records the controller's writes in order.
type fakeWriter struct {
	mu     sync.Mutex
	data   map[string]string
	log    []string
	events []string
}

func (f *fakeWriter) Restart(_ context.Context, r Ref, _, digest, at string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "restart "+r.String()+" "+digest+" "+at)
	return nil
}

func (f *fakeWriter) Relabel(_ context.Context, name, _, rev, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "relabel "+name+" "+rev)
	return nil
}

func (f *fakeWriter) LoadStatus(context.Context) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.data {
		out[k] = v
	}
	return out, nil
}

func (f *fakeWriter) SaveStatus(_ context.Context, data map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range data {
		f.data[k] = v
	}
	f.log = append(f.log, "status")
	return nil
}

func (f *fakeWriter) Event(r Ref, warning bool, reason, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, r.String()+" "+reason+" "+msg)
}

type staticSource struct{ w []Workload }

func (s staticSource) HasSynced() bool  { return true }
func (s staticSource) List() []Workload { return s.w }

type staticPods map[Ref]PodCounts

func (s staticPods) HasSynced() bool           { return true }
func (s staticPods) Counts() map[Ref]PodCounts { return s }

func TestControllerPass(t *testing.T) {
	doc := "granularity: workload\ntargets: [{revision: stable, weight: 0}, {revision: canary, weight: 100}]\nmigration: {batchSize: 2, interval: 0s}\n"
	snap, err := inforce.NewStore(time.Now, nil, nil).Apply([]byte(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	state := istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	}, []istio.Endpoints{{Service: "istiod-stable", Ready: true}, {Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
	var ws []Workload
	pods := staticPods{}
	for _, n := range []string{"a", "b", "c"} {
		w := healthy("shop", KindDeployment, n, 1)
		ws = append(ws, w)
		pods[w.Ref] = PodCounts{"stable": 1}
	}
	fw := &fakeWriter{data: map[string]string{}}
	reg := prometheus.NewRegistry()
	now := time.Unix(1_700_000_000, 0)
	c := New(Options{
		Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return state },
		Namespaces: func() []Namespace { return []Namespace{{Name: "shop", Labels: optedIn}} },
		Workloads:  staticSource{ws}, Pods: pods, Writer: fw, Now: func() time.Time { return now }, Registerer: reg,
	})
	r, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Restart) != 2 || len(fw.log) != 3 || fw.log[0] != "status" || !strings.HasPrefix(fw.log[1], "restart shop/Deployment/a "+snap.Digest) {
		t.Fatalf("writes %v: want the status first, then two restarts", fw.log)
	}
	if len(fw.events) != 2 || !strings.Contains(fw.events[0], "MigrationRestart") {
		t.Errorf("events %v", fw.events)
	}
	if got := testutil.ToFloat64(c.metrics.workloads.WithLabelValues("in_progress")); got != 2 {
		t.Errorf("in_progress = %v", got)
	}
	if got := testutil.ToFloat64(c.metrics.restarts); got != 2 {
		t.Errorf("restarts = %v", got)
	}
	// The same pass again (nothing rolled yet, restarts not seen by the
	// informer): the recorded batch is patched again with the same
	// restartedAt, nothing new starts.
	fw.log = nil
	if _, err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, l := range fw.log {
		if strings.Contains(l, "shop/Deployment/c") {
			t.Fatalf("a third workload started while the batch rolls: %v", fw.log)
		}
	}
	// Paused by an operator: no write at all but the status.
	fw.data[PausedKey] = "true"
	fw.log = nil
	if _, err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, l := range fw.log {
		if strings.HasPrefix(l, "restart") {
			t.Fatalf("restart while paused: %v", fw.log)
		}
	}
	if got := testutil.ToFloat64(c.metrics.paused); got != 1 {
		t.Errorf("paused = %v", got)
	}
}

// Without a migration block the controller writes nothing.
func TestControllerOffWithoutBlock(t *testing.T) {
	snap, err := inforce.NewStore(time.Now, nil, nil).Apply([]byte("granularity: workload\ntargets: [{revision: canary, weight: 100}]\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	fw := &fakeWriter{data: map[string]string{}}
	c := New(Options{Policy: func() *inforce.Snapshot { return snap }, Writer: fw})
	if _, err := c.Pass(context.Background()); err != nil || len(fw.log) != 0 {
		t.Fatalf("writes %v, err %v", fw.log, err)
	}
}

// With the block off, the drift is still shown: metrics and an Idle
// status with the pending moves, and no restart.
func TestControllerIdleShowsDrift(t *testing.T) {
	snap, err := inforce.NewStore(time.Now, nil, nil).Apply([]byte("granularity: workload\ntargets: [{revision: canary, weight: 100}]\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	state := istio.NewState([]istio.Config{{Name: "istio-sidecar-injector-canary", Rev: "canary"}},
		[]istio.Endpoints{{Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
	w := healthy("shop", KindDeployment, "a", 1)
	fw := &fakeWriter{data: map[string]string{}}
	c := New(Options{Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return state },
		Namespaces: func() []Namespace { return []Namespace{{Name: "shop", Labels: optedIn}} },
		Workloads:  staticSource{[]Workload{w}}, Pods: staticPods{w.Ref: {"stable": 1}}, Writer: fw})
	for range 2 {
		if _, err := c.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := DecodeStatus(fw.data)
	if len(fw.log) != 1 || st.Phase != PhaseIdle || st.PendingByTarget["canary"] != 1 {
		t.Fatalf("writes %v, status %+v: want one Idle status with 1 pending to canary", fw.log, st)
	}
	if got := testutil.ToFloat64(c.metrics.workloads.WithLabelValues("pending")); got != 1 {
		t.Errorf("pending = %v", got)
	}
}
