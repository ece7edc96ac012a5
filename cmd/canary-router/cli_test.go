package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/cmd/canary-router/validate"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// commandPaths lists every command of the tree as its args, from the
// registry, so a command added there is checked without touching this
// file.
func commandPaths() [][]string {
	root := newRoot(context.Background(), "canary-router", nil, nil)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	paths := [][]string{nil}
	var walk func(c *cobra.Command, prefix []string)
	walk = func(c *cobra.Command, prefix []string) {
		for _, sub := range c.Commands() {
			p := append(slices.Clone(prefix), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(root, nil)
	return paths
}

func TestEveryCommandHelp(t *testing.T) {
	paths := commandPaths()
	// The commands the README documents must all be in the tree.
	for _, want := range []string{"serve", "validate", "simulate", "status", "init", "uninstall", "version", "completion"} {
		if !slices.ContainsFunc(paths, func(p []string) bool { return len(p) == 1 && p[0] == want }) {
			t.Errorf("command %s is not registered", want)
		}
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"canary-router"}, path...), " ")
		for _, help := range []string{"--help", "-h", "-help"} {
			t.Run(name+" "+help, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), append(slices.Clone(path), help), &stdout, &stderr)
				if code != 0 || !strings.Contains(stdout.String(), "Usage:") || stderr.Len() != 0 {
					t.Errorf("exit %d, want 0 with usage on stdout\nstdout %q\nstderr %q", code, stdout.String(), stderr.String())
				}
			})
		}
		t.Run(name+" --no-such-flag", func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(slices.Clone(path), "--no-such-flag"), &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "flag provided but not defined: --no-such-flag") ||
				!strings.Contains(lines[0], "run '"+name+" --help'") || stdout.Len() != 0 {
				t.Errorf("exit %d, want 2 with one line and a hint on stderr\nstdout %q\nstderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name, wantStderr string
		args             []string
	}{
		{"unknown command", `unknown command "frobnicate"`, []string{"frobnicate"}},
		{"suggestion", `did you mean "status"?`, []string{"statsu"}},
		{"unknown shorthand", "flag provided but not defined: -x", []string{"status", "-x"}},
		{"bad value", `invalid value "xml" for flag --output`, []string{"status", "-o", "xml"}},
		{"extra argument", `unexpected argument "extra"`, []string{"uninstall", "extra"}},
		{"several problems on one line", "--port 0: must be between 1 and 65535; --log-format", []string{"serve", "--port=0", "--log-format=xml"}},
		{"no command", "a command is required: one of completion, dashboard, init, migrate, rollout", nil},
		{"bare group", "a command is required: one of abort, pause, promote, resume, retry, status", []string{"rollout"}},
		{"unknown shell", `unknown shell "tcsh": one of bash, fish, powershell, zsh`, []string{"completion", "tcsh"}},
		{"unknown help topic", `unknown help topic "frobnicate"`, []string{"help", "frobnicate"}},
		{"negative fleet", "--replicas -3", []string{"simulate", "--policy", "p.yaml", "--replicas", "-3"}},
		{"prometheus allowlist entry not a URL", `--prometheus-allowed-url "prometheus:9090": must be an http or https URL`,
			[]string{"serve", "--prometheus-allowed-url=http://prometheus.monitoring:9090", "--prometheus-allowed-url=prometheus:9090"}},
		{"restart share above one", "--warn-restart-share 1.5: must be between 0 and 1", []string{"serve", "--warn-restart-share=1.5"}},
		{"restart share negative", "--warn-restart-share -0.1: must be between 0 and 1", []string{"serve", "--warn-restart-share=-0.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), c.wantStderr) ||
				!strings.Contains(stderr.String(), " --help'") {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q and a hint", code, stderr.String(), c.wantStderr)
			}
		})
	}
	// Help on a known topic still answers on stdout with 0.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"help", "status"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Usage:") {
		t.Errorf("help status: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestSingleDashLongFlags(t *testing.T) {
	root := newRoot(context.Background(), "canary-router", nil, nil)
	cases := []struct{ in, want []string }{
		{[]string{"status", "-kubeconfig", "k", "-o", "json"}, []string{"status", "--kubeconfig", "k", "-o", "json"}},
		{[]string{"status", "-kubeconfig=k", "-ojson"}, []string{"status", "--kubeconfig=k", "-ojson"}},
		// A value that looks like a flag stays a value.
		{[]string{"simulate", "-policy", "-namespaces", "-namespaces", "3"}, []string{"simulate", "--policy", "-namespaces", "--namespaces", "3"}},
		{[]string{"init", "-apply", "-revision", "1-25"}, []string{"init", "--apply", "--revision", "1-25"}},
		{[]string{"validate", "-help"}, []string{"validate", "--help"}},
		{[]string{"validate", "--", "-o"}, []string{"validate", "--", "-o"}},
		{[]string{"status", "-nope"}, []string{"status", "-nope"}},
	}
	for _, c := range cases {
		if got := singleDashLongFlags(root, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCommandName(t *testing.T) {
	for argv0, want := range map[string]string{
		"/usr/local/bin/canary-router":         "canary-router",
		"bin/canary-router":                    "canary-router",
		"/home/me/bin/kubectl-canary_router":   "kubectl canary-router",
		"/tmp/go-build123/exe/canary-router_x": "canary-router",
	} {
		if got := commandName(argv0); got != want {
			t.Errorf("commandName(%q) = %q, want %q", argv0, got, want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), "kubectl canary-router", []string{"status", "--help"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "kubectl canary-router status [flags]") {
		t.Errorf("plugin help: exit %d\n%s", code, stdout.String())
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"completion", shell}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "canary-router") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, stdout.Len(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"__complete", "status", "-o", ""}, &stdout, &stderr)
	if !strings.HasPrefix(stdout.String(), "table\njson\nyaml\n") {
		t.Errorf("-o completes to %q", stdout.String())
	}
}

// TestValidateDocument: -o json and -o yaml give the same document with
// the field names docs/cli.md lists, and the exit code still says whether
// every file is valid.
func TestValidateDocument(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("granularity: pod\ntargets: [{revision: a, weight: 100}]\n"), 0o644)
	os.WriteFile(bad, []byte("granularity: pods\ntargets: [{revision: a, weight: 100}]\n"), 0o644)
	want := validate.Output{Files: []validate.File{
		{File: good, Valid: true},
		{File: bad, Errors: []validate.Problem{{Field: "granularity", Reason: "must be one of namespace, workload, pod"}}},
		{File: filepath.Join(dir, "nope.yaml"), Errors: []validate.Problem{{Reason: "open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"}}},
	}}
	for _, format := range []string{"json", "yaml"} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"validate", "-o", format, good, bad, want.Files[2].File}, &stdout, &stderr)
		var got validate.Output
		if err := yaml.UnmarshalStrict(stdout.Bytes(), &got); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, stdout.String())
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if code != 1 || !bytes.Equal(gotJSON, wantJSON) || stderr.Len() != 0 {
			t.Errorf("-o %s: exit %d, stderr %q\n got %s\nwant %s", format, code, stderr.String(), gotJSON, wantJSON)
		}
	}
}

