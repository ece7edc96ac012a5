package inforce

import (
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

const overlayDoc = `granularity: workload
targets: [{revision: "1-24", weight: 100}, {revision: "1-25", weight: 0}]
rollout:
  steps: [{canary: 25, hold: 1m}, {canary: 100}]
`

func TestStoreOverlay(t *testing.T) {
	applied := 0
	s := NewStore(time.Now, func(*Snapshot) { applied++ }, nil)
	w := func(stable, canary float64) []policy.Target {
		return []policy.Target{{Revision: "1-24", Weight: stable}, {Revision: "1-25", Weight: canary}}
	}
	// An overlay that arrives before the policy waits for it.
	s.SetOverlay(&Overlay{ID: "1-25:1-24,1-25", Step: 0, Weights: w(75, 25)})
	base, err := s.Apply([]byte(overlayDoc), "test")
	if err != nil {
		t.Fatal(err)
	}
	if base.Rollout == nil || base.Policy.Targets[1].Weight != 25 {
		t.Fatalf("overlay not in force: %+v", base.Policy.Targets)
	}
	if s.Base().Policy.Targets[1].Weight != 0 {
		t.Fatal("the operator's policy was changed")
	}
	d25 := s.Load().Digest
	if d25 == s.Base().Digest {
		t.Fatal("a step needs a digest of its own, or the migration takes it as already done")
	}

	s.SetOverlay(&Overlay{ID: "1-25:1-24,1-25", Step: 1, Weights: w(0, 100)})
	if got := s.Load(); got.Policy.Targets[1].Weight != 100 || got.Digest == d25 || got.Generation != base.Generation {
		t.Fatalf("step 1: %+v digest %s gen %d", got.Policy.Targets, got.Digest, got.Generation)
	}
	ann := DecisionAnnotation("1-25", policy.ReasonSticky, "Deployment", "", s.Load())
	if !strings.HasSuffix(ann, `,"step":1}`) {
		t.Fatalf("decision annotation %s lacks the step", ann)
	}

	// The same document again keeps the overlay.
	if again, _ := s.Apply([]byte(overlayDoc), "test"); again.Rollout == nil {
		t.Fatal("a re-applied document dropped the overlay")
	}
	for _, tc := range []struct {
		name string
		o    *Overlay
	}{
		{"another rollout", &Overlay{ID: "1-26:1-24,1-26", Weights: w(50, 50)}},
		{"weights off 100", &Overlay{ID: "1-25:1-24,1-25", Weights: w(50, 40)}},
		{"targets reordered", &Overlay{ID: "1-25:1-24,1-25", Weights: []policy.Target{{Revision: "1-25", Weight: 50}, {Revision: "1-24", Weight: 50}}}},
		{"none", nil},
	} {
		s.SetOverlay(tc.o)
		if got := s.Load(); got.Rollout != nil || got.Policy.Targets[1].Weight != 0 {
			t.Errorf("%s: overlay applied: %+v", tc.name, got.Policy.Targets)
		}
	}

	// Removing the rollout block from the policy takes routing back.
	s.SetOverlay(&Overlay{ID: "1-25:1-24,1-25", Step: 0, Weights: w(75, 25)})
	noPlan := "granularity: workload\ntargets: [{revision: \"1-24\", weight: 100}, {revision: \"1-25\", weight: 0}]\n"
	if got, _ := s.Apply([]byte(noPlan), "test"); got.Rollout != nil {
		t.Fatal("overlay applied to a policy without a rollout block")
	}
	// Except from a completed rollout: its weights route until the
	// targets agree (the leader then removes them), over the same
	// revisions only.
	s.SetOverlay(&Overlay{ID: "1-25:1-24,1-25", Step: 1, Phase: "Complete", Weights: w(0, 100)})
	if got := s.Load(); got.Rollout == nil || got.Policy.Targets[1].Weight != 100 {
		t.Fatalf("a completed rollout's weights dropped with its block: %+v", got.Policy.Targets)
	}
	other := "granularity: workload\ntargets: [{revision: \"1-24\", weight: 100}, {revision: \"1-26\", weight: 0}]\n"
	if got, _ := s.Apply([]byte(other), "test"); got.Rollout != nil {
		t.Fatal("a completed rollout's weights applied to other revisions")
	}
	if applied < 4 {
		t.Fatalf("onApply ran %d times", applied)
	}
}

func TestOverlayDecode(t *testing.T) {
	for _, s := range []string{"", "{", `{"id":"x"}`} {
		if DecodeOverlay(s) != nil {
			t.Errorf("%q decoded", s)
		}
	}
	o := Overlay{ID: "a:b,a", Attempt: 2, Step: 3, Phase: "Holding", Weights: []policy.Target{{Revision: "b", Weight: 100}, {Revision: "a"}}}
	if got := DecodeOverlay(o.Encode()); got == nil || !overlayEqual(got, &o) {
		t.Fatalf("round trip %+v", got)
	}
}

// BenchmarkLoadWithOverlay: the overlay costs the hot path nothing, it is
// folded into the snapshot when it changes.
func BenchmarkLoadWithOverlay(b *testing.B) {
	s := NewStore(time.Now, nil, nil)
	if _, err := s.Apply([]byte(overlayDoc), "bench"); err != nil {
		b.Fatal(err)
	}
	s.SetOverlay(&Overlay{ID: "1-25:1-24,1-25", Weights: []policy.Target{{Revision: "1-24", Weight: 75}, {Revision: "1-25", Weight: 25}}})
	b.ReportAllocs()
	for b.Loop() {
		if s.Load().Rollout == nil {
			b.Fatal("no overlay")
		}
	}
}
