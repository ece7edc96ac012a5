package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
)

// TestMigratePlanStalePins: the plan's text and -o json|yaml name the
// workloads pinned to a revision that is not live or is being retired,
// classified as status classifies them.
func TestMigratePlanStalePins(t *testing.T) {
	p, err := policy.Parse([]byte("granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	state := istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-old", Rev: "old"},
	}, nil, "", "")
	web := migrate.Ref{Namespace: "shop", Kind: migrate.KindDeployment, Name: "web"}
	db := migrate.Ref{Namespace: "shop", Kind: migrate.KindStatefulSet, Name: "db"}
	in := migrate.Input{Policy: p, Digest: "d1", Revisions: migrate.LiveRevisions(p, state), Istio: state,
		Namespaces: []migrate.Namespace{{Name: "shop", Labels: map[string]string{policy.LabelOptIn: policy.OptInEnabled}}},
		Workloads:  []migrate.Workload{{Ref: web, Pinned: true}, {Ref: db, Pinned: true}},
		Pods:       map[migrate.Ref]migrate.PodCounts{web: {"": 3}, db: {"old": 1}},
		Pins:       map[migrate.PinKey]int{{Unit: web, Revision: "stabel"}: 3, {Unit: db, Revision: "old"}: 1},
	}
	plan := migrate.NewPlan(in, 5)

	var text bytes.Buffer
	WritePlanText(&text, "canary-router-system/canary-router-policy", plan, "workload")
	for _, want := range []string{
		"(2):\n",
		"  shop/Deployment/web  missing   istio.io/rev=stabel, 3 pods  no live Istio revision or tag has that name",
		"  shop/StatefulSet/db  retiring  istio.io/rev=old, 1 pod      a live revision outside the policy's targets",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	for format, want := range map[string]string{
		cmdutil.OutputJSON: `"stalePins": [
    {
      "namespace": "shop",
      "workload": "Deployment/web",
      "revision": "stabel",
      "state": "missing",
      "pods": 3
    },`,
		cmdutil.OutputYAML: "stalePins:\n- namespace: shop\n  pods: 3\n  revision: stabel\n  state: missing\n  workload: Deployment/web\n- namespace: shop\n  pods: 1\n  revision: old\n  state: retiring\n  workload: StatefulSet/db\n",
	} {
		var out bytes.Buffer
		if err := cmdutil.WriteDocument(&out, format, plan); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("-o %s lacks %q:\n%s", format, want, out.String())
		}
	}
}
