package layout

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The picture's packages and arrows: the first Mermaid "graph" block of
// docs/architecture.md. cmd/canary-router wires everything and is left
// out of the picture, so it is left out here, as are test helpers.
var (
	edgeLine = regexp.MustCompile(`^\s*([\w/.-]+)\s*-->\s*([\w/.-]+)\s*$`)
	nodeLine = regexp.MustCompile(`^\s*([a-z][\w/.-]*)\s*$`)
)

// architectureGraph returns the nodes and edges drawn in the first
// Mermaid graph of the page.
func architectureGraph(page string) (nodes map[string]bool, edges []string) {
	nodes = map[string]bool{}
	in := false
	for _, line := range strings.Split(page, "\n") {
		switch {
		case strings.HasPrefix(line, "```mermaid"):
			in = true
			continue
		case in && strings.HasPrefix(line, "```"):
			return nodes, edges
		case !in:
			continue
		}
		if m := edgeLine.FindStringSubmatch(line); m != nil {
			edges = append(edges, m[1]+" --> "+m[2])
			nodes[m[1]], nodes[m[2]] = true, true
		} else if m := nodeLine.FindStringSubmatch(line); m != nil && m[1] != "end" && !strings.HasPrefix(line, "graph") {
			nodes[m[1]] = true
		}
	}
	return nodes, edges
}

// TestArchitectureMapMatchesImports: every router package is drawn, and
// the arrows are exactly the imports between router packages.
func TestArchitectureMapMatchesImports(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, drawn := architectureGraph(string(b))
	var actual []string
	for _, pkg := range routerPackages(t) {
		// Test helpers for other packages' tests (istio/istiotest, as
		// net/http/httptest) are not part of the running router.
		if pkg.rel == "." || pkg.rel == "deploy" || strings.HasPrefix(pkg.rel, "cmd/") || strings.HasSuffix(pkg.rel, "test") {
			continue
		}
		if !nodes[pkg.rel] {
			t.Errorf("docs/architecture.md does not draw package %s", pkg.rel)
		}
		for _, imp := range pkg.imports {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				actual = append(actual, pkg.rel+" --> "+dep)
			}
		}
	}
	slices.Sort(actual)
	slices.Sort(drawn)
	for _, e := range actual {
		if !slices.Contains(drawn, e) {
			t.Errorf("docs/architecture.md lacks the arrow %s (an import)", e)
		}
	}
	for _, e := range drawn {
		if !slices.Contains(actual, e) {
			t.Errorf("docs/architecture.md draws %s, but there is no such import", e)
		}
	}
	if len(actual) < 10 {
		t.Fatalf("found only %d imports between router packages: the walk did not find the tree", len(actual))
	}
}

// TestArchitectureGraphParse: the parser sees nodes in subgraphs and
// arrows, and ignores Mermaid keywords.
func TestArchitectureGraphParse(t *testing.T) {
	page := "x\n```mermaid\ngraph TD\n  subgraph a[\"A\"]\n    policy\n  end\n  certs\n  webhook --> policy\n```\n```mermaid\ngraph LR\n  late --> later\n```\n"
	nodes, edges := architectureGraph(page)
	want := map[string]bool{"policy": true, "certs": true, "webhook": true}
	if len(nodes) != len(want) {
		t.Errorf("nodes %v, want %v", nodes, want)
	}
	for n := range want {
		if !nodes[n] {
			t.Errorf("node %s missing from %v", n, nodes)
		}
	}
	if !slices.Equal(edges, []string{"webhook --> policy"}) {
		t.Errorf("edges %v", edges)
	}
}
