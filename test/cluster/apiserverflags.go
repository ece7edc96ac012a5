package cluster

import (
	"context"
	"errors"
	"strings"
)

// RestartAPIServerWithFlags restarts kube-apiserver with flags added to (or,
// for a flag it already has, replacing) the ones Start gave it, keeping its
// port, data and certificates. The real-node tests (test/node) use it for
// --enable-aggregator-routing=true, which makes the apiserver call a
// webhook's Service at its endpoints' pod IPs, as there is no kube-proxy.
func (c *Cluster) RestartAPIServerWithFlags(ctx context.Context, flags ...string) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("cluster: RestartAPIServerWithFlags after Stop")
	}
	args := make([]string, 0, len(c.apiserverArgs)+len(flags))
	for _, a := range c.apiserverArgs {
		if !overridden(a, flags) {
			args = append(args, a)
		}
	}
	c.apiserverArgs = append(args, flags...)
	c.mu.Unlock()
	return c.RestartAPIServer(ctx)
}

// overridden reports whether flag --name=... is among flags.
func overridden(flag string, flags []string) bool {
	name, _, _ := strings.Cut(flag, "=")
	for _, f := range flags {
		if n, _, _ := strings.Cut(f, "="); n == name {
			return true
		}
	}
	return false
}
