package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/rollout"
)

// rolloutControlConfig is rollout status, pause, resume, promote, abort
// and retry. Each is a merge patch of one or two keys of the status object
// (ConfigMap canary-router-status), which the leader acts on: an operator
// needs only get and patch on that one ConfigMap in the router's
// namespace (Role canary-router-rollout-operator), no cluster-admin.
type rolloutControlConfig struct {
	action                  string
	kubeconfig, kubeContext string
	namespace, reason       string
	output                  string
	// status only: --watch and how it reads, and --no-color.
	watch             bool
	interval, timeout time.Duration
	noColor           bool
}

// rolloutActions are the subcommands, in the order help lists them.
var rolloutActions = []struct{ name, short string }{
	{"status", "Show the rollout: step, phase, weights in force, gates and the last reason"},
	{"pause", "Hold the rollout at the weights in force (the migration of the step finishes)"},
	{"resume", "Resume a paused rollout: the step in force starts again and its hold restarts"},
	{"promote", "End the hold of the step in force (a manual hold too); the gates still decide"},
	{"abort", "Roll the canary back to weight 0; the migration moves its workloads back"},
	{"retry", "Start an aborted or paused rollout again from its first step"},
}

func (c *rolloutControlConfig) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "the router's namespace, where the status object is")
	if c.action == "pause" {
		fs.StringVar(&c.reason, "reason", "paused by an operator", "why, shown by rollout status")
	}
	if c.action == "status" {
		fs.BoolVarP(&c.watch, "watch", "w", false, "redraw the rollout as it changes; exit 0 when Complete, 1 when Aborted, 3 at --timeout")
		fs.DurationVar(&c.interval, "interval", defaultWatchInterval, "with --watch, how often to read the status object")
		fs.DurationVar(&c.timeout, "timeout", 0, "with --watch, how long to wait for Complete or Aborted (0: no limit)")
		fs.BoolVar(&c.noColor, "no-color", false, "no colours (they are used only on a terminal)")
	}
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputText, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

func (c *rolloutControlConfig) Check(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	if c.interval < 0 || (c.watch && c.interval == 0) {
		return fmt.Errorf("--interval must be positive, got %s", c.interval)
	}
	if c.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative, got %s", c.timeout)
	}
	return nil
}

// rolloutPatch is what a command writes. One-shot commands carry an id
// (the time), so the leader acts on each exactly once however often it
// reads the object.
func rolloutPatch(action, reason string, now time.Time) map[string]string {
	id := now.UTC().Format(time.RFC3339Nano)
	switch action {
	case "pause":
		return map[string]string{rollout.PausedKey: "true", rollout.PauseReasonKey: reason}
	case "resume":
		return map[string]string{rollout.PausedKey: "false", rollout.RequestKey: rollout.ActionResume + "/" + id}
	case "promote", "abort", "retry":
		return map[string]string{rollout.RequestKey: action + "/" + id}
	}
	return nil
}

// requestRollout writes an operator's command to the status object: the
// one code path of the rollout commands and the dashboard's buttons.
func requestRollout(ctx context.Context, s *rollout.KubeStatus, action, reason string, now time.Time) error {
	patch := rolloutPatch(action, reason, now)
	if patch == nil {
		return fmt.Errorf("no rollout command %q", action)
	}
	return s.Save(ctx, patch)
}

func (c *rolloutControlConfig) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "rollout")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	s := &rollout.KubeStatus{Client: kube.Client, Namespace: c.namespace}
	if c.watch {
		return watchRollout(ctx, s.Load, stdout, stderr, watchOptions{interval: c.interval, timeout: c.timeout,
			redraw: isTerminal(stdout), pal: useColor(stdout, c.noColor, os.Getenv), output: c.output})
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	if c.action != "status" {
		if err := requestRollout(ctx, s, c.action, c.reason, time.Now()); err != nil {
			fmt.Fprintf(stderr, "canary-router rollout %s: %v\n", c.action, err)
			return cmdutil.ExitFailure
		}
		if c.output == cmdutil.OutputText {
			fmt.Fprintf(stdout, "rollout %s requested; the leader acts on it within seconds\n", c.action)
		}
	}
	data, err := s.Load(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "canary-router rollout %s: reading the status object: %v\n", c.action, err)
		return cmdutil.ExitFailure
	}
	if c.output != cmdutil.OutputText {
		if err := cmdutil.WriteDocument(stdout, c.output, rolloutDoc(data)); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		return cmdutil.ExitOK
	}
	_, _ = io.WriteString(stdout, rolloutFrame(data, nil, useColor(stdout, c.noColor, os.Getenv)))
	return cmdutil.ExitOK
}

// rolloutEntries are the rollout group's subcommands for the registry.
func rolloutEntries() []entry {
	out := make([]entry, 0, len(rolloutActions))
	for _, a := range rolloutActions {
		out = append(out, entry{cmd: &cobra.Command{Use: a.name, Short: a.short}, runner: &rolloutControlConfig{action: a.name}})
	}
	return out
}
