package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/dashboard"
	"github.com/canary-router/canary-router/cmd/canary-router/initpolicy"
	"github.com/canary-router/canary-router/cmd/canary-router/migratecmd"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/cmd/canary-router/rolloutcmd"
	"github.com/canary-router/canary-router/cmd/canary-router/serve"
	"github.com/canary-router/canary-router/cmd/canary-router/simulate"
	"github.com/canary-router/canary-router/cmd/canary-router/statuscmd"
	"github.com/canary-router/canary-router/cmd/canary-router/uninstall"
	"github.com/canary-router/canary-router/cmd/canary-router/validate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// entry is one command of the registry: its cobra help texts, the
// configuration that runs it (nil for a group such as "migrate" whose
// subcommands run), and its subcommands.
type entry struct {
	cmd    *cobra.Command
	runner cmdutil.Runner
	sub    []entry
}

// registry lists the commands, each with a fresh configuration, so every
// call of execute (tests run many) starts from the flag defaults.
//
// Adding a command (e.g. migrate, with migrate pause|resume):
//  1. a package cmd/canary-router/<command> with an Options type that
//     implements cmdutil.Runner: Bind(*pflag.FlagSet) for its flags
//     (kubeconfig flags: cmdutil.BindKubeFlags; -o: cmdutil.BindOutput),
//     Check(args) error for what the flags cannot say, and Run(ctx, args,
//     stdout, stderr) int with the command's logic; it imports no other
//     command, only cmdutil and report (test/layout checks);
//  2. one entry here: {cmd: &cobra.Command{Use: "migrate", Short: "..."},
//     runner: &migratecmd.Options{}}, and subcommands in sub:
//     sub: []entry{{cmd: &cobra.Command{Use: "pause"}, runner: migratecmd.NewControl("pause")}}.
//
// Help, -h, unknown flags, exit codes, completion and the single-dash
// spelling of long flags then come with it; cli_test.go's table lists the
// command so --help is checked.
func registry() []entry {
	return []entry{
		{cmd: &cobra.Command{Use: "serve", Short: "Run the admission webhook",
			Long: "Run the admission webhook: in a pod with the ServiceAccount's credentials, locally with --kubeconfig."},
			runner: &serve.Options{}},
		{cmd: &cobra.Command{Use: "validate FILE...", Short: "Check policy files offline",
			Long:    "Check policy files offline with the router's own parser and messages; exit 1 if any file is invalid. A file is a policy document, or the policy ConfigMap's manifest (alone or among other objects), as deploy/policy and GitOps repositories hold it.",
			Example: "  canary-router validate policy.yaml\n  canary-router validate -o json deploy/policy/*.yaml"},
			runner: &validate.Options{}},
		{cmd: &cobra.Command{Use: "simulate --policy FILE", Short: "Preview where a policy sends namespaces, workloads and pods",
			Example: "  canary-router simulate --policy p90.yaml --compare p50.yaml --namespaces 40 --deployments 200 --replicas 10"},
			runner: &simulate.Options{}},
		{cmd: &cobra.Command{Use: "status", Short: "Show the rollout in a cluster: target and observed share per revision",
			Example: "  canary-router status\n  kubectl canary-router status --context prod -o yaml"},
			runner: &statuscmd.Options{}},
		{cmd: &cobra.Command{Use: "init", Short: "Print a first policy from the live Istio revisions (--apply creates it if absent)"},
			runner: &initpolicy.Options{}},
		{cmd: &cobra.Command{Use: "uninstall", Short: "Plan removing the router without unmeshing a namespace (--apply to act)"},
			runner: &uninstall.Options{}},
		{cmd: &cobra.Command{Use: "migrate", Short: "Plan restarting the workloads the policy moves (--apply to act); pause|resume|status the migration",
			Example: "  canary-router migrate\n  canary-router migrate --apply --batch-size 3\n  canary-router migrate pause --reason 'checking 1-25'"},
			runner: &migratecmd.Options{}, sub: []entry{
				{cmd: &cobra.Command{Use: "pause", Short: "Pause the migration: no further batch starts"}, runner: migratecmd.NewControl("pause")},
				{cmd: &cobra.Command{Use: "resume", Short: "Resume a paused migration"}, runner: migratecmd.NewControl("resume")},
				{cmd: &cobra.Command{Use: "status", Short: "Show the migration's progress from the status object"}, runner: migratecmd.NewControl("status")},
			}},
		{cmd: &cobra.Command{Use: "rollout", Short: "Watch and steer the self-driving rollout: status|pause|resume|promote|abort|retry",
			Example: "  canary-router rollout status\n  canary-router rollout pause --reason 'change freeze'\n  canary-router rollout promote"},
			sub: rolloutEntries()},
		{cmd: dashboard.Command(), runner: &dashboard.Options{}},
		{cmd: &cobra.Command{Use: "version", Short: "Print the version"}, runner: &versionConfig{}},
	}
}

// newRoot builds the command tree. name is what the user typed
// ("canary-router", or "kubectl canary-router" for the plugin) and shows
// in help and hints.
func newRoot(ctx context.Context, name string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "canary-router",
		Short: "canary-router routes Istio sidecar injection between control-plane revisions",
		Long: "canary-router routes Istio sidecar injection between control-plane revisions by percentage.\n\n" +
			"Installed as kubectl-canary_router on the PATH it is also a kubectl plugin: kubectl canary-router status.",
		// A bare "canary-router" is a usage error, as before cobra: a
		// script that forgot the command must not pass.
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{missingCommand(c)}
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		// Suggestions are added to the one-line error in execute.
		DisableSuggestions:         true,
		SuggestionsMinimumDistance: 2,
		Annotations:                map[string]string{cobra.CommandDisplayNameAnnotation: name},
		Version:                    version,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagError(err)} })
	for _, e := range registry() {
		root.AddCommand(e.build(ctx, stdout, stderr))
	}
	return root
}

