package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/harness"
)

// dashboardQuery is one query of a panel of the Grafana dashboard.
type dashboardQuery struct {
	panel, expr string
}

// dashboardQueries reads every panel query of the dashboard JSON, with
// the template variables substituted (dashboardVars), and the number of
// panels that have queries (rows have none).
func dashboardQueries(t *testing.T) (qs []dashboardQuery, panels int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "monitoring", "dashboards", "canary-router.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) > 0 {
			panels++
		}
		for _, tg := range p.Targets {
			expr := dashboardVars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: a template variable is left in %s", p.Title, expr)
			}
			qs = append(qs, dashboardQuery{panel: p.Title, expr: expr})
		}
	}
	return qs, panels
}

// rolloutStatusDoc is the part of `rollout status -o json` compared with
// the dashboard.
type rolloutStatusDoc struct {
	Rollout *struct {
		Step    int    `json:"step"`
		Phase   string `json:"phase"`
		Weights []struct {
			Revision string  `json:"revision"`
			Weight   float64 `json:"weight"`
		} `json:"weights"`
		Gates []struct {
			Name    string  `json:"name"`
			Value   float64 `json:"value"`
			Verdict string  `json:"verdict"`
		} `json:"gates"`
	} `json:"rollout"`
}

// dashboardAgainstStatus runs every panel query of the dashboard and
// compares the status-related panels with `canary-router status -o json`
// and `canary-router rollout status -o json`, retrying while Prometheus
// (a scrape a second) lags the cluster. It prints the RESULT line.
func dashboardAgainstStatus(t *testing.T, when, viewer string) {
	t.Helper()
	qs, panels := dashboardQueries(t)
	var (
		empty, diffs []string
		checks       int
	)
	for range 20 {
		results := map[string][]sample{}
		empty = nil
		for _, q := range qs {
			v, err := env.prom.query(context.Background(), q.expr)
			if err != nil {
				t.Fatalf("panel %q: %v", q.panel, err)
			}
			if len(v) == 0 {
				empty = append(empty, fmt.Sprintf("%q: %s", q.panel, q.expr))
			}
			results[q.expr] = v
		}
		var st statusOutput
		if err := json.Unmarshal(runStatus(t, viewer, "-o", "json"), &st); err != nil {
			t.Fatal(err)
		}
		var rs rolloutStatusDoc
		if err := json.Unmarshal(runCLI(t, "rollout", "status", "-o", "json"), &rs); err != nil {
			t.Fatal(err)
		}
		diffs, checks = compareDashboard(qs, results, st, rs)
		if len(empty) == 0 && len(diffs) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	for _, e := range empty {
		t.Errorf("%s: no series for panel %s", when, e)
	}
	for _, d := range diffs {
		t.Errorf("%s: the dashboard disagrees with status: %s", when, d)
	}
	t.Logf("RESULT dashboard %s: panels %d, queries %d, queries with series %d, status figures agreeing %d/%d",
		when, panels, len(qs), len(qs)-len(empty), checks-len(diffs), checks)
}

// compareDashboard compares the status-related panels, found by their
// queries' metric names, with the status documents; it returns the
// differences and how many figures it compared.
func compareDashboard(qs []dashboardQuery, results map[string][]sample, st statusOutput, rs rolloutStatusDoc) (diffs []string, checks int) {
	find := func(metric, label string) (map[string]float64, string) {
		for _, q := range qs {
			if strings.HasPrefix(q.expr, "max by ("+label+") ("+metric+"{") ||
				(label == "" && strings.HasPrefix(q.expr, "max("+metric+"{")) {
				return byLabel(results[q.expr], label), q.panel
			}
		}
		return nil, ""
	}
	diff := func(panel, what string, status, dash float64) {
		checks++
		if !near(status, dash) {
			diffs = append(diffs, fmt.Sprintf("panel %q, %s: status %g, dashboard %g", panel, what, status, dash))
		}
	}
	missing := func(what string) { diffs = append(diffs, "no panel query for "+what) }

	// Target share and pods per revision against `status -o json`.
	if target, panel := find("canary_router_target_share", "revision"); panel == "" {
		missing("the target share")
	} else {
		for _, r := range st.Revisions {
			if r.InPolicy {
				diff(panel, r.Revision+" target share", r.TargetShare, target[r.Revision])
			}
		}
	}
	var pods []sample
	podsPanel := ""
	for _, q := range qs {
		if q.expr == dashboardVars.Replace(`max by (routed_revision, injected_revision) (canary_router_pods{job="$job"})`) {
			pods, podsPanel = results[q.expr], q.panel
		}
	}
	if podsPanel == "" {
		missing("live pods by revision")
	} else {
		routed, injected := map[string]float64{}, map[string]float64{}
		for _, s := range pods {
			if r := s.Labels["routed_revision"]; r != "" {
				routed[r] += s.Value
			}
			if i := s.Labels["injected_revision"]; i != "" {
				injected[i] += s.Value
			}
		}
		for _, r := range st.Revisions {
			diff(podsPanel, r.Revision+" routed pods", float64(r.RoutedPods), routed[r.Revision])
			if r.TagOf == "" {
				diff(podsPanel, r.Revision+" injected pods", float64(r.InjectedPods), injected[r.Revision])
			}
		}
	}
	if m, panel := find("canary_router_pods_mismatched", ""); panel == "" {
		missing("mismatched pods")
	} else {
		diff(panel, "mismatched pods", float64(st.MismatchedPods), m[""])
	}

	// The rollout panels against `rollout status -o json`.
	if rs.Rollout == nil {
		diffs = append(diffs, "rollout status shows no rollout")
		return diffs, checks
	}
	ro := rs.Rollout
	if step, panel := find("canary_router_rollout_step", ""); panel == "" {
		missing("the rollout step")
	} else {
		diff(panel, "step (from 1)", float64(ro.Step+1), step[""])
	}
	if w, panel := find("canary_router_rollout_canary_weight_percent", ""); panel == "" {
		missing("the canary weight")
	} else {
		for _, x := range ro.Weights {
			if x.Revision == "canary" {
				diff(panel, "canary weight", x.Weight, w[""])
			}
		}
	}
	if ph, panel := find("canary_router_rollout_phase", "phase"); panel == "" {
		missing("the rollout phase")
	} else {
		for _, p := range []rollout.Phase{rollout.PhaseProgressing, rollout.PhaseHolding, rollout.PhasePaused, rollout.PhaseRollingBack, rollout.PhaseAborted, rollout.PhaseComplete} {
			want := 0.0
			if string(p) == ro.Phase {
				want = 1
			}
			diff(panel, "phase "+string(p), want, ph[string(p)])
		}
	}
	if gv, panel := find("canary_router_rollout_gate_value", "gate"); panel == "" {
		missing("the gate values")
	} else {
		for _, g := range ro.Gates {
			diff(panel, "gate "+g.Name, g.Value, gv[g.Name])
		}
	}
	return diffs, checks
}

// runCLI runs the binary under test as the cluster admin.
func runCLI(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(env.Bin, append(args, "--kubeconfig", env.Cluster.Kubeconfig)...).Output()
	if err != nil {
		t.Fatalf("canary-router %v: %v\n%s", args, err, out)
	}
	return out
}

// rolloutPlan is the scenario's policy with a self-driving rollout: 50
// percent held long enough to check the dashboard mid-rollout, then 100.
// The forced mismatch of forcedMismatch stays, so the gate allows it.
const rolloutPlan = `migration: {batchSize: 5, interval: 0s, readinessTimeout: 2m}
rollout:
  interval: 2s
  steps:
    - {canary: 50, hold: 40s}
    - {canary: 100}
  gates: {maxMismatches: 1}
`

// testSelfDrivingDashboard runs a self-driving rollout on the scenario's
// cluster and checks the dashboard against the status while it holds at
// 50 percent and once it is Complete.
func testSelfDrivingDashboard(t *testing.T, viewer string) {
	if err := env.WritePolicy(harness.Context(t, 30*time.Second), policyYAML(70, 30)+rolloutPlan); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, 0, rollout.PhaseHolding)
	dashboardAgainstStatus(t, "during the rollout (step 1, Holding at 50%)", viewer)
	waitPhase(t, 1, rollout.PhaseComplete)
	dashboardAgainstStatus(t, "after the rollout (Complete at 100%)", viewer)
}

// waitPhase waits until the rollout is at step (0-based) in phase.
func waitPhase(t *testing.T, step int, phase rollout.Phase) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var st *rollout.State
	for time.Now().Before(deadline) {
		cm, err := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Get(context.Background(), migrate.StatusConfigMap, metav1.GetOptions{})
		if err == nil {
			if st, _ = rollout.Decode(cm.Data); st != nil && st.Step == step && st.Phase == phase {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the rollout never reached step %d %s; last state %+v", step+1, phase, st)
}
