package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
