// Package layout keeps the README's package map true: each package of the
// router imports only what its room in the map allows.
package layout

import (
	"slices"
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
	{"policy", "the pure decision core: no client, clock source, randomness, I/O or other router package",
		append([]string{module}, clientSide...)},
	{"webhook/wire", "the AdmissionReview wire format: no handler, policy or other router package, no client",
		[]string{module, "k8s.io/client-go", "sigs.k8s.io/controller-runtime"}},
	{"policy/simulate", "pure previews over the policy", clientSide},
	{"policy/inforce", "the policy in force: snapshots, the rollout's weights laid over them, the decision annotation; no client, view, controller or handler",
		append([]string{"=" + module + "webhook", module + "controller", module + "cmd", module + "istio", module + "view", module + "certs"},
			"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/prometheus", "go.uber.org/zap", "net/http", "math/rand")},
	{"view/progress", "pure summaries", clientSide},
	{"istio", "a live view: reads the cluster, never the admission handlers or controllers",
		[]string{module + "view/podview", module + "view/nsview", module + "controller", module + "cmd", "sigs.k8s.io/controller-runtime"}},
	{"view/podview", "a live view", []string{module + "istio", module + "view/nsview", module + "controller", module + "cmd"}},
	{"view/nsview", "a live view", []string{module + "istio", module + "view/podview", module + "controller", module + "cmd"}},
	{"webhook", "the admission path: never the controllers that write", []string{module + "controller", module + "cmd", module + "certs"}},
	{"controller", "the leader's controllers: read the views and the policy in force, never the admission path or the CLI", []string{module + "webhook", module + "cmd"}},
	{"certs", "serving certificates: independent of routing", []string{module + "webhook", module + "controller", module + "cmd"}},
}

// TestImportsFollowTheMap checks every package of the router (not test/).
func TestImportsFollowTheMap(t *testing.T) {
	checked := 0
	for _, pkg := range routerPackages(t) {
		for _, imp := range pkg.imports {
			if strings.HasPrefix(imp, module+"test/") {
				t.Errorf("%s imports %s: only tests may use test/", pkg.rel, imp)
			}
		}
		r, ok := ruleFor(pkg.rel)
		if !ok {
			continue
		}
		checked++
		for _, imp := range pkg.imports {
			if r.denies(imp) {
				t.Errorf("%s imports %s, against the map (%s: %s)", pkg.rel, imp, r.prefix, r.why)
			}
		}
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages: the walk did not find the tree", checked)
	}
}

// denies reports whether r forbids importing imp: a denied path and its
// sub-packages, for a prefix ending in "/" everything under it, and for
// "=path" that package alone.
func (r rule) denies(imp string) bool {
	for _, d := range r.deny {
		if exact, ok := strings.CutPrefix(d, "="); ok {
			if imp == exact {
				return true
			}
			continue
		}
		if imp == d || strings.HasPrefix(imp, strings.TrimSuffix(d, "/")+"/") || (strings.HasSuffix(d, "/") && strings.HasPrefix(imp, d)) {
			return true
		}
	}
	return false
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
	cases := []struct {
		pkg, imp string
		denied   bool
	}{
		{"policy", "k8s.io/client-go/kubernetes", true},
		{"policy", "sort", false},
		// The wire format may not reach back into the handlers, nor into
		// any other router package.
		{"webhook/wire", module + "webhook", true},
		{"webhook/wire", module + "policy", true},
		{"webhook/wire", module + "controller", true},
		{"webhook/wire", "k8s.io/client-go/kubernetes", true},
		{"webhook/wire", "github.com/go-json-experiment/json/jsontext", false},
		{"webhook/wire", "k8s.io/apimachinery/pkg/apis/meta/v1", false},
		// The handlers use the wire format.
		{"webhook", module + "webhook/wire", false},
		// The policy in force renders with the wire format's JSON helpers
		// but never reaches the handlers; controllers never reach either.
		{"policy/inforce", module + "webhook/wire", false},
		{"policy/inforce", module + "webhook", true},
		{"controller", module + "webhook", true},
		{"controller", module + "policy/inforce", false},
	}
	for _, c := range cases {
		r, ok := ruleFor(c.pkg)
		if !ok {
			t.Fatalf("no rule for %s", c.pkg)
		}
		if r.prefix != c.pkg {
			t.Errorf("%s falls under %q", c.pkg, r.prefix)
		}
		if got := r.denies(c.imp); got != c.denied {
			t.Errorf("%s importing %s: denied %v, want %v", c.pkg, c.imp, got, c.denied)
		}
	}
	if r, _ := ruleFor("controller/migrate"); r.prefix != "controller" {
		t.Errorf("controller/migrate falls under %q", r.prefix)
	}
}

// shared are the packages under cmd/canary-router that are not commands:
// what every command shares (cmdutil), and what the operator commands and
// the dashboard read, render and request (report).
var shared = []string{"cmd/canary-router/cmdutil", "cmd/canary-router/report"}

// TestCommandsStandAlone: a command's package (cmd/canary-router/<name>)
// imports no other command, only the shared packages, and only main
// imports the commands.
func TestCommandsStandAlone(t *testing.T) {
	const cmds = module + "cmd/canary-router/"
	commands := 0
	for _, pkg := range routerPackages(t) {
		inCmd := strings.HasPrefix(pkg.rel, "cmd/canary-router/")
		if inCmd && !slices.Contains(shared, pkg.rel) {
			commands++
		}
		for _, imp := range pkg.imports {
			if !strings.HasPrefix(imp, cmds) || slices.Contains(shared, strings.TrimPrefix(imp, module)) || pkg.rel == "cmd/canary-router" {
				continue
			}
			t.Errorf("%s imports the command %s: commands share code only through cmdutil and report, and only main wires them", pkg.rel, imp)
		}
	}
	if commands == 0 {
		t.Fatal("found no command package under cmd/canary-router/")
	}
}
