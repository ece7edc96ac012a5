package webhook

import (
	"testing"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
)

// TestAdmissionRoutesByOverlay: a pod admitted mid-rollout goes by the
// weights in force, its decision names the step, and while the rollout is
// stopped the user is told so.
func TestAdmissionRoutesByOverlay(t *testing.T) {
	doc := "granularity: workload\nseed: s\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n" +
		"rollout: {steps: [{canary: 100}]}\n"
	f := gated(t, doc, cluster("canary-router", "stable", "canary"), nil)
	all := func(rev string) []policy.Target {
		if rev == "canary" {
			return []policy.Target{{Revision: "stable", Weight: 0}, {Revision: "canary", Weight: 100}}
		}
		return []policy.Target{{Revision: "stable", Weight: 100}, {Revision: "canary", Weight: 0}}
	}
	pod := deploymentPod("team", "web", "6d4cf56db6", nil)

	f.store.SetOverlay(&inforce.Overlay{ID: "canary:stable,canary", Step: 0, Phase: "Holding", Weights: all("canary")})
	rv, rev, d := admitPodResult(t, f, pod, false)
	if rev != "canary" || d.Policy != f.store.Load().Digest || rv.warned("rollout") {
		t.Fatalf("holding: rev %q decision %+v warnings %v", rev, d, rv.warnings)
	}

	f.store.SetOverlay(&inforce.Overlay{ID: "canary:stable,canary", Step: 0, Phase: "RollingBack", Weights: all("stable"),
		Reason: "gate xds-rejects failed"})
	rv, rev, _ = admitPodResult(t, f, pod, false)
	if rev != "stable" || !rv.warned("the control-plane rollout is RollingBack at step 1 (gate xds-rejects failed)") {
		t.Fatalf("rolling back: rev %q warnings %v", rev, rv.warnings)
	}
}
