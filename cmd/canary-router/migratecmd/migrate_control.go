package migratecmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/migrate"
)

// NewControl returns the options of `migrate <action>`: pause, resume or
// status.
func NewControl(action string) *ControlOptions { return &ControlOptions{action: action} }

// ControlOptions is migrate pause, resume and status: they touch
// only the status object, so an operator needs nothing but get and patch
// on ConfigMap canary-router-status in the router's namespace.

type ControlOptions struct {
	action                  string // pause, resume or status
	kubeconfig, kubeContext string
	namespace, reason       string
}

func (c *ControlOptions) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl)")
	fs.StringVar(&c.kubeContext, "context", "", "kubeconfig context (default: the current context)")
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "the router's namespace, where the status object is")
	if c.action == "pause" {
		fs.StringVar(&c.reason, "reason", "paused by an operator", "why, shown by migrate status and canary-router status")
	}
}

func (c *ControlOptions) Check(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

func (c *ControlOptions) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "migrate")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	w := &migrate.KubeWriter{Client: kube.Client, Namespace: c.namespace}
	switch c.action {
	case "pause":
		err = w.SaveStatus(ctx, map[string]string{migrate.PausedKey: "true", migrate.PauseReasonKey: c.reason})
	case "resume":
		// The reason stays for the record; a failed batch's workloads are
		// never restarted again for the same policy.
		err = w.SaveStatus(ctx, map[string]string{migrate.PausedKey: "false"})
	}
	if err != nil {
		fmt.Fprintf(stderr, "canary-router migrate %s: %v\n", c.action, err)
		return 1
	}
	data, err := w.LoadStatus(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "canary-router migrate %s: reading the status object: %v\n", c.action, err)
		return 1
	}
	st, ctl := migrate.DecodeStatus(data)
	report.WriteMigrationStatus(stdout, st, ctl)
	return 0
}
