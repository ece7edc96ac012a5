package rolloutcmd

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
)

// statusData is the status object's data holding st (and extra keys).
func statusWith(st rollout.State, extra ...string) map[string]string {
	data := map[string]string{rollout.StateKey: st.Encode()}
	for i := 0; i+1 < len(extra); i += 2 {
		data[extra[i]] = extra[i+1]
	}
	return data
}

func TestWatchOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		st       *rollout.State
		ctl      rollout.Control
		code     int
		finished bool
	}{
		{"no rollout yet", nil, rollout.Control{}, 0, false},
		{"progressing", &rollout.State{Phase: rollout.PhaseProgressing}, rollout.Control{}, 0, false},
		{"holding", &rollout.State{Phase: rollout.PhaseHolding}, rollout.Control{}, 0, false},
		{"paused", &rollout.State{Phase: rollout.PhasePaused}, rollout.Control{}, 0, false},
		{"rolling back", &rollout.State{Phase: rollout.PhaseRollingBack}, rollout.Control{}, 0, false},
		{"complete", &rollout.State{Phase: rollout.PhaseComplete}, rollout.Control{}, cmdutil.ExitOK, true},
		{"aborted", &rollout.State{Phase: rollout.PhaseAborted}, rollout.Control{}, cmdutil.ExitFailure, true},
		{"aborted, retry acted on", &rollout.State{Phase: rollout.PhaseAborted, LastRequest: "1"},
			rollout.Control{Action: rollout.ActionRetry, RequestID: "1"}, cmdutil.ExitFailure, true},
		{"aborted, retry pending", &rollout.State{Phase: rollout.PhaseAborted, LastRequest: "1"},
			rollout.Control{Action: rollout.ActionRetry, RequestID: "2"}, 0, false},
		{"complete, promote pending", &rollout.State{Phase: rollout.PhaseComplete},
			rollout.Control{Action: rollout.ActionPromote, RequestID: "2"}, cmdutil.ExitOK, true},
	} {
		code, done := watchOutcome(tc.st, tc.ctl)
		if code != tc.code || done != tc.finished {
			t.Errorf("%s: (%d, %v), want (%d, %v)", tc.name, code, done, tc.code, tc.finished)
		}
	}
}

// ansi matches an SGR sequence.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestRolloutFrameColour(t *testing.T) {
	st := rollout.State{ID: "r", Phase: rollout.PhaseHolding, Weights: []policy.Target{{Revision: "canary", Weight: 5}},
		Gates: []rollout.GateResult{{Name: "a", Verdict: rollout.VerdictPass}, {Name: "b", Verdict: rollout.VerdictUnknown}}}
	plain := report.RolloutFrame(statusWith(st), nil, false)
	if strings.Contains(plain, "\x1b[") {
		t.Errorf("escape sequences without colour:\n%q", plain)
	}
	coloured := report.RolloutFrame(statusWith(st), nil, true)
	for _, want := range []string{"Phase:    \x1b[36mHolding\x1b[0m", "\x1b[32mpass\x1b[0m", "\x1b[33munknown\x1b[0m"} {
		if !strings.Contains(coloured, want) {
			t.Errorf("missing %q in\n%q", want, coloured)
		}
	}
	// The tabwriter counts the sequences as width: every verdict carries
	// the same, so on screen the columns after them still line up.
	cols := map[int]bool{}
	for _, line := range strings.Split(ansi.ReplaceAllString(coloured, ""), "\n") {
		if strings.HasPrefix(line, "  a ") || strings.HasPrefix(line, "  b ") {
			cols[strings.Index(line, " 0 ")] = true
		}
	}
	if len(cols) != 1 {
		t.Errorf("value columns at %v in\n%s", cols, coloured)
	}
	if p := report.RolloutFrame(statusWith(st), errors.New("connection refused"), false); !strings.Contains(p, "Reading the status object failed, retrying: connection refused") {
		t.Errorf("read error not shown:\n%s", p)
	}
}

func TestUseColor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	// A buffer is not a terminal: never colour, whatever the environment.
	if report.UseColor(&bytes.Buffer{}, false, env()) {
		t.Error("colour on a buffer")
	}
	if report.UseColor(&bytes.Buffer{}, true, env()) || report.UseColor(&bytes.Buffer{}, false, env("NO_COLOR", "1")) {
		t.Error("colour with --no-color or NO_COLOR")
	}
}

// sequence is a status object that changes on each read, then stays.
type sequence struct {
	frames []map[string]string
	errs   []error
	reads  int
}

