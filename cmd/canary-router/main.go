// Command canary-router is a mutating admission webhook that routes Istio
// sidecar injection between control-plane revisions by percentage, and
// the operator's CLI for it (also a kubectl plugin as kubectl-canary_router).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks the command to stop (it ends ctx); once it has
	// been delivered the trap goes, so a second one ends a command that
	// does not stop in time the way it would end any process.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := execute(ctx, commandName(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs a command line as canary-router and returns the process exit
// code (the commands are in registry, cli.go).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, "canary-router", args, stdout, stderr)
}