// build wires an entry into cobra: flags bound, checked, run, exit code
// carried back as an exitStatus.
func (e entry) build(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	c := e.cmd
	for _, s := range e.sub {
		c.AddCommand(s.build(ctx, stdout, stderr))
	}
	if e.runner == nil {
		// A group runs only its subcommands: bare, it is a usage error
		// like a bare canary-router; with an unknown subcommand, cobra's
		// NoArgs names it.
		c.Args = cobra.NoArgs
		c.RunE = func(c *cobra.Command, _ []string) error {
			return usageError{missingCommand(c)}
		}
		return c
	}
	e.runner.Bind(c.Flags())
	registerCompletions(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if err := e.runner.Check(args); err != nil {
			return usageError{err}
		}
		if code := e.runner.Run(ctx, args, stdout, stderr); code != cmdutil.ExitOK {
			return exitStatus(code)
		}
		return nil
	}
	return c
}

// execute runs the command line args as the program name and returns the
// exit code: 0 for help and success, 2 for usage errors (one line on
// stderr with a hint), otherwise the command's own code.
func execute(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	cmdutil.Version = version
	return executeRoot(newRoot(ctx, name, stdout, stderr), args, stderr)
}

// executeRoot is execute with the command tree given.
func executeRoot(root *cobra.Command, args []string, stderr io.Writer) int {
	// Added by ExecuteC otherwise, too late for singleDashLongFlags.
	root.SetHelpCommand(helpCommand(root))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictCompletion(root)
	root.SetArgs(singleDashLongFlags(root, args))
	cmd, err := root.ExecuteC()
	var status exitStatus
	switch {
	case err == nil:
		return cmdutil.ExitOK
	case errors.As(err, &status):
		return int(status)
	}
	var usage usageError
	if !errors.As(err, &usage) && strings.HasPrefix(err.Error(), "unknown command") && len(args) > 0 {
		if cmd == root {
			if s := root.SuggestionsFor(args[0]); len(s) > 0 {
				err = fmt.Errorf("%w (did you mean %q?)", err, s[0])
			}
		}
	}
	// One line, whatever the error: a joined error (serve's Validate)
	// lists its problems with "; ".
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(stderr, "%s: %s; run '%s --help'\n", cmd.CommandPath(), msg, cmd.CommandPath())
	return cmdutil.ExitUsage
}

// registerCompletions completes the values of -o and --context, the flags
// whose values the shell cannot guess.
func registerCompletions(c *cobra.Command) {
	if f := c.Flags().Lookup("output"); f != nil {
		if o, ok := f.Value.(*cmdutil.OutputValue); ok {
			_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(o.Allowed(), cobra.ShellCompDirectiveNoFileComp))
		}
	}
	if c.Flags().Lookup("context") != nil {
		_ = c.RegisterFlagCompletionFunc("context", cmdutil.CompleteContexts)
	}
}

// exitStatus is the exit code of a command that has reported its failure.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a bad flag, argument or command: exit 2 with a hint.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flagError words pflag's errors as Go's flag package did, which scripts
// and test/install's Deployment-args check look for ("flag provided but
// not defined", "invalid value").
func flagError(err error) error {
	var notExist *pflag.NotExistError
	var invalid *pflag.InvalidValueError
	switch {
	case errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() != "":
		return fmt.Errorf("flag provided but not defined: -%s", notExist.GetSpecifiedName())
	case errors.As(err, &notExist):
		return fmt.Errorf("flag provided but not defined: --%s", notExist.GetSpecifiedName())
	case errors.As(err, &invalid):
		return fmt.Errorf("invalid value %q for flag --%s: %v", invalid.GetValue(), invalid.GetFlag().Name, errors.Unwrap(invalid))
	}
	return err
}

// singleDashLongFlags rewrites "-kubeconfig" to "--kubeconfig" for the
// command args select: Go's flag package, which the CLI used before
// cobra, accepted long flags with one dash, and scripts written then
// must keep working. Values of flags are skipped, "--" ends flags, and
// anything that is not a long flag of the command (e.g. "-ojson") is left
// to pflag.
func singleDashLongFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	cmd.InitDefaultHelpFlag()
	fs := cmd.Flags()
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			f = fs.Lookup(name)
		case len(name) == 1:
			f = fs.ShorthandLookup(name)
		default:
			if f = fs.Lookup(name); f != nil {
				out[i] = "-" + a
			}
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			i++ // the flag's value, whatever it looks like
		}
	}
	return out
}

// commandName is the name the program was run as: "kubectl canary-router"
// when kubectl runs it as the plugin kubectl-canary_router (kubectl maps
// "-" in a command to "_" in the file name).
func commandName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if plugin, ok := strings.CutPrefix(base, "kubectl-"); ok {
		return "kubectl " + strings.ReplaceAll(plugin, "_", "-")
	}
	return "canary-router"
}

// versionConfig is the version command: no flags.
type versionConfig struct{}

func (*versionConfig) Bind(*pflag.FlagSet) {}

func (*versionConfig) Check(args []string) error { return cmdutil.NoArgs(args) }

func (*versionConfig) Run(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version)
	return cmdutil.ExitOK
}

// rolloutEntries are the rollout group's subcommands for the registry.
func rolloutEntries() []entry {
	out := make([]entry, 0, len(report.RolloutActions))
	for _, a := range report.RolloutActions {
		out = append(out, entry{cmd: &cobra.Command{Use: a.Name, Short: a.Short}, runner: rolloutcmd.New(a.Name)})
	}
	return out
}
