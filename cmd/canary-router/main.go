// Command canary-router is a mutating admission webhook that routes Istio
// sidecar injection between control-plane revisions by percentage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `canary-router routes Istio sidecar injection between control-plane revisions.

Usage:
  canary-router serve [flags]        run the admission webhook
  canary-router validate FILE...     check policy files offline
  canary-router simulate --policy F  preview where a policy sends namespaces, workloads and pods
  canary-router status [flags]       show the rollout in a cluster: target and observed share per revision
  canary-router init [flags]         print a first policy from the live Istio revisions (--apply creates it if absent)
  canary-router uninstall [flags]    plan removing the router without unmeshing a namespace (--apply to act)
  canary-router version              print the version

Run "canary-router COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "simulate":
		return simulateCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr)
	case "init":
		return initCmd(ctx, args[1:], stdout, stderr)
	case "uninstall":
		return uninstallCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}
