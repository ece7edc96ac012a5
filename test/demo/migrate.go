package main

import (
	"context"
	"fmt"
	"os/exec"
)

// migrate moves running pods the way an operator would: print the plan,
// then carry it out in batches with the migrator, instead of restarting
// every Deployment in every namespace by hand.
func (d *demo) migrate(ctx context.Context) error {
	for _, args := range [][]string{
		{"migrate"},
		{"migrate", "--apply", "--batch-size", "2", "--interval", "0s"},
	} {
		fmt.Fprintf(d.out, "\n    $ canary-router %s\n", joinArgs(args))
		cmd := exec.CommandContext(ctx, d.o.router, append(args, "--kubeconfig", d.cluster.Kubeconfig)...)
		out, err := cmd.CombinedOutput()
		fmt.Fprint(d.out, indent(out))
		if err != nil {
			return fmt.Errorf("canary-router %s: %w", joinArgs(args), err)
		}
	}
	return d.waitRollouts(ctx)
}

func joinArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}
