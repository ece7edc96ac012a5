// Package cmdutil holds what every command of canary-router shares, as
// kubectl's cmdutil does: the exit codes, the Runner each command
// implements, the kubeconfig flags and clients, and -o.
package cmdutil

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
)

// Version is the binary's version, set by main from its build-time
// -ldflags "-X main.version=..."; it goes into the User-Agent.
var Version = "dev"

// WebhookConfigName names both of the router's webhook configurations,
// Mutating and Validating (deploy/base/webhooks.yaml).
const WebhookConfigName = "canary-router"

// OpTimeout bounds the cluster reads and writes of one operator command
// (init, uninstall, migrate, rollout, status).
const OpTimeout = 2 * time.Minute

// Exit codes, as kubectl and Go's flag package use them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Runner is a command's configuration: the command tree binds its flags,
// then Check turns bad flags or arguments into a usage error (exit 2)
// before Run starts; Run reports its own failures on stderr and returns
// the exit code. Neither may exit the process.
type Runner interface {
	Bind(fs *pflag.FlagSet)
	Check(args []string) error
	Run(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// NoArgs is the Check of a command that takes no positional arguments.
func NoArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}
