package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
)

// TestStateLostMidHoldStops: the status object deleted (or its state
// garbled) while step 2 holds puts the rollout in Paused "state lost" at
// step 2's weights with the migration paused and an Event; it never starts
// again from step 0. Resume continues at step 2; retry starts over.
func TestStateLostMidHoldStops(t *testing.T) {
	doc := head + "rollout:\n  interval: 10s\n  steps: [{canary: 10, hold: 30s}, {canary: 50, hold: 10m}, {canary: 100}]\n"
	restartedFromZero := 0
	for _, how := range []string{"deleted", "deleted, routing dropped it", "garbled", "key removed", "deleted, new leader"} {
		t.Run(how, func(t *testing.T) {
			store := inforce.NewStore(time.Now, nil, nil)
			if _, err := store.Apply([]byte(doc), "test"); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			status := &fakeStatus{data: map[string]string{}, store: store}
			health := fakeHealth{map[string]ProxyHealth{"1-24": {Pods: 8, Ready: 8}, "1-25": {Pods: 2, Ready: 2}}}
			o := Options{Base: store.Base, Effective: store.Load, Istio: func() *istio.State { return istioState("1-24", "1-25") },
				Pods: fakePods{}, Health: health, Status: status, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()}
			c := New(o)
			pass := func(after time.Duration) *State {
				t.Helper()
				now = now.Add(after)
				if _, err := c.Pass(context.Background()); err != nil {
					t.Fatal(err)
				}
				st, _ := Decode(status.data)
				return st
			}
			pass(0)
			status.migrated()
			pass(time.Second)
			pass(time.Second)
			st := pass(30 * time.Second) // step 1's hold passed: step 2
			status.migrated()
			pass(time.Second)
			if st = pass(time.Second); st.Step != 1 || st.Phase != PhaseHolding {
				t.Fatalf("not holding step 2: %+v", st)
			}
			events := len(status.events)
			switch how {
			case "deleted":
				status.data = nil // the OverlayWatcher keeps the weights in force
			case "deleted, routing dropped it":
				status.data = nil
				store.SetOverlay(nil) // a replica that lost them too: the leader's memory still knows
			case "deleted, new leader":
				status.data = nil
				o.Registerer = nil
				c = New(o) // a process that never saw the state; only its store still routes by it
			case "garbled":
				status.data[StateKey] = "{garbled"
			case "key removed":
				delete(status.data, StateKey)
			}
			st = pass(time.Second)
			if st == nil || st.Phase != PhasePaused || st.Step != 1 || st.Weights[1].Weight != 50 {
				restartedFromZero++
				t.Fatalf("after the state was lost (%s): %+v", how, st)
			}
			if store.Load().Policy.Targets[1].Weight != 50 {
				t.Fatalf("routing moved to %+v", store.Load().Policy.Targets)
			}
			if status.data[migrate.PausedKey] != "true" {
				t.Fatalf("migration not paused: %q", status.data[migrate.PausedKey])
			}
			if len(status.events) == events || status.events[len(status.events)-1].Reason != "RolloutStateLost" {
				t.Fatalf("no RolloutStateLost event: %+v", status.events[events:])
			}
			if st = pass(time.Minute); st.Phase != PhasePaused || st.Step != 1 {
				t.Fatalf("a lost rollout moved on its own: %+v", st)
			}
			status.data[RequestKey] = ActionResume + "/r1"
			if st = pass(time.Second); st.Phase != PhaseProgressing || st.Step != 1 || status.data[migrate.PausedKey] != "false" {
				t.Fatalf("resume: %+v, migration paused %q", st, status.data[migrate.PausedKey])
			}
		})
	}
	fmt.Printf("RESULT state-lost-mid-hold cases=5 restarted-from-step-0=%d\n", restartedFromZero)
}

