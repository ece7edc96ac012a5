package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
)

// readmeRun is a fenced block of a page that starts with a command line
// ("$ canary-router ...") and holds its output.
var readmeRun = regexp.MustCompile("(?ms)^```\\n\\$ canary-router ([^\\n]*)\\n(.*?)^```")

// TestREADMEOutputsReproduce runs every offline canary-router command
// (simulate, validate) README.md and docs/ show with its output, from the repository's root and with the files the
// repository holds (docs/examples), and compares the output: an example a
// reader cannot reproduce is a wrong example.
func TestREADMEOutputsReproduce(t *testing.T) {
	t.Chdir("../..")
	pages, _ := filepath.Glob(filepath.Join("docs", "*.md"))
	var runs [][][]byte
	for _, page := range append([]string{"README.md"}, pages...) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, readmeRun.FindAllSubmatch(text, -1)...)
	}
	if len(runs) == 0 {
		t.Fatal("README.md and docs/ show no canary-router command with its output")
	}
	offline := 0
	for _, m := range runs {
		args := strings.Fields(string(m[1]))
		if args[0] != "simulate" && args[0] != "validate" {
			continue // needs a cluster: shown from a real run, elided with "..."
		}
		offline++
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != cmdutil.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got, want := trimLines(stdout.String()), trimLines(string(m[2])); got != want {
				t.Errorf("the docs show:\n%s\nthe command prints:\n%s", want, got)
			}
		})
	}
	if offline == 0 {
		t.Error("README.md and docs/ show no offline command (simulate, validate) with its output: is the block pattern broken?")
	}
}

// trimLines drops trailing blanks on each line, which the table writer
// pads with and the README does not keep.
func trimLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
