package rolloutcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/rollout"
)

// Exit codes of `rollout status --watch` beyond cmdutil.ExitOK (Complete),
// cmdutil.ExitFailure (Aborted, or an error) and cmdutil.ExitUsage.
const (
	// exitTimeout: --timeout passed before Complete or Aborted. Not 1,
	// which kubectl rollout status uses for both: a script that rolls
	// back on a failed rollout must not do so because it stopped waiting.
	exitTimeout = 3
	// exitInterrupted: Ctrl-C or SIGTERM, as a shell reports SIGINT.
	exitInterrupted = 130
)

// Terminal control sequences: cursor home, then erase the screen, as
// `watch` and `kubectl argo rollouts get rollout --watch` redraw.
const clearScreen = "\x1b[H\x1b[2J"

// defaultWatchInterval is how often --watch reads the status object: the
// leader writes it every few seconds at most, and a GET of one ConfigMap
// every 2s is nothing to the API server.
const defaultWatchInterval = 2 * time.Second

// watchOptions is how `rollout status --watch` reads and draws.
type watchOptions struct {
	interval, timeout time.Duration
	// redraw clears the screen before each frame (stdout is a terminal);
	// otherwise frames are appended, separated by a blank line.
	redraw bool
	pal    report.Palette
	output string
}

// watchOutcome is whether a watch ends at this state, and its exit code:
// Complete 0, Aborted 1. An Aborted rollout with a retry the leader has
// not acted on yet is about to start again, so the watch goes on.
func watchOutcome(st *rollout.State, ctl rollout.Control) (code int, done bool) {
	if st == nil {
		return 0, false
	}
	switch st.Phase {
	case rollout.PhaseComplete:
		return cmdutil.ExitOK, true
	case rollout.PhaseAborted:
		if report.PendingRequest(st, ctl) == rollout.ActionRetry {
			return 0, false
		}
		return cmdutil.ExitFailure, true
	}
	return 0, false
}

// watchRollout draws the rollout each time it changes until it is
// Complete or Aborted, the timeout passes or ctx ends; it returns the
// exit code. load reads the status object's data.
func watchRollout(ctx context.Context, load func(context.Context) (map[string]string, error), stdout, stderr io.Writer, o watchOptions) int {
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var (
		data  map[string]string
		last  string
		drawn bool
	)
	for {
		rctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
		fresh, err := load(rctx)
		cancel()
		if err == nil {
			data = fresh
		}
		if ctx.Err() == nil { // a read cut short by the deadline is no news
			var frame string
			if o.output == cmdutil.OutputText {
				frame = report.RolloutFrame(data, err, o.pal)
			} else if err == nil {
				var b bytes.Buffer
				_ = cmdutil.WriteDocument(&b, o.output, report.RolloutDoc(data)) // plain structs: cannot fail
				frame = b.String()
			}
			if frame != "" && frame != last {
				drawFrame(stdout, frame, drawn, o)
				last, drawn = frame, true
			}
			if err == nil {
				st, ctl := rollout.Decode(data)
				if code, done := watchOutcome(st, ctl); done {
					if code != cmdutil.ExitOK {
						fmt.Fprintf(stderr, "rollout %s: %s\n", st.Phase, st.Reason)
					}
					return code
				}
			}
		}
		select {
		case <-ctx.Done():
			st, _ := rollout.Decode(data)
			phase := "no rollout yet"
			if st != nil {
				phase = string(st.Phase)
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(stderr, "canary-router rollout status: not Complete or Aborted within --timeout %s (phase: %s)\n", o.timeout, phase)
				return exitTimeout
			}
			return exitInterrupted
		case <-tick.C:
		}
	}
}

// drawFrame puts a frame on stdout: over the last one on a terminal,
// after it otherwise (a log or a pipe keeps every state, readable).
func drawFrame(w io.Writer, frame string, drawn bool, o watchOptions) {
	switch {
	case o.output == cmdutil.OutputYAML && drawn:
		frame = "---\n" + frame
	case o.output != cmdutil.OutputText:
	case o.redraw:
		frame = clearScreen + frame
	case drawn:
		frame = "\n" + frame
	}
	_, _ = io.WriteString(w, frame)
}
