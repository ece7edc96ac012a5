package observability

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboardVars are the values the dashboard's variables take here.
var dashboardVars = strings.NewReplacer("$__rate_interval", "1m", "$job", scrapeJob)

// testDashboardQueries runs every panel query of the Grafana dashboard
// against the rollout's data: each must parse and return series, so no
// panel is empty for lack of a metric or a typo in a label.
func testDashboardQueries(t *testing.T) {
	qs, _ := dashboardQueries(t)
	for _, q := range qs {
		v, err := env.prom.query(context.Background(), q.expr)
		switch {
		case err != nil:
			t.Errorf("panel %q: %v", q.panel, err)
		case len(v) == 0:
			t.Errorf("panel %q: no series for %s", q.panel, q.expr)
		}
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "monitoring", "dashboards", "canary-router.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	for _, a := range dash.Annotations.List {
		if _, err := env.prom.query(context.Background(), dashboardVars.Replace(a.Expr)); err != nil {
			t.Errorf("annotation: %v", err)
		}
	}
	if len(qs) < 15 {
		t.Errorf("only %d panel queries found", len(qs))
	}
}

// promqlBlock finds the ```promql blocks of a Markdown file.
var promqlBlock = regexp.MustCompile("(?s)```promql\n(.*?)```")

// testDocsQueries runs every PromQL example in docs/metrics.md: each must
// parse and return series on a cluster mid-rollout.
func testDocsQueries(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := promqlBlock.FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 4 {
		t.Fatalf("docs/metrics.md has %d promql blocks, want at least 4", len(blocks))
	}
	for _, b := range blocks {
		expr := strings.TrimSpace(b[1])
		v, err := env.prom.query(context.Background(), expr)
		switch {
		case err != nil:
			t.Errorf("docs/metrics.md: %v", err)
		case len(v) == 0:
			t.Errorf("docs/metrics.md: no series for\n%s", expr)
		default:
			t.Logf("RESULT %s => %v", strings.Join(strings.Fields(expr), " "), v)
		}
	}
}