// TestGroupCommand: a command with subcommands only (as migrate pause|resume
// will be) gets help, a usage error when bare, and the unknown-subcommand
// error, from an entry in the registry's form.
func TestGroupCommand(t *testing.T) {
	cases := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"group", "--help"}, 0, "Usage:", ""},
		{[]string{"group", "sub", "-h"}, 0, "canary-router group sub [flags]", ""},
		{[]string{"group", "sub"}, 0, "dev\n", ""},
		{[]string{"group"}, 2, "", "canary-router group: a command is required: one of sub; run 'canary-router group --help'"},
		{[]string{"group", "nope"}, 2, "", `canary-router group: unknown command "nope" for "canary-router group"; run 'canary-router group --help'`},
		{[]string{"group", "sub", "-nope"}, 2, "", "flag provided but not defined: -n"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		root := newRoot(context.Background(), "canary-router", &stdout, &stderr)
		root.AddCommand(entry{cmd: &cobra.Command{Use: "group", Short: "a group"},
			sub: []entry{{cmd: &cobra.Command{Use: "sub", Short: "a subcommand"}, runner: &versionConfig{}}}}.build(context.Background(), &stdout, &stderr))
		code := executeRoot(root, c.args, &stderr)
		if code != c.wantCode || !strings.Contains(stdout.String(), c.wantStdout) || !strings.Contains(stderr.String(), c.wantStderr) {
			t.Errorf("%q: exit %d, want %d\nstdout %q (want %q)\nstderr %q (want %q)", c.args, code, c.wantCode, stdout.String(), c.wantStdout, stderr.String(), c.wantStderr)
		}
	}
}

// TestInitFlags: init's bad flags and arguments are usage errors.
func TestInitFlags(t *testing.T) {
	for _, args := range [][]string{{"--granularity", "cluster"}, {"-o", "table"}, {"extra"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"init"}, args...), &out, &errOut); code != 2 {
			t.Errorf("init %v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

func TestStatusUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	cases := []struct {
		args     []string
		wantCode int
	}{
		{[]string{"status", "-o", "xml"}, 2},
		{[]string{"status", "extra"}, 2},
		{[]string{"status", "--no-such-flag"}, 2},
		{[]string{"status", "--kubeconfig", missing}, 1},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr); code != c.wantCode {
			t.Errorf("run %v: exit %d, want %d (stderr %q)", c.args, code, c.wantCode, stderr.String())
		}
	}
}

func TestRolloutCommandsRegistered(t *testing.T) {
	for _, a := range report.RolloutActions {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"rollout", a.Name, "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "--kubeconfig") {
			t.Errorf("rollout %s --help: exit %d\n%s%s", a.Name, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"rollout", "promote", "extra"}, &stdout, &stderr); code != cmdutil.ExitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
}

func TestRolloutWatchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"rollout", "status", "--watch", "--interval", "0s"},
		{"rollout", "status", "--watch", "--timeout", "-1s"},
		{"rollout", "pause", "--watch"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != cmdutil.ExitUsage {
			t.Errorf("%v: exit %d, want %d; %s", args, code, cmdutil.ExitUsage, stderr.String())
		}
	}
}
