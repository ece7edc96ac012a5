// Package layout keeps the README's package map true: each package of the
// router imports only what its room in the map allows.
package layout

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/canary-router/canary-router/"

// rule is one row of the README's "Layout" table: the packages under
// prefix, and the import path prefixes their non-test code must not use.
type rule struct {
	prefix string
	why    string
	deny   []string
}

// clientSide is what the admission path's pure parts must never import:
// clients, servers, logging, metrics, randomness.
var clientSide = []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/prometheus", "go.uber.org/zap", "net/http", "math/rand", "os"}

var rules = []rule{
	{"webhook/policy", "the pure decision core: no client, clock source, randomness, I/O or other router package",
		append([]string{module}, clientSide...)},
	{"webhook/simulate", "pure previews over the policy", clientSide},
	{"webhook/rollout", "pure summaries", clientSide},
	{"webhook/istio", "a live view: reads the cluster, never the admission handlers or controllers",
		[]string{module + "webhook/podview", module + "webhook/nsview", module + "controller", module + "cmd", "sigs.k8s.io/controller-runtime"}},
	{"webhook/podview", "a live view", []string{module + "webhook/istio", module + "webhook/nsview", module + "controller", module + "cmd"}},
	{"webhook/nsview", "a live view", []string{module + "webhook/istio", module + "webhook/podview", module + "controller", module + "cmd"}},
	{"webhook", "the admission path: never the controllers that write", []string{module + "controller", module + "cmd", module + "certs"}},
	{"controller", "the leader's controllers: may read webhook's views and policy, never the CLI", []string{module + "cmd"}},
	{"certs", "serving certificates: independent of routing", []string{module + "webhook", module + "controller", module + "cmd"}},
}

// TestImportsFollowTheMap checks every package of the router (not test/).
func TestImportsFollowTheMap(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || rel == "test" || strings.HasPrefix(rel, "test/") ||
			d.Name() == "testdata" || rel == "bin" {
			if rel != "." {
				return filepath.SkipDir
			}
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module+"test/") {
				t.Errorf("%s imports %s: only tests may use test/", rel, imp)
			}
		}
		r, ok := ruleFor(rel)
		if !ok {
			return nil
		}
		checked++
		for _, imp := range pkg.Imports {
			for _, d := range r.deny {
				if imp == d || strings.HasPrefix(imp, strings.TrimSuffix(d, "/")+"/") || (strings.HasSuffix(d, "/") && strings.HasPrefix(imp, d)) {
					t.Errorf("%s imports %s, against the map (%s: %s)", rel, imp, r.prefix, r.why)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages: the walk did not find the tree", checked)
	}
}

// ruleFor returns the most specific rule for a package directory.
func ruleFor(rel string) (rule, bool) {
	best, found := rule{}, false
	for _, r := range rules {
		if (rel == r.prefix || strings.HasPrefix(rel, r.prefix+"/")) && len(r.prefix) > len(best.prefix) {
			best, found = r, true
		}
	}
	return best, found
}

// TestTheMapCatchesAViolation: the check is not vacuous.
func TestTheMapCatchesAViolation(t *testing.T) {
	r, ok := ruleFor("webhook/policy")
	if !ok {
		t.Fatal("no rule for webhook/policy")
	}
	bad := "k8s.io/client-go/kubernetes"
	caught := false
	for _, d := range r.deny {
		if strings.HasPrefix(bad, strings.TrimSuffix(d, "/")+"/") || bad == d {
			caught = true
		}
	}
	if !caught {
		t.Errorf("webhook/policy importing %s would pass", bad)
	}
	if r, _ := ruleFor("controller/migrate"); r.prefix != "controller" {
		t.Errorf("controller/migrate falls under %q", r.prefix)
	}
}
