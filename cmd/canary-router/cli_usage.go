package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// missingCommand is the usage error of a command that only groups others
// (the root, rollout, migrate): it names what may follow, on one line.
func missingCommand(c *cobra.Command) error {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return fmt.Errorf("a command is required: one of %s", strings.Join(names, ", "))
}

// helpCommand replaces cobra's help command, which prints the root's help
// and exits 0 for a topic it does not know: a typo in a script's
// `canary-router help statsu` must fail like `canary-router statsu` does.
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q", strings.Join(args, " "))}
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
}

// strictCompletion makes `completion SHELL` refuse a shell it has no
// script for (cobra's group prints its help and exits 0).
func strictCompletion(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{missingCommand(c)}
			}
			var shells []string
			for _, s := range c.Commands() {
				shells = append(shells, s.Name())
			}
			return usageError{errors.New("unknown shell " + fmt.Sprintf("%q", args[0]) + ": one of " + strings.Join(shells, ", "))}
		}
	}
}
