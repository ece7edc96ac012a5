package migrate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sim is a cluster the test rolls by hand: a restart bumps the
// generation and marks the workload; roll() finishes every rollout,
// moving the pods to where the policy routes them, except for workloads
// in stuck.
type sim struct {
	in       Input
	restarts map[Ref]int
	stuck    map[Ref]bool
}

func newSim(t *testing.T, n int) *sim {
	p := mustPolicy(t, "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n")
	s := &sim{restarts: map[Ref]int{}, stuck: map[Ref]bool{}, in: Input{Policy: p, Digest: "d1",
		Revisions: map[string]string{"stable": "stable", "canary": "canary"}, Pods: map[Ref]PodCounts{},
		Namespaces: []Namespace{{Name: "shop", Labels: optedIn}}}}
	for i := range n {
		w := healthy("shop", KindDeployment, fmt.Sprintf("w%02d", i), 2)
		s.in.Workloads = append(s.in.Workloads, w)
		s.in.Pods[w.Ref] = PodCounts{"stable": 2}
	}
	return s
}

func (s *sim) apply(r Result) {
	for _, m := range r.Restart {
		for i := range s.in.Workloads {
			w := &s.in.Workloads[i]
			if w.Ref == m.Ref && w.Migrated != s.in.Digest {
				w.Migrated = s.in.Digest
				w.Generation++
				w.Updated, w.Available = 0, 0
				s.restarts[m.Ref]++
			}
		}
	}
}

func (s *sim) roll() {
	for i := range s.in.Workloads {
		w := &s.in.Workloads[i]
		if w.ObservedGeneration == w.Generation || s.stuck[w.Ref] {
			continue
		}
		w.ObservedGeneration, w.Updated, w.Available = w.Generation, w.Replicas, w.Replicas
		s.in.Pods[w.Ref] = PodCounts{WorkloadChoice(s.in.Policy, w.Ref): int(w.Replicas)}
	}
}

func (s *sim) rolling() int {
	n := 0
	for _, w := range s.in.Workloads {
		if !Complete(w) {
			n++
		}
	}
	return n
}

