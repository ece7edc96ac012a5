// Command demo shows canary-router doing its job on a local control plane,
// with no cluster of your own: stand-in Istio revisions stable and canary,
// the router installed from deploy/, a few namespaces and Deployments, and
// a canary raised from 10 to 50 percent, then two rollouts the router
// drives itself: a healthy one to 100 percent, and one whose canary turns
// bad at 25 percent and is rolled back. Run it with `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "_demo", "working folder: control plane data, logs, kubeconfig (kept until the next run)")
	flag.StringVar(&o.router, "router", "bin/canary-router", "the canary-router binary")
	flag.BoolVar(&o.nonInteractive, "non-interactive", os.Getenv("DEMO_NONINTERACTIVE") != "" || os.Getenv("CI") != "",
		"exit after the last step instead of waiting for Ctrl-C (also DEMO_NONINTERACTIVE=1 or CI=true)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}
