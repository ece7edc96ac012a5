package rollout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/harness"
)

// watchNamespace holds a status object of the watch tests' own, written
// by the test rather than the leader (which owns the router's namespace's
// one), so each phase comes exactly when the test says.
const watchNamespace = "watch-status"

// writeWatchStatus creates or replaces the test's status object with a
// rollout at step (0-based) in phase.
func writeWatchStatus(t *testing.T, step int, phase rollout.Phase, reason string) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	st := rollout.State{ID: "watch", Step: step, LastPassed: step - 1, Phase: phase, Reason: reason,
		Weights:        []policy.Target{{Revision: "stable", Weight: float64(100 - 25*(step+1))}, {Revision: "canary", Weight: float64(25 * (step + 1))}},
		LastTransition: time.Now().UTC().Truncate(time.Second)}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: migrate.StatusConfigMap, Namespace: watchNamespace},
		Data: map[string]string{rollout.StateKey: st.Encode()}}
	cms := env.Cluster.Client.CoreV1().ConfigMaps(watchNamespace)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
		return
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// tmuxSession is the CLI running in a pseudo-terminal of its own tmux
// server (its own socket, so it never touches a user's sessions).
type tmuxSession struct {
	t      *testing.T
	socket string
}

// startTmux runs canary-router with args in a 160x50 tmux window; the
// shell prints EXIT=<code> when it ends and keeps the pane open.
func startTmux(t *testing.T, args ...string) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, socket: fmt.Sprintf("canary-router-watch-%d-%d", os.Getpid(), time.Now().UnixNano())}
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{env.Bin}, args...) {
		quoted = append(quoted, "'"+a+"'")
	}
	script := "env -u NO_COLOR " + strings.Join(quoted, " ") + "; echo EXIT=$?; sleep 600"
	if out, err := exec.Command("tmux", "-L", s.socket, "-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "50", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

// screen is what the pane shows now; escapes keeps the colour sequences.
func (s *tmuxSession) screen(escapes bool) string {
	args := []string{"-L", s.socket, "capture-pane", "-p"}
	if escapes {
		args = append(args, "-e")
	}
	out, err := exec.Command("tmux", args...).Output()
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

// waitScreen waits until the screen contains want.
func (s *tmuxSession) waitScreen(want string) string {
	s.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = s.screen(false)
		return strings.Contains(last, want), nil
	})
	if err != nil {
		s.t.Fatalf("the screen never showed %q:\n%s", want, last)
	}
	return last
}

var exitLine = regexp.MustCompile(`EXIT=(\d+)`)

// TestWatchInTerminal runs `rollout status --watch` in a real terminal
// (tmux) against a status object on the control plane that moves through
// Holding, Progressing and Complete: each phase replaces the last on the
// screen (one frame, not appended), colours are on, and the process exits
// 0. Then Aborted exits 1, --no-color has no colour, and --timeout exits 3.
func TestWatchInTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the watch view needs a pseudo-terminal to test (apt-get install tmux)")
	}
	ctx := harness.Context(t, time.Minute)
	if _, err := env.Cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: watchNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	watch := []string{"rollout", "status", "--watch", "--interval", "200ms", "--namespace", watchNamespace, "--kubeconfig", env.Cluster.Kubeconfig}

	t.Run("complete", func(t *testing.T) {
		writeWatchStatus(t, 0, rollout.PhaseHolding, "")
		s := startTmux(t, watch...)
		s.waitScreen("Phase:    Holding")
		writeWatchStatus(t, 1, rollout.PhaseProgressing, "")
		s.waitScreen("Step:     2")
		writeWatchStatus(t, 2, rollout.PhaseHolding, "")
		s.waitScreen("Step:     3")
		coloured := s.screen(true)
		writeWatchStatus(t, 3, rollout.PhaseComplete, "")
		final := s.waitScreen("EXIT=")
		t.Logf("screen at the end:\n%s", final)
		if got := exitLine.FindStringSubmatch(final)[1]; got != "0" {
			t.Errorf("exit %s on Complete, want 0", got)
		}
		// Redrawn in place: one frame on the screen, the last.
		if n := strings.Count(final, "Rollout watch, attempt 1"); n != 1 {
			t.Errorf("%d frames on the screen, want 1 (redrawn in place)", n)
		}
		for _, stale := range []string{"Holding", "Progressing", "Step:     3"} {
			if strings.Contains(final, stale) {
				t.Errorf("%q still on the screen after Complete", stale)
			}
		}
		if !strings.Contains(final, "Phase:    Complete") || !strings.Contains(final, "Weights:  stable=0 canary=100") {
			t.Errorf("the screen does not show the Complete rollout")
		}
		if !strings.Contains(coloured, "\x1b[36mHolding") {
			t.Errorf("no colour for Holding on a terminal:\n%q", coloured)
		}
	})

	t.Run("aborted", func(t *testing.T) {
		writeWatchStatus(t, 1, rollout.PhaseRollingBack, "gate xds-rejects failed")
		s := startTmux(t, append(watch, "--no-color")...)
		s.waitScreen("Phase:    RollingBack")
		if e := s.screen(true); strings.Contains(e, "\x1b[31m") {
			t.Errorf("colour with --no-color:\n%q", e)
		}
		writeWatchStatus(t, 1, rollout.PhaseAborted, "gate xds-rejects failed")
		final := s.waitScreen("EXIT=")
		t.Logf("screen at the end:\n%s", final)
		if got := exitLine.FindStringSubmatch(final)[1]; got != "1" {
			t.Errorf("exit %s on Aborted, want 1", got)
		}
		if strings.Contains(final, "RollingBack") || !strings.Contains(final, "rollout Aborted: gate xds-rejects failed") {
			t.Errorf("the screen does not show the Aborted rollout alone")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		writeWatchStatus(t, 0, rollout.PhaseHolding, "")
		s := startTmux(t, append(watch, "--timeout", "2s")...)
		final := s.waitScreen("EXIT=")
		if got := exitLine.FindStringSubmatch(final)[1]; got != "3" || !strings.Contains(final, "within --timeout 2s (phase: Holding)") {
			t.Errorf("exit %s at --timeout, want 3 and the phase:\n%s", got, final)
		}
	})

	// On a pipe the frames are appended, a blank line apart, uncoloured:
	// a CI log keeps every state.
	t.Run("pipe", func(t *testing.T) {
		writeWatchStatus(t, 0, rollout.PhaseHolding, "")
		var stdout bytes.Buffer
		cmd := exec.Command(env.Bin, watch...)
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		time.Sleep(time.Second)
		writeWatchStatus(t, 3, rollout.PhaseComplete, "")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit: %v\n%s", err, stdout.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still watching 30s after Complete:\n%s", stdout.String())
		}
		out := stdout.String()
		if strings.Count(out, "Rollout watch, attempt 1") != 2 || !strings.Contains(out, "\n\nRollout watch") || strings.Contains(out, "\x1b[") {
			t.Errorf("want two plain frames a blank line apart:\n%q", out)
		}
	})
}
