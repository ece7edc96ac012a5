package migrate

import (
	"fmt"
	"testing"

	"github.com/canary-router/canary-router/policy"
)

func TestDryRunEdit(t *testing.T) {
	const (
		stable100   = "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 100}]\n"
		canary100   = "granularity: workload\nseed: s\ntargets: [{revision: canary, weight: 100}]\n"
		split7030   = "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\n"
		migrateOn   = "migration: {batchSize: 2}\n"
		migrateOff  = "migration: {enabled: false}\n"
		migrateSlow = "migration: {batchSize: 1}\n"
	)
	live := func(p *policy.Policy) map[string]string {
		out := map[string]string{}
		for _, t := range p.Targets {
			out[t.Revision] = map[string]string{"stable": "1-24", "canary": "1-25"}[t.Revision]
		}
		return out
	}
	// 20 Deployments in a managed namespace, every pod on stable (1-24);
	// one pinned Deployment and one in an unmanaged namespace, never counted.
	base := func() Input {
		in := Input{Pods: map[Ref]PodCounts{}, Namespaces: []Namespace{{Name: "shop", Labels: optedIn}, {Name: "plain"}}}
		add := func(r Ref, pinned bool) {
			in.Pods[r] = PodCounts{"1-24": 2}
			in.Workloads = append(in.Workloads, PodWorkload(r, in.Pods[r], pinned))
		}
		for i := range 20 {
			add(Ref{"shop", KindDeployment, fmt.Sprintf("web-%d", i)}, false)
		}
		add(Ref{"shop", KindDeployment, "pinned"}, true)
		add(Ref{"plain", KindDeployment, "x"}, false)
		return in
	}
	split := mustPolicy(t, split7030)
	toCanary := 0
	for i := range 20 {
		if WorkloadChoice(split, Ref{"shop", KindDeployment, fmt.Sprintf("web-%d", i)}) == "canary" {
			toCanary++
		}
	}
	if toCanary == 0 || toCanary == 20 {
		t.Fatalf("the seed sends %d of 20 to canary: pick another", toCanary)
	}
	cases := []struct {
		name         string
		old, cur     string // "" old: no policy in force (a create)
		down         string // a target that is not live
		wantMoves    int
		wantMigrates bool
	}{
		{"everything to canary with migration on", stable100, canary100 + migrateOn, "", 20, true},
		{"everything to canary, no migration block", stable100, canary100, "", 20, false},
		{"everything to canary, migration switched off", stable100, canary100 + migrateOff, "", 20, false},
		{"30 percent to canary with migration on", stable100, split7030 + migrateOn, "", toCanary, true},
		{"migration switched on over an old drift", canary100, canary100 + migrateOn, "", 20, true},
		{"migration already on, only its batch size changes", canary100 + migrateOn, canary100 + migrateSlow, "", 0, true},
		{"migration already on, the edit moves more", split7030 + migrateOn, canary100 + migrateOn, "", 20 - toCanary, true},
		{"no change", stable100 + migrateOn, stable100 + migrateOn, "", 0, true},
		{"a create", "", canary100 + migrateOn, "", 20, true},
		{"target down: nothing restarts towards it", stable100, canary100 + migrateOn, "canary", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := base()
			cur.Policy = mustPolicy(t, tc.cur)
			cur.Revisions = live(cur.Policy)
			delete(cur.Revisions, tc.down)
			old := base()
			if tc.old != "" {
				old.Policy = mustPolicy(t, tc.old)
				old.Revisions = live(old.Policy)
			}
			got := DryRunEdit(old, cur)
			if got.Moves != tc.wantMoves || got.Workloads != 20 || got.Migrates != tc.wantMigrates {
				t.Fatalf("DryRunEdit = %+v, want %d moves of 20 workloads, migrates %v", got, tc.wantMoves, tc.wantMigrates)
			}
			if want := float64(tc.wantMoves) / 20; got.Share() != want {
				t.Fatalf("share %g, want %g", got.Share(), want)
			}
		})
	}
}

func TestEditImpactShareOfNothing(t *testing.T) {
	if s := (EditImpact{}).Share(); s != 0 {
		t.Fatalf("share of no workloads = %g", s)
	}
}
