package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/simulate"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("granularity: pod\ntargets: [{revision: a, weight: 100}]\n"), 0o644)
	os.WriteFile(bad, []byte("granularity: pods\ntargets: [{revision: a, weight: 150}]\n"), 0o644)
	cases := []struct {
		name       string
		files      []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"valid file", []string{good}, 0, []string{good + ": valid"}, nil},
		{"invalid file names every field", []string{good, bad}, 1, []string{good + ": valid"},
			[]string{bad + ": granularity: must be one of namespace, workload, pod", bad + ": targets[0].weight: must be between 0 and 100"}},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, 1, nil, []string{"no such file"}},
		{"no arguments", nil, 2, nil, []string{"usage"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"validate"}, c.files...), &stdout, &stderr)
			if code != c.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.wantCode, stderr.String())
			}
			for _, w := range c.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range c.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestRunDispatch(t *testing.T) {
	cases := []struct {
		args     []string
		wantCode int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"version"}, 0},
		{[]string{"help"}, 0},
		{[]string{"serve", "--port", "0"}, 2},
		{[]string{"serve", "--log-format", "xml"}, 2},
		{[]string{"serve", "--no-such-flag"}, 2},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr); code != c.wantCode {
			t.Errorf("run %v: exit %d, want %d (stderr %q)", c.args, code, c.wantCode, stderr.String())
		}
	}
}

// TestValidateCatalogue: the offline check prints, for every invalid
// policy in the shared catalogue, exactly the messages the router and its
// validating webhook give.
func TestValidateCatalogue(t *testing.T) {
	docs, _ := filepath.Glob("../../policy/testdata/invalid/*.yaml")
	if len(docs) < 25 {
		t.Fatalf("catalogue has %d documents", len(docs))
	}
	for _, doc := range docs {
		want, err := os.ReadFile(strings.TrimSuffix(doc, ".yaml") + ".want")
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"validate", doc}, &stdout, &stderr); code != 1 {
			t.Errorf("%s: exit %d, want 1", doc, code)
		}
		var wantOut strings.Builder
		for _, line := range strings.Split(strings.TrimSuffix(string(want), "\n"), "\n") {
			wantOut.WriteString(doc + ": " + line + "\n")
		}
		if stderr.String() != wantOut.String() {
			t.Errorf("%s:\n got %s\nwant %s", doc, stderr.String(), wantOut.String())
		}
	}
}

func TestSimulate(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("granularity: pod\ntargets: [{revision: stable, weight: 90}, {revision: canary, weight: 10}]\n"), 0o644)
	os.WriteFile(b, []byte("granularity: pod\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"simulate", "--policy", a, "--compare", b, "--namespaces", "2", "--deployments", "4", "--replicas", "10", "-o", "json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out simulate.Output
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Result.Units) != 4 || out.Result.Pods != 40 || out.Result.Units[0].Pods["canary"] != 1 {
		t.Errorf("result %+v", out.Result)
	}
	if len(out.Compare.Moves) != 1 || out.Compare.Moves[0].Pods != 16 {
		t.Errorf("moves %+v, want 16 pods stable -> canary", out.Compare.Moves)
	}

	stdout.Reset()
	if code := run(context.Background(), []string{"simulate", "--policy", a}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "canary    10.0%") {
		t.Errorf("table output (exit %d):\n%s", code, stdout.String())
	}
	os.WriteFile(b, []byte("granularity: pod\ntargets: [{revision: stable, weight: 50}]\n"), 0o644)
	stderr.Reset()
	if code := run(context.Background(), []string{"simulate", "--policy", b}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "weights sum to 50") {
		t.Errorf("invalid policy: exit %d, stderr %q", code, stderr.String())
	}
}

// TestValidateNestedTemplatePolicy: the policy whose gate query nested
// forty templates, each calling the one below twice, ran for minutes
// when queries were Go templates; it is refused at once with its field.
func TestValidateNestedTemplatePolicy(t *testing.T) {
	var q strings.Builder
	q.WriteString(`{{define "t0"}}x{{end}}`)
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&q, `{{define "t%d"}}{{template "t%d" .}}{{template "t%d" .}}{{end}}`, i, i-1, i-1)
	}
	q.WriteString(`{{template "t39" .}}`)
	file := filepath.Join(t.TempDir(), "hostile.yaml")
	doc := "granularity: namespace\ntargets: [{revision: a, weight: 100}, {revision: b, weight: 0}]\n" +
		"rollout:\n  steps: [{canary: 10}]\n  gates:\n    prometheus:\n      url: http://prometheus:9090\n" +
		"      queries: [{name: bomb, max: 0, query: '" + q.String() + "'}]\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"validate", file}, &stdout, &stderr)
	took := time.Since(start)
	want := file + `: rollout.gates.prometheus.queries[0].query: gate "bomb": {{ define }} is not allowed`
	if code != cmdutil.ExitFailure || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), want)
	}
	if took > time.Second {
		t.Errorf("validate took %v, want well under a second", took)
	}
}

// TestValidateHonoursCancel: validate stops when its context ends (main
// ends it on SIGTERM), even while a read blocks: a FIFO with no writer.
func TestValidateHonoursCancel(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "policy.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	t.Cleanup(func() {
		// Unblock the abandoned reader.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"validate", fifo}, &stdout, &stderr) }()
	select {
	case code := <-done:
		if code != cmdutil.ExitFailure || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q; want 1 and interrupted", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("validate ignored its cancelled context for 5s")
	}
}
