package rollout

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
)

// fakeStatus is the status object; a write of the weights reaches the
// store the way the OverlayWatcher carries it on every replica.
type fakeStatus struct {
	data   map[string]string
	store  *inforce.Store
	events []Event
}

func (f *fakeStatus) Load(context.Context) (map[string]string, error) { return maps.Clone(f.data), nil }
func (f *fakeStatus) Save(_ context.Context, d map[string]string) error {
	if f.data == nil {
		f.data = map[string]string{} // the writer creates a deleted object
	}
	maps.Copy(f.data, d)
	f.store.SetOverlay(inforce.DecodeOverlay(f.data[WeightsKey]))
	return nil
}
func (f *fakeStatus) Event(w bool, r, m string) {
	f.events = append(f.events, Event{Warning: w, Reason: r, Message: m})
}

// migrated plays the migration: done for the snapshot routing now.
func (f *fakeStatus) migrated() {
	f.data[migrate.StatusKey] = migrate.Status{Digest: f.store.Load().Digest, Phase: migrate.PhaseComplete}.Encode()
}

type fakeQuerier map[string]float64

func (q fakeQuerier) Query(_ context.Context, _, query string) (float64, error) {
	v, ok := q[query]
	if !ok {
		return 0, context.DeadlineExceeded
	}
	return v, nil
}

type fakePods struct{}

func (fakePods) Revisions() []podview.RevisionCount { return nil }
func (fakePods) Synced() bool                       { return true }

type fakeHealth struct{ h map[string]ProxyHealth }

func (f fakeHealth) Health() map[string]ProxyHealth { return f.h }