// TestRolloutBlockRemovedAfterComplete: removing the block of a completed
// rollout keeps routing at its final weights until the targets agree, so
// the migration moves nothing back; once they agree the state goes.
func TestRolloutBlockRemovedAfterComplete(t *testing.T) {
	plan := head + "rollout:\n  interval: 10s\n  steps: [{canary: 100, hold: 0s}]\n"
	store := inforce.NewStore(time.Now, nil, nil)
	if _, err := store.Apply([]byte(plan), "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	status := &fakeStatus{data: map[string]string{}, store: store}
	health := fakeHealth{map[string]ProxyHealth{"1-25": {Pods: 4, Ready: 4}}}
	c := New(Options{Base: store.Base, Effective: store.Load, Istio: func() *istio.State { return istioState("1-24", "1-25") },
		Pods: fakePods{}, Health: health, Status: status, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
	pass := func() *State {
		t.Helper()
		now = now.Add(time.Second)
		if _, err := c.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, _ := Decode(status.data)
		return st
	}
	pass()
	status.migrated()
	pass()
	if st := pass(); st.Phase != PhaseComplete {
		t.Fatalf("not complete: %+v", st)
	}
	canaryWeight := func() float64 { return store.Load().Policy.Targets[1].Weight }
	// The block removed; the targets still say 1-24 at 100 (head).
	if _, err := store.Apply([]byte(head), "test"); err != nil {
		t.Fatal(err)
	}
	movedBack := 0
	if canaryWeight() != 100 {
		movedBack++
		t.Errorf("routing went back to the targets the moment the block was removed: %+v", store.Load().Policy.Targets)
	}
	events := len(status.events)
	pass()
	pass()
	if canaryWeight() != 100 || status.data[WeightsKey] == "" {
		movedBack++
		t.Errorf("after the leader's passes routing is %+v", store.Load().Policy.Targets)
	}
	var removedEvents int
	for _, e := range status.events[events:] {
		if e.Reason == "RolloutBlockRemoved" {
			removedEvents++
		}
	}
	if removedEvents != 1 {
		t.Errorf("%d RolloutBlockRemoved events, want 1: %+v", removedEvents, status.events[events:])
	}
	// The targets agree: the completed weights are the policy's own now.
	agree := "granularity: workload\ntargets: [{revision: \"1-24\", weight: 0}, {revision: \"1-25\", weight: 100}]\n"
	if _, err := store.Apply([]byte(agree), "test"); err != nil {
		t.Fatal(err)
	}
	if st := pass(); st != nil || status.data[WeightsKey] != "" || canaryWeight() != 100 {
		t.Errorf("with the targets agreeing: state %+v, weights key %q, routing %+v", st, status.data[WeightsKey], store.Load().Policy.Targets)
	}
	fmt.Printf("RESULT rollout-block-removed-after-complete routing-moved-back=%d blockRemovedEvents=%d\n", movedBack, removedEvents)
}

// TestNoCanaryPodsPausesWithoutFlapping: a step whose hold sees no canary
// pods pauses, stays paused (no resume/pause round trip while the data
// stays missing) and stops for an operator after maxUnknown.
func TestNoCanaryPodsPausesWithoutFlapping(t *testing.T) {
	doc := head + "rollout:\n  interval: 10s\n  steps: [{canary: 10, hold: 1m}, {canary: 100}]\n  gates: {maxUnknown: 2m}\n"
	store := inforce.NewStore(time.Now, nil, nil)
	if _, err := store.Apply([]byte(doc), "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	status := &fakeStatus{data: map[string]string{}, store: store}
	c := New(Options{Base: store.Base, Effective: store.Load, Istio: func() *istio.State { return istioState("1-24", "1-25") },
		Pods: fakePods{}, Health: fakeHealth{map[string]ProxyHealth{"1-24": {Pods: 8, Ready: 8}}}, Status: status,
		Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
	var st *State
	pass := func(after time.Duration) {
		t.Helper()
		now = now.Add(after)
		if _, err := c.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, _ = Decode(status.data)
	}
	pass(0)
	status.migrated()
	for range 30 {
		pass(5 * time.Second)
	}
	resumed := 0
	for _, e := range status.events {
		if e.Reason == "RolloutResumed" {
			resumed++
		}
	}
	if st.Step != 0 || st.Phase != PhasePaused || st.AutoResume || resumed != 0 {
		t.Fatalf("after 150s with no canary pods: step %d %s auto=%v, %d resumes; reason %q", st.Step+1, st.Phase, st.AutoResume, resumed, st.Reason)
	}
	fmt.Printf("RESULT no-canary-pods passes=30 step=%d phase=%s resumes=%d stoppedForOperator=%v\n", st.Step+1, st.Phase, resumed, !st.AutoResume)
}
