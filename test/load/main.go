// Command canary-router-load measures canary-router against a floor, on
// loopback only and bounded in count and time.
//
//	canary-router-load compare   drive the router's TLS server as kube-apiserver
//	                             does (HTTP/2, a pool of connections, many
//	                             concurrent requests, every response checked),
//	                             interleaved with a floor server, and print
//	                             throughput, latency and server CPU per request
//	canary-router-load apiserver create pods through a real control plane with
//	                             and without the router in the same run
//	canary-router-load soak      a fixed request rate for minutes against the router,
//	                             reporting errors, p99 per window and whether the
//	                             router's heap, goroutines and open fds stay flat
//	canary-router-load scale     two router replicas watching a control plane
//	                             filled with 10k, 30k and 100k pods: memory,
//	                             sync time, apiserver traffic, admission
//	                             latency against a floor, leader failover
//	canary-router-load report    write the results into docs/performance.md
//
// The floor ("canary-router-load floor", not listed in the usage) is a TLS
// server on the same stack as the router that answers every request with a
// canned AdmissionReview without decoding it: what any webhook costs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `canary-router-load measures canary-router against a no-decode floor.

Usage:
  canary-router-load compare [flags]     router vs floor over HTTP/2 and TLS
  canary-router-load apiserver [flags]   pod creation with and without the router
  canary-router-load soak [flags]        a fixed rate for minutes: errors, p99 per minute,
                                         the router's heap, goroutines and fds (docs/reliability.md)
  canary-router-load podview [flags]     heap held by the live pod view at 10k, 50k, 100k pods
  canary-router-load scale [flags]       two router replicas on a control plane of 10k, 30k, 100k pods:
                                         memory, sync time, API traffic, admission, failover
  canary-router-load report [flags]      write docs/performance.md from results

Run "canary-router-load COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "compare":
		err = compare(ctx, args[1:], stdout, stderr)
	case "apiserver":
		err = apiserverRun(ctx, args[1:], stdout, stderr)
	case "soak":
		err = soak(ctx, args[1:], stdout, stderr)
	case "podview":
		err = podviewMemory(args[1:], stdout, stderr)
	case "scale":
		err = scale(ctx, args[1:], stdout, stderr)
	case "report":
		err = report(args[1:], stdout, stderr)
	case "floor":
		err = floor(ctx, args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == errUsage {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "canary-router-load %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage reports bad flags, already explained by the flag package.
var errUsage = fmt.Errorf("usage")
