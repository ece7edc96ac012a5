package observability

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// promtool runs promtool with args and stdin, failing the test on a
// non-zero exit.
func promtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("promtool", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestPromtoolCheckRules: the PrometheusRule's groups are valid rules
// (syntax, PromQL, templates).
func TestPromtoolCheckRules(t *testing.T) {
	t.Log(promtool(t, nil, "check", "rules", env.rules))
}

// TestPromtoolTestRules runs the rule unit tests in testdata against the
// same rules: shares and alerts with two replicas reporting.
func TestPromtoolTestRules(t *testing.T) {
	tests, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules_test.yaml")
	doc := append([]byte("rule_files: ["+env.rules+"]\n"), tests...)
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(promtool(t, nil, "test", "rules", path))
}

// TestPromtoolCheckMetrics lints a real scrape of the router: names,
// units, help text and types of every series it exposes, controller-
// runtime's and the Go runtime's included.
func TestPromtoolCheckMetrics(t *testing.T) {
	resp, err := http.Get("http://" + env.router.metricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	if !bytes.Contains(body, []byte("canary_router_pods{")) || !bytes.Contains(body, []byte("canary_router_pods_mismatched ")) {
		t.Fatalf("the scrape has no pod series:\n%s", body)
	}
	t.Log(promtool(t, body, "check", "metrics"))
}