func TestControllerWalksThroughTheStatusObject(t *testing.T) {
	doc := head + `rollout:
  interval: 10s
  onFailure: rollback
  steps: [{canary: 10, hold: 30s}, {canary: 100}]
  gates:
    prometheus:
      url: http://prometheus:9090
      queries: [{name: rejects, query: 'rejects{rev="{{ .Revision }}"}', max: 0}]
`
	store := inforce.NewStore(time.Now, nil, nil)
	if _, err := store.Apply([]byte(doc), "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	status := &fakeStatus{data: map[string]string{}, store: store}
	prom := fakeQuerier{`rejects{rev="1-25"}`: 0, `max(up{app="istiod",istio_io_rev="1-25"})`: 1,
		`time() - max(timestamp(up{app="istiod",istio_io_rev="1-25"}))`: 5}
	reg := prometheus.NewRegistry()
	health := fakeHealth{map[string]ProxyHealth{"1-24": {Pods: 8, Ready: 8}, "1-25": {Pods: 2, Ready: 2}}}
	c := New(Options{Base: store.Base, Effective: store.Load, Istio: func() *istio.State { return istioState("1-24", "1-25") },
		Pods: fakePods{}, Health: health, Querier: prom, Status: status, PrometheusAllowed: []string{"http://prometheus:9090"},
		Now: func() time.Time { return now }, Registerer: reg})
	pass := func(after time.Duration) *State {
		t.Helper()
		now = now.Add(after)
		if _, err := c.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, _ := Decode(status.data)
		return st
	}
	st := pass(0)
	if st.Phase != PhaseProgressing || store.Load().Policy.Targets[1].Weight != 10 || store.Load().Rollout.Step != 0 {
		t.Fatalf("start: %+v, routing %+v", st, store.Load().Policy.Targets)
	}
	if st = pass(time.Second); st.Phase != PhaseProgressing {
		t.Fatalf("advanced before the migration: %s", st.Phase)
	}
	status.migrated()
	if st = pass(time.Second); st.Phase != PhaseHolding {
		t.Fatalf("after the migration: %s", st.Phase)
	}
	st = pass(30 * time.Second)
	if st.Phase != PhaseProgressing || st.Step != 1 || store.Load().Policy.Targets[1].Weight != 100 {
		t.Fatalf("step 2: %+v", st)
	}
	// The old step's "done" is for another digest: not done for step 2.
	if st = pass(time.Second); st.Phase != PhaseProgressing {
		t.Fatalf("a stale migration status advanced the rollout: %s", st.Phase)
	}
	status.migrated()
	pass(time.Second)
	prom[`rejects{rev="1-25"}`] = 4 // the canary turns bad during the hold
	st = pass(10 * time.Second)
	if st.Phase != PhaseRollingBack || store.Load().Policy.Targets[1].Weight != 0 {
		t.Fatalf("rollback: %+v", st)
	}
	if got := testutil.ToFloat64(c.metrics.phase.WithLabelValues("RollingBack")); got != 1 {
		t.Fatalf("phase metric %g", got)
	}
	if got := testutil.ToFloat64(c.metrics.gateValue.WithLabelValues("rejects")); got != 4 {
		t.Fatalf("gate value metric %g", got)
	}
	status.migrated()
	if st = pass(time.Second); st.Phase != PhaseAborted {
		t.Fatalf("after moving back: %s", st.Phase)
	}
	var reasons []string
	for _, e := range status.events {
		reasons = append(reasons, e.Reason)
	}
	if got := strings.Join(reasons, " "); got != "RolloutStarted StepMigrated RolloutStep StepMigrated RollingBack RolledBack" {
		t.Fatalf("events %s", got)
	}

	// Prometheus gone during a retry's hold: paused, not advanced.
	prom[`rejects{rev="1-25"}`] = 0
	status.data[RequestKey] = ActionRetry + "/1"
	if st = pass(time.Second); st.Phase != PhaseProgressing || st.Attempt != 1 {
		t.Fatalf("retry: %+v", st)
	}
	status.migrated()
	if st = pass(time.Second); st.Phase != PhaseHolding {
		t.Fatalf("retry migrated: %s", st.Phase)
	}
	delete(prom, `rejects{rev="1-25"}`)
	if st = pass(10 * time.Second); st.Phase != PhasePaused || !strings.Contains(st.Reason, "unknown") {
		t.Fatalf("prometheus down: %+v", st)
	}

	// The rollout block removed: state and weights go, the policy routes.
	if _, err := store.Apply([]byte(head), "test"); err != nil {
		t.Fatal(err)
	}
	if st = pass(time.Second); st != nil || status.data[WeightsKey] != "" || store.Load().Rollout != nil {
		t.Fatalf("after removal: %+v %q", st, status.data[WeightsKey])
	}
}

func TestSkippedWorkloadsSettleBeforeAStepCountsAsMigrated(t *testing.T) {
	doc := head + "rollout: {steps: [{canary: 10, hold: 30s}, {canary: 100}]}\n"
	store := inforce.NewStore(time.Now, nil, nil)
	if _, err := store.Apply([]byte(doc), "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	status := &fakeStatus{data: map[string]string{}, store: store}
	c := New(Options{Base: store.Base, Effective: store.Load, Istio: func() *istio.State { return istioState("1-24", "1-25") },
		Pods: fakePods{}, Health: fakeHealth{map[string]ProxyHealth{}}, Status: status, Now: func() time.Time { return now }})
	if _, err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := Decode(status.data)
	mst := migrate.Status{Digest: store.Load().Digest, Phase: migrate.PhaseComplete, Skipped: 2,
		Conditions: []metav1.Condition{{Type: "Complete", Status: "True", LastTransitionTime: metav1.NewTime(now)}}}
	status.data[migrate.StatusKey] = mst.Encode()
	if got := c.migration(status.data, st, now.Add(10*time.Second)); got.State != MigrationPending {
		t.Fatalf("10 s after completing with skips: %v", got.State)
	}
	if got := c.migration(status.data, st, now.Add(31*time.Second)); got.State != MigrationDone {
		t.Fatalf("31 s after completing with skips: %v", got.State)
	}
	// With reasons recorded: unavailable workloads hold the step however
	// long; opted-out ones do not.
	for _, tc := range []struct {
		reasons string
		want    MigrationState
	}{
		{`{"unavailable":1,"opted-out":1}`, MigrationPending},
		{`{"target-down":2}`, MigrationPending},
		{`{"opted-out":2}`, MigrationDone},
	} {
		enc := strings.TrimSuffix(mst.Encode(), "}") + `,"skippedByReason":` + tc.reasons + "}"
		status.data[migrate.StatusKey] = enc
		if got := c.migration(status.data, st, now.Add(time.Hour)); got.State != tc.want {
			t.Errorf("skips %s: %v, want %v", tc.reasons, got.State, tc.want)
		}
	}
}
