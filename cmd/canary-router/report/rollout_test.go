package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

func TestRolloutPatch(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 5, time.UTC)
	for _, tc := range []struct {
		action string
		want   map[string]string
	}{
		{"status", nil},
		{"pause", map[string]string{rollout.PausedKey: "true", rollout.PauseReasonKey: "freeze"}},
		{"resume", map[string]string{rollout.PausedKey: "false", rollout.RequestKey: "resume/2026-12-02T15:00:00.000000005Z"}},
		{"promote", map[string]string{rollout.RequestKey: "promote/2026-12-02T15:00:00.000000005Z"}},
		{"abort", map[string]string{rollout.RequestKey: "abort/2026-12-02T15:00:00.000000005Z"}},
		{"retry", map[string]string{rollout.RequestKey: "retry/2026-12-02T15:00:00.000000005Z"}},
	} {
		got := RolloutPatch(tc.action, "freeze", now)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.action, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.action, k, got[k], v)
			}
		}
		// The leader reads back what the CLI wrote.
		if _, ctl := rollout.Decode(got); tc.action == "promote" && (ctl.Action != "promote" || ctl.RequestID == "") {
			t.Errorf("decoded %+v", ctl)
		}
	}
}

func TestRolloutStatusRender(t *testing.T) {
	var b bytes.Buffer
	writeRolloutStatus(&b, nil, rollout.Control{}, migrate.Status{}, migrate.Control{}, Palette(false))
	if !strings.Contains(b.String(), "No rollout") {
		t.Fatal(b.String())
	}
	b.Reset()
	st := &rollout.State{ID: "1-25:1-24,1-25", Step: 1, LastPassed: 0, Phase: rollout.PhasePaused,
		Reason:   "gate xds-rejects failed at step 2 (2 times in a row): 7 is above max 0",
		Weights:  []policy.Target{{Revision: "1-24", Weight: 75}, {Revision: "1-25", Weight: 25}},
		Gates:    []rollout.GateResult{{Name: "xds-rejects", Value: 7, Verdict: rollout.VerdictFail, FailureLimit: 1, Message: "7 is above max 0"}},
		Failures: map[string]int{"xds-rejects": 2}}
	writeRolloutStatus(&b, st, rollout.Control{Action: "retry", RequestID: "x"}, migrate.Status{Phase: migrate.PhaseComplete, Done: 4, Total: 4}, migrate.Control{}, Palette(false))
	for _, want := range []string{"Phase:    Paused", "Step:     2 (last passed: 1)", "Weights:  1-24=75 1-25=25",
		"Reason:   gate xds-rejects failed", "Pending:  retry", "Migration: Complete, this step's plan: 4 of 4 workloads moved", "xds-rejects  fail     7      2/2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestStatusShowsTheWeightsInForce(t *testing.T) {
	doc := "granularity: workload\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n" +
		"rollout: {steps: [{canary: 25, hold: 1m}, {canary: 100}]}\n"
	o := &inforce.Overlay{ID: "canary:stable,canary", Step: 0, Phase: "Paused", Reason: "gate x unknown",
		Weights: []policy.Target{{Revision: "stable", Weight: 75}, {Revision: "canary", Weight: 25}}}
	r := BuildStatus(&ClusterSnapshot{PolicyRef: "ns/p", PolicyDoc: []byte(doc), Overlay: o})
	if r.Rollout == nil || r.Rollout.Step != 1 || r.Rollout.Phase != "Paused" {
		t.Fatalf("rollout %+v", r.Rollout)
	}
	for _, rev := range r.Revisions {
		if rev.Name == "canary" && rev.TargetShare != 0.25 {
			t.Fatalf("canary target %v, want the weights in force", rev.TargetShare)
		}
	}
	var b bytes.Buffer
	WriteStatusText(&b, r)
	if !strings.Contains(b.String(), "rollout: step 1, Paused") || !strings.Contains(b.String(), "reason: gate x unknown") {
		t.Fatal(b.String())
	}
	// Another rollout's weights are not this policy's.
	o.ID = "other:stable,canary"
	if r := BuildStatus(&ClusterSnapshot{PolicyRef: "ns/p", PolicyDoc: []byte(doc), Overlay: o}); r.Rollout != nil {
		t.Fatal("applied a foreign overlay")
	}
}
