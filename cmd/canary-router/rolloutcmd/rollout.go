package rolloutcmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/rollout"
)

// New returns the options of `rollout <action>`.
func New(action string) *Options { return &Options{action: action} }

// Options is rollout status, pause, resume, promote, abort
// and retry. Each is a merge patch of one or two keys of the status object
// (ConfigMap canary-router-status), which the leader acts on: an operator
// needs only get and patch on that one ConfigMap in the router's
// namespace (Role canary-router-rollout-operator), no cluster-admin.
type Options struct {
	action                  string
	kubeconfig, kubeContext string
	namespace, reason       string
	output                  string
	// status only: --watch and how it reads, and --no-color.
	watch             bool
	interval, timeout time.Duration
	noColor           bool
}

func (c *Options) Bind(fs *pflag.FlagSet) {
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

func (c *Options) Check(args []string) error {
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

func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "rollout")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	s := &rollout.KubeStatus{Client: kube.Client, Namespace: c.namespace}
	if c.watch {
		return watchRollout(ctx, s.Load, stdout, stderr, watchOptions{interval: c.interval, timeout: c.timeout,
			redraw: report.IsTerminal(stdout), pal: report.UseColor(stdout, c.noColor, os.Getenv), output: c.output})
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	if c.action != "status" {
		if err := report.RequestRollout(ctx, s, c.action, c.reason, time.Now()); err != nil {
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
		if err := cmdutil.WriteDocument(stdout, c.output, report.RolloutDoc(data)); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		return cmdutil.ExitOK
	}
	_, _ = io.WriteString(stdout, report.RolloutFrame(data, nil, report.UseColor(stdout, c.noColor, os.Getenv)))
	return cmdutil.ExitOK
}
