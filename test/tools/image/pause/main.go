// Command pause is the pod sandbox's infra process for the real-node tests:
// it holds the pod's namespaces open until it is told to stop, and reaps
// the zombies that land on it as PID 1 of a shared PID namespace. It is
// what registry.k8s.io/pause does, built from Go so the tests import a
// local image and never pull one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
