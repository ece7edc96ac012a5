package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
)

// yamlBlock finds the fenced YAML blocks of a Markdown page, with the
// line each starts on.
var yamlBlock = regexp.MustCompile("(?ms)^[ \\t]*```ya?ml\\n(.*?)^[ \\t]*```")

// holdsPolicy says whether a YAML block is a whole policy (top-level
// targets) or the policy ConfigMap's manifest, rather than a fragment such
// as a lone migration: or queries: block.
var holdsPolicy = regexp.MustCompile(`(?m)^\s*targets:|policy\.yaml:`)

// TestShippedExamplesValidate runs `canary-router validate` over every file
// in deploy/policy and docs/examples and every YAML block in README.md and docs/ that holds a
// policy: an example a user copies must pass the validator the README
// recommends for CI.
func TestShippedExamplesValidate(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "deploy", "policy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies in deploy/policy (%v)", err)
	}
	examples, _ := filepath.Glob(filepath.Join(root, "docs", "examples", "*.yaml"))
	files = append(files, examples...)
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	pages = append(pages, filepath.Join(root, "README.md"), filepath.Join(root, "deploy", "README.md"))
	dir := t.TempDir()
	blocks := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatchIndex(text, -1) {
			block := dedent(string(text[m[2]:m[3]]))
			if !holdsPolicy.MatchString(block) {
				continue
			}
			line := bytes.Count(text[:m[0]], []byte("\n")) + 1
			name := filepath.Join(dir, strings.ReplaceAll(filepath.Base(page), ".", "_")+"-line"+strconv.Itoa(line)+".yaml")
			if err := os.WriteFile(name, []byte(block), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
			blocks++
		}
	}
	if blocks < 3 {
		t.Fatalf("found %d policy blocks in the docs; the README alone has more: is the block pattern broken?", blocks)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"validate"}, files...), &stdout, &stderr); code != cmdutil.ExitOK {
		t.Errorf("validate exit %d over %d files:\n%s", code, len(files), stderr.String())
	}
	if got := strings.Count(stdout.String(), ": valid\n"); got != len(files) {
		t.Errorf("%d of %d files valid:\n%s", got, len(files), stdout.String())
	}
}

// dedent removes the indentation of a block nested in a list item.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	pad := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if pad < 0 || n < pad {
			pad = n
		}
	}
	for i, l := range lines {
		if len(l) >= pad && pad > 0 {
			lines[i] = l[pad:]
		}
	}
	return strings.Join(lines, "\n")
}