func TestStepDrivesAWholeMigration(t *testing.T) {
	s := newSim(t, 20)
	set := Settings{BatchSize: 3, Interval: 10 * time.Second, ReadinessTimeout: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	var st Status
	drifted := len(NewPlan(s.in, 3).Moves)
	for pass := 0; pass < 200; pass++ {
		r := Step(s.in, NewPlan(s.in, set.BatchSize), st, Control{}, set, now)
		st = r.Status
		s.apply(r)
		if n := s.rolling(); n > set.BatchSize {
			t.Fatalf("%d workloads rolling at once, batch size %d", n, set.BatchSize)
		}
		if st.Phase == PhaseComplete {
			break
		}
		now = now.Add(max(r.RequeueAfter, time.Second))
		s.roll()
	}
	if st.Phase != PhaseComplete || st.Restarted != drifted || st.Done != drifted {
		t.Fatalf("phase %s restarted %d done %d, want Complete with %d", st.Phase, st.Restarted, st.Done, drifted)
	}
	for ref, n := range s.restarts {
		if n != 1 {
			t.Errorf("%v restarted %d times", ref, n)
		}
	}
	if len(s.restarts) != drifted {
		t.Errorf("%d workloads restarted, %d drifted", len(s.restarts), drifted)
	}
}

func TestStepFailedBatchPausesUntilResumed(t *testing.T) {
	s := newSim(t, 20)
	set := Settings{BatchSize: 2, Interval: 0, ReadinessTimeout: 30 * time.Second}
	first := NewPlan(s.in, 2).Moves[0].Ref
	s.stuck[first] = true
	now := time.Unix(1_700_000_000, 0)
	var st Status
	var ctl Control
	var failed []Failure
	for pass := 0; pass < 100 && ctl.Reason() == ""; pass++ {
		r := Step(s.in, NewPlan(s.in, 2), st, ctl, set, now)
		st, failed = r.Status, append(failed, r.Failed...)
		s.apply(r)
		if r.Pause != "" {
			ctl = Control{Paused: true, PauseReason: r.Pause}
		}
		now = now.Add(5 * time.Second)
		s.roll()
	}
	if st.Phase != PhasePaused || len(failed) != 1 || failed[0].Ref != first || !strings.Contains(ctl.PauseReason, first.String()) {
		t.Fatalf("phase %s failed %v reason %q", st.Phase, failed, ctl.PauseReason)
	}
	before := len(s.restarts)
	for range 10 { // paused: nothing else restarts
		r := Step(s.in, NewPlan(s.in, 2), st, ctl, set, now)
		st = r.Status
		s.apply(r)
		now = now.Add(time.Minute)
	}
	if len(s.restarts) != before || before != 2 {
		t.Fatalf("restarts while paused: %d -> %d", before, len(s.restarts))
	}
	// The fault is fixed and the operator resumes: the rest moves, the
	// failed workload is not restarted again.
	delete(s.stuck, first)
	s.roll()
	ctl = Control{}
	for pass := 0; pass < 200 && st.Phase != PhaseComplete; pass++ {
		r := Step(s.in, NewPlan(s.in, 2), st, ctl, set, now)
		st = r.Status
		s.apply(r)
		now = now.Add(5 * time.Second)
		s.roll()
	}
	if st.Phase != PhaseComplete || s.restarts[first] != 1 {
		t.Fatalf("phase %s, %v restarted %d times", st.Phase, first, s.restarts[first])
	}
}

// A leader that recorded a batch and died before patching it: the next
// one patches the same workloads with the same restartedAt, once.
func TestStepRepeatsRecordedRestarts(t *testing.T) {
	s := newSim(t, 10)
	set := Settings{BatchSize: 2, ReadinessTimeout: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	r := Step(s.in, NewPlan(s.in, 2), Status{}, Control{}, set, now)
	if len(r.Restart) != 2 {
		t.Fatalf("restart %v", r.Restart)
	}
	// Status written, patches lost. The next leader reads the status.
	st, _ := DecodeStatus(map[string]string{StatusKey: r.Status.Encode()})
	again := Step(s.in, NewPlan(s.in, 2), st, Control{}, set, now.Add(time.Second))
	if len(again.Restart) != 2 || again.RestartedAt != r.RestartedAt || again.Restart[0].Ref != r.Restart[0].Ref {
		t.Fatalf("second leader restarts %v at %q, want %v at %q", again.Restart, again.RestartedAt, r.Restart, r.RestartedAt)
	}
	s.apply(again)
	third := Step(s.in, NewPlan(s.in, 2), again.Status, Control{}, set, now.Add(2*time.Second))
	if len(third.Restart) != 0 {
		t.Fatalf("restarted again: %v", third.Restart)
	}
}

func TestStepNewPolicyStartsOver(t *testing.T) {
	s := newSim(t, 4)
	set := Settings{BatchSize: 10, ReadinessTimeout: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	r := Step(s.in, NewPlan(s.in, 10), Status{Digest: "old", Restarted: 7, Batches: 3}, Control{}, set, now)
	if r.Status.Digest != "d1" || r.Status.Batches != 0 || r.Status.Restarted != len(r.Restart) {
		t.Fatalf("status %+v", r.Status)
	}
}

// A new policy while a batch of the old one still rolls: the rolling
// workloads count against the batch size until they complete.
func TestStepNewPolicyWaitsForRollingRestarts(t *testing.T) {
	s := newSim(t, 10)
	set := Settings{BatchSize: 2, ReadinessTimeout: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	r := Step(s.in, NewPlan(s.in, 2), Status{}, Control{}, set, now)
	s.apply(r) // two rolling, not rolled yet
	s.in.Digest = "d2"
	r = Step(s.in, NewPlan(s.in, 2), r.Status, Control{}, set, now.Add(time.Second))
	if len(r.Restart) != 0 || s.rolling() != 2 {
		t.Fatalf("new policy restarted %v while %d still roll", r.Restart, s.rolling())
	}
	s.roll()
	r = Step(s.in, NewPlan(s.in, 2), r.Status, Control{}, set, now.Add(2*time.Second))
	if len(r.Restart) != 2 {
		t.Fatalf("after the rollouts completed: restart %v, want 2", r.Restart)
	}
}
