package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/webhook/policy"
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
		got := rolloutPatch(tc.action, "freeze", now)
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
	writeRolloutStatus(&b, nil, rollout.Control{}, migrate.Status{}, migrate.Control{})
	if !strings.Contains(b.String(), "No rollout") {
		t.Fatal(b.String())
	}
	b.Reset()
	st := &rollout.State{ID: "1-25:1-24,1-25", Step: 1, LastPassed: 0, Phase: rollout.PhasePaused,
		Reason:   "gate xds-rejects failed at step 2 (2 times in a row): 7 is above max 0",
		Weights:  []policy.Target{{Revision: "1-24", Weight: 75}, {Revision: "1-25", Weight: 25}},
		Gates:    []rollout.GateResult{{Name: "xds-rejects", Value: 7, Verdict: rollout.VerdictFail, FailureLimit: 1, Message: "7 is above max 0"}},
		Failures: map[string]int{"xds-rejects": 2}}
	writeRolloutStatus(&b, st, rollout.Control{Action: "retry", RequestID: "x"}, migrate.Status{Phase: migrate.PhaseComplete, Done: 4, Total: 4}, migrate.Control{})
	for _, want := range []string{"Phase:    Paused", "Step:     2 (last passed: 1)", "Weights:  1-24=75 1-25=25",
		"Reason:   gate xds-rejects failed", "Pending:  retry", "Migration: Complete, 4 of 4", "xds-rejects  fail     7      2/2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestRolloutCommandsRegistered(t *testing.T) {
	for _, a := range rolloutActions {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"rollout", a.name, "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "--kubeconfig") {
			t.Errorf("rollout %s --help: exit %d\n%s%s", a.name, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"rollout", "promote", "extra"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
}
