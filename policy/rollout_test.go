package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const rolloutHead = "granularity: workload\ntargets: [{revision: \"1-24\", weight: 100}, {revision: \"1-25\", weight: 0}]\n"

func TestRolloutBlock(t *testing.T) {
	w := func(stable, canary float64) []Target {
		return []Target{{Revision: "1-24", Weight: stable}, {Revision: "1-25", Weight: canary}}
	}
	for _, tc := range []struct {
		name string
		doc  string
		want *Rollout
	}{
		{name: "absent", doc: rolloutHead},
		{name: "canary steps, defaults", doc: rolloutHead + `rollout:
  steps:
    - {canary: 5, hold: 1m}
    - {canary: 50, hold: manual}
    - {canary: 100}
`, want: &Rollout{Canary: "1-25", OnFailure: OnFailurePause, RollbackTo: RollbackToZero, Interval: 30 * time.Second,
			Steps: []Step{{Weights: w(95, 5), Hold: time.Minute}, {Weights: w(50, 50), Manual: true}, {Weights: w(0, 100)}},
			Gates: defaultGates()}},
		{name: "weights steps, every field", doc: rolloutHead + `rollout:
  canary: "1-25"
  onFailure: rollback
  rollbackTo: lastPassed
  interval: 10s
  steps:
    - weights: {"1-25": 25, "1-24": 75}
      hold: 0s
  gates:
    maxMismatches: 2
    failureLimit: 1
    maxUnknown: 2m
    podHealth: {minReadyRatio: 0.8, maxRestartRatio: 3, minPods: 2}
`, want: &Rollout{Canary: "1-25", OnFailure: OnFailureRollback, RollbackTo: RollbackToLastPassed, Interval: 10 * time.Second,
			Steps: []Step{{Weights: w(75, 25)}},
			Gates: Gates{MaxMismatches: 2, FailureLimit: 1, MaxUnknown: 2 * time.Minute, PodHealth: PodHealth{MinReadyRatio: 0.8, MaxRestartRatio: 3, MinPods: 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Rollout, tc.want) {
				t.Fatalf("rollout = %+v\nwant %+v", p.Rollout, tc.want)
			}
			if tc.want != nil && (p.Migration == nil || !p.Migration.Enabled) {
				t.Fatalf("a rollout without a migration block migrates at the default pace, got %+v", p.Migration)
			}
		})
	}
}

func TestRolloutCanaryWeightsShareByPolicyWeights(t *testing.T) {
	doc := "granularity: pod\ntargets: [{revision: a, weight: 30}, {revision: b, weight: 10}, {revision: c, weight: 60}]\n" +
		"rollout: {canary: c, steps: [{canary: 20}]}\n"
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Rollout.Steps[0].Weights
	want := []Target{{"a", 60}, {"b", 20}, {"c", 20}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("weights %v, want %v", got, want)
	}
	if z := p.ZeroWeights(); z[2].Weight != 0 || z[0].Weight != 75 || z[1].Weight != 25 {
		t.Fatalf("zero weights %v", z)
	}
}

func TestRolloutPrometheusQueries(t *testing.T) {
	doc := rolloutHead + `rollout:
  steps: [{canary: 10}]
  gates:
    prometheus:
      url: http://prometheus.monitoring:9090/
      queries:
        - name: xds-rejects
          query: sum(increase(pilot_total_xds_rejects{istio_io_rev="{{ .Revision }}"}[1m]))
          max: 0
          failureLimit: 1
`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pr := p.Rollout.Gates.Prometheus
	if pr.URL != "http://prometheus.monitoring:9090" || pr.Timeout != DefaultPrometheusTimeout || len(pr.Queries) != 1 {
		t.Fatalf("prometheus = %+v", pr)
	}
	q := pr.Queries[0]
	if *q.Max != 0 || q.Min != nil || q.FailureLimit != 1 {
		t.Fatalf("query = %+v", q)
	}
	got, err := q.Render(QueryVars{Revision: "1-25-1", Canary: "canary", Stable: "1-24"})
	if err != nil || !strings.Contains(got, `istio_io_rev="1-25-1"`) {
		t.Fatalf("render = %q, %v", got, err)
	}
}

func TestRolloutIstiodScrape(t *testing.T) {
	base := rolloutHead + "rollout:\n  steps: [{canary: 100}]\n  gates:\n    prometheus:\n      url: http://prom:9090\n%s      queries: [{name: %s, query: 'x', max: 0}]\n"
	p, err := Parse([]byte(fmt.Sprintf(base, "", "q")))
	if err != nil {
		t.Fatal(err)
	}
	sc := p.Rollout.Gates.Prometheus.Istiod
	if got, _ := sc.Render(QueryVars{Revision: "1-25"}); got != `up{app="istiod",istio_io_rev="1-25"}` || sc.ScrapeInterval != DefaultIstiodScrapeInterval {
		t.Fatalf("default scrape check %q %s", got, sc.ScrapeInterval)
	}
	p, err = Parse([]byte(fmt.Sprintf(base, "      istiod: {up: 'up{job=\"istiod-{{ .Revision }}\"}', scrapeInterval: 1s}\n", "q")))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Rollout.Gates.Prometheus.Istiod.Render(QueryVars{Revision: "1-25"}); got != `up{job="istiod-1-25"}` {
		t.Fatalf("custom selector %q", got)
	}
	for _, tc := range []struct{ istiod, name, want string }{
		{"      istiod: {up: 'sum(up)'}\n", "q", "prometheus.istiod.up: must be a series selector"},
		{"      istiod: {scrapeInterval: 10ms}\n", "q", "prometheus.istiod.scrapeInterval: must be from 1s"},
		{"", GateIstiodScraped, "built-in istiod scrape check"},
	} {
		_, err := Parse([]byte(fmt.Sprintf(base, tc.istiod, tc.name)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.istiod+tc.name, err, tc.want)
		}
	}
	if _, err := Parse([]byte(rolloutHead + "rollout:\n  steps: [{canary: 100}]\n  gates: {podHealth: {minPods: 0}}\n")); err == nil ||
		!strings.Contains(err.Error(), "never passes on zero observations") {
		t.Errorf("minPods 0: %v", err)
	}
}
