package webhook

import (
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

func TestRestartWarning(t *testing.T) {
	cases := []struct {
		name      string
		est       RestartEstimate
		threshold float64
		want      string // "" for no warning
	}{
		{"above the threshold, migrating", RestartEstimate{Moves: 37, Workloads: 120, Migrates: true}, 0.25,
			"this edit would restart 37 of 120 workloads (31%) through the migration, above the 25% warn threshold (serve --warn-restart-share)"},
		{"above the threshold, not migrating", RestartEstimate{Moves: 37, Workloads: 120}, 0.25,
			"this edit would move 37 of 120 workloads (31%) to another revision when their pods next restart (no migration block is enabled, so nothing restarts now), above the 25% warn threshold (serve --warn-restart-share)"},
		{"at the threshold is quiet", RestartEstimate{Moves: 30, Workloads: 120, Migrates: true}, 0.25, ""},
		{"just above", RestartEstimate{Moves: 31, Workloads: 120, Migrates: true}, 0.25,
			"this edit would restart 31 of 120 workloads (26%) through the migration, above the 25% warn threshold"},
		{"below is quiet", RestartEstimate{Moves: 1, Workloads: 120, Migrates: true}, 0.25, ""},
		{"nothing moves", RestartEstimate{Workloads: 120, Migrates: true}, 0, ""},
		{"no workloads", RestartEstimate{}, 0, ""},
		{"threshold 0 warns on one", RestartEstimate{Moves: 1, Workloads: 120, Migrates: true}, 0,
			"this edit would restart 1 of 120 workloads (1%) through the migration, above the 0% warn threshold"},
		{"threshold 1 never warns", RestartEstimate{Moves: 120, Workloads: 120, Migrates: true}, 1, ""},
		{"fractional threshold", RestartEstimate{Moves: 40, Workloads: 100, Migrates: true}, 0.125,
			"(40%) through the migration, above the 12.5% warn threshold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := restartWarning(tc.est, tc.threshold)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("restartWarning = %q, want %q", got, tc.want)
			}
		})
	}
}

// fakeEstimator answers with est and records what it was asked.
type fakeEstimator struct {
	est      RestartEstimate
	synced   bool
	old, cur *policy.Policy
	calls    int
}

func (f *fakeEstimator) EstimateRestarts(old, cur *policy.Policy) (RestartEstimate, bool) {
	f.old, f.cur, f.calls = old, cur, f.calls+1
	return f.est, f.synced
}

func TestPolicyValidatorWarnsOnRestartShare(t *testing.T) {
	const (
		inForce = "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"
		edit    = "granularity: workload\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\nmigration: {batchSize: 5}\n"
	)
	cases := []struct {
		name      string
		operation string
		old       string // "" for none
		est       *fakeEstimator
		wantWarn  string // "" for no warning
		wantOld   bool
	}{
		{"37 of 120 restarted warns with the count", "UPDATE", inForce,
			&fakeEstimator{est: RestartEstimate{Moves: 37, Workloads: 120, Migrates: true}, synced: true},
			"this edit would restart 37 of 120 workloads (31%) through the migration, above the 25% warn threshold (serve --warn-restart-share)", true},
		{"a create is dry-run against nothing", "CREATE", "",
			&fakeEstimator{est: RestartEstimate{Moves: 50, Workloads: 100, Migrates: true}, synced: true},
			"this edit would restart 50 of 100 workloads (50%)", false},
		{"within the share is quiet", "UPDATE", inForce,
			&fakeEstimator{est: RestartEstimate{Moves: 10, Workloads: 120, Migrates: true}, synced: true}, "", true},
		{"views not synced: says so", "UPDATE", inForce, &fakeEstimator{},
			"could not be counted: this replica's views of pods and namespaces have not synced yet", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy",
				Restarts: tc.est, WarnRestartShare: DefaultWarnRestartShare}
			var old runtime.Object
			if tc.old != "" {
				old = policyConfigMap("canary-router-policy", tc.old, true)
			}
			f := newFixture(t, "")
			body := reviewBodyWithOld(t, "configmaps", tc.operation, "canary-router-system",
				policyConfigMap("canary-router-policy", edit, true), old)
			code, resp := post(t, f.admitter.PolicyHandler(v), body, "application/json")
			if code != http.StatusOK || !resp.Allowed {
				t.Fatalf("HTTP %d allowed %v (%+v): a warning never refuses", code, resp.Allowed, resp.Result)
			}
			var got []string
			for _, w := range resp.Warnings {
				if strings.Contains(w, "workloads") {
					got = append(got, w)
				}
			}
			if tc.wantWarn == "" && len(got) != 0 || tc.wantWarn != "" && (len(got) != 1 || !strings.Contains(got[0], tc.wantWarn)) {
				t.Fatalf("warnings %q, want one with %q", resp.Warnings, tc.wantWarn)
			}
			if tc.est.calls != 1 || tc.est.cur == nil || len(tc.est.cur.Targets) != 2 || (tc.est.old != nil) != tc.wantOld {
				t.Fatalf("estimator asked %d times with old %v cur %v", tc.est.calls, tc.est.old, tc.est.cur)
			}
		})
	}
}

// The dry run plans the weights the router routes by: a completed
// rollout's weights outlive its block (inforce.Overlay.Apply), so removing the
// block is planned at those weights, not at the document's stale targets.
func TestPolicyValidatorPlansThroughTheRolloutOverlay(t *testing.T) {
	const (
		targets   = "granularity: workload\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\nmigration: {}\n"
		withBlock = targets + "rollout: {steps: [{canary: 100}]}\n"
	)
	complete := &inforce.Overlay{Phase: "Complete", Weights: []policy.Target{{Revision: "stable", Weight: 0}, {Revision: "canary", Weight: 100}}}
	inForce, err := policy.Parse([]byte(withBlock))
	if err != nil {
		t.Fatal(err)
	}
	complete.ID = inForce.RolloutID()
	canaryWeight := func(p *policy.Policy) float64 {
		for _, tg := range p.Targets {
			if tg.Revision == "canary" {
				return tg.Weight
			}
		}
		return -1
	}
	for _, tc := range []struct {
		name              string
		overlay           *inforce.Overlay
		wantOld, wantEdit float64
	}{
		{"completed rollout's weights", complete, 100, 100},
		{"no rollout in force", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := &fakeEstimator{synced: true}
			v := &PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy", Restarts: est,
				WarnRestartShare: DefaultWarnRestartShare, Overlay: func() *inforce.Overlay { return tc.overlay }}
			f := newFixture(t, "")
			body := reviewBodyWithOld(t, "configmaps", "UPDATE", "canary-router-system",
				policyConfigMap("canary-router-policy", targets, true), policyConfigMap("canary-router-policy", withBlock, true))
			if code, resp := post(t, f.admitter.PolicyHandler(v), body, "application/json"); code != http.StatusOK || !resp.Allowed {
				t.Fatalf("HTTP %d allowed %v", code, resp.Allowed)
			}
			if est.old == nil || est.cur == nil || canaryWeight(est.old) != tc.wantOld || canaryWeight(est.cur) != tc.wantEdit {
				t.Fatalf("planned old %v edit %v, want canary at %g and %g", est.old, est.cur, tc.wantOld, tc.wantEdit)
			}
		})
	}
}
