package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readmeRun is a fenced block of README.md that starts with a command line
// ("$ canary-router ...") and holds its output.
var readmeRun = regexp.MustCompile("(?ms)^```\\n\\$ canary-router ([^\\n]*)\\n(.*?)^```")

// TestREADMEOutputsReproduce runs every offline canary-router command
// (simulate, validate) README.md shows with its output, from the repository's root and with the files the
// repository holds (docs/examples), and compares the output: an example a
// reader cannot reproduce is a wrong example.
func TestREADMEOutputsReproduce(t *testing.T) {
	t.Chdir("../..")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	runs := readmeRun.FindAllSubmatch(readme, -1)
	if len(runs) == 0 {
		t.Fatal("README.md shows no canary-router command with its output")
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
			if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got, want := trimLines(stdout.String()), trimLines(string(m[2])); got != want {
				t.Errorf("README.md shows:\n%s\nthe command prints:\n%s", want, got)
			}
		})
	}
	if offline == 0 {
		t.Error("README.md shows no offline command (simulate, validate) with its output: is the block pattern broken?")
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