func (s *sequence) load(context.Context) (map[string]string, error) {
	i := min(s.reads, len(s.frames)-1)
	s.reads++
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	return s.frames[i], err
}

func TestWatchRollout(t *testing.T) {
	holding := statusWith(rollout.State{ID: "r", Phase: rollout.PhaseHolding, Step: 1})
	complete := statusWith(rollout.State{ID: "r", Phase: rollout.PhaseComplete, Step: 3})
	aborted := statusWith(rollout.State{ID: "r", Phase: rollout.PhaseAborted, Reason: "gate xds-rejects failed"})
	for _, tc := range []struct {
		name        string
		seq         *sequence
		o           watchOptions
		code        int
		frames      int // frames drawn
		stdout      []string
		stderr      string
		notInStdout string
	}{
		{name: "appends each change, once, on a pipe", seq: &sequence{frames: []map[string]string{holding, holding, holding, complete}},
			o: watchOptions{output: cmdutil.OutputText}, code: cmdutil.ExitOK, frames: 2,
			stdout: []string{"Phase:    Holding", "\n\nRollout r, attempt 1\nPhase:    Complete"}, notInStdout: clearScreen},
		{name: "redraws on a terminal", seq: &sequence{frames: []map[string]string{holding, complete}},
			o: watchOptions{output: cmdutil.OutputText, redraw: true}, code: cmdutil.ExitOK, frames: 2,
			stdout: []string{clearScreen + "Rollout r", clearScreen + "Rollout r, attempt 1\nPhase:    Complete"}},
		{name: "aborted exits 1", seq: &sequence{frames: []map[string]string{holding, aborted}},
			o: watchOptions{output: cmdutil.OutputText}, code: cmdutil.ExitFailure, frames: 2, stderr: "rollout Aborted: gate xds-rejects failed"},
		{name: "a failed read is shown and retried", seq: &sequence{frames: []map[string]string{holding, nil, complete}, errs: []error{nil, errors.New("refused")}},
			o: watchOptions{output: cmdutil.OutputText}, code: cmdutil.ExitOK, frames: 3, stdout: []string{"Phase:    Holding since", "retrying: refused", "Phase:    Complete"}},
		{name: "timeout exits 3", seq: &sequence{frames: []map[string]string{holding}},
			o: watchOptions{output: cmdutil.OutputText, timeout: 50 * time.Millisecond}, code: exitTimeout, frames: 1,
			stderr: "not Complete or Aborted within --timeout 50ms (phase: Holding)"},
		{name: "no rollout yet, then complete", seq: &sequence{frames: []map[string]string{nil, complete}},
			o: watchOptions{output: cmdutil.OutputText}, code: cmdutil.ExitOK, frames: 2, stdout: []string{"No rollout", "Complete"}},
		{name: "json documents, one per change", seq: &sequence{frames: []map[string]string{holding, holding, complete}},
			o: watchOptions{output: cmdutil.OutputJSON, redraw: true}, code: cmdutil.ExitOK, frames: 2,
			stdout: []string{`"phase": "Holding"`, `"phase": "Complete"`}, notInStdout: clearScreen},
		{name: "yaml documents separated", seq: &sequence{frames: []map[string]string{holding, complete}},
			o: watchOptions{output: cmdutil.OutputYAML}, code: cmdutil.ExitOK, frames: 2, stdout: []string{"---\n", "phase: Complete"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.interval = time.Millisecond
			var stdout, stderr bytes.Buffer
			code := watchRollout(context.Background(), tc.seq.load, &stdout, &stderr, tc.o)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			out := stdout.String()
			if n := strings.Count(out, "Rollout r,") + strings.Count(out, "No rollout") + strings.Count(out, `"rollout":`) + strings.Count(out, "rollout:\n"); n != tc.frames {
				t.Errorf("%d frames, want %d:\n%s", n, tc.frames, out)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in\n%q", want, out)
				}
			}
			if tc.notInStdout != "" && strings.Contains(out, tc.notInStdout) {
				t.Errorf("%q in\n%q", tc.notInStdout, out)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
	// Interrupted (Ctrl-C): 130, as a shell reports SIGINT.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := watchRollout(ctx, (&sequence{frames: []map[string]string{holding}}).load, &stdout, &stderr, watchOptions{interval: time.Second, output: cmdutil.OutputText}); code != exitInterrupted {
		t.Errorf("interrupted: exit %d", code)
	}
}
