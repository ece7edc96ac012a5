package rollout

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

// TestNoDataIsNeverPass is the table of no-data cases for every gate
// kind (issue 22): an absent series, an empty vector, NaN, ±Inf, a canary
// istiod nobody scrapes, no baseline, no canary pods. Each must read
// unknown (or fail, where the data that is there is bad), never pass.
func TestNoDataIsNeverPass(t *testing.T) {
	const up = `up{app="istiod",istio_io_rev="1-25"}`
	healthy := map[string]string{
		`max(` + up + `)`:                                "1",
		`time() - max(timestamp(` + up + `))`:            "4",
		`sum(rate(errors{rev="1-25"}[1m]))`:              "0",
		`sum(rate(errors{rev="1-25"}[1m])) or vector(0)`: "0",
	}
	prom := func(edit map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range healthy {
			out[k] = v
		}
		for k, v := range edit {
			if v == "absent" {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	promDoc := func(query, bound string) string {
		return head + "rollout:\n  steps: [{canary: 100}]\n  gates:\n    prometheus:\n      url: %s\n      timeout: 1s\n" +
			"      queries: [{name: q, query: '" + query + "', " + bound + "}]\n"
	}
	builtin := func() BuiltinInput {
		return BuiltinInput{Canary: "1-25", Stable: []string{"1-24"}, Istio: istioState("1-24", "1-25"), PodsSynced: true,
			Pods:   []podview.RevisionCount{{Routed: "1-25", Injected: "1-25", Pods: 4}, {Routed: "1-24", Injected: "1-24", Pods: 4}},
			Health: map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}, "1-25": {Pods: 4, Ready: 4}},
			Gates:  policy.Gates{PodHealth: policy.PodHealth{MinReadyRatio: 0.9, MaxRestartRatio: 2, MinPods: 3}}}
	}
	type tc struct {
		name, kind string
		// builtin cases
		edit func(*BuiltinInput)
		// prometheus cases
		doc    string
		answer map[string]string
		gate   string
		want   Verdict
	}
	cases := []tc{
		{name: "istio view not synced", kind: GateInjector, edit: func(in *BuiltinInput) { in.Istio = nil }, gate: GateInjector, want: VerdictUnknown},
		{name: "pod view not synced", kind: GateMismatches, edit: func(in *BuiltinInput) { in.PodsSynced = false }, gate: GateMismatches, want: VerdictUnknown},
		{name: "health view not synced", kind: GatePodReady, edit: func(in *BuiltinInput) { in.Health = nil }, gate: GatePodReady, want: VerdictUnknown},
		{name: "no canary pods at all", kind: GatePodReady, edit: func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}}
		}, gate: GatePodReady, want: VerdictUnknown},
		{name: "no canary pods: restarts", kind: GateProxyRestarts, edit: func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}}
		}, gate: GateProxyRestarts, want: VerdictUnknown},
		{name: "fewer canary pods than minPods", kind: GatePodReady, edit: func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}, "1-25": {Pods: 2, Ready: 0}}
		}, gate: GatePodReady, want: VerdictUnknown},
		{name: "no stable baseline, 40 canary pods 0 ready", kind: GatePodReady, edit: func(in *BuiltinInput) {
			in.Stable = nil
			in.Health = map[string]ProxyHealth{"1-25": {Pods: 40, Ready: 0, Restarts: 400}}
		}, gate: GatePodReady, want: VerdictFail},
		{name: "no stable baseline, 400 restarts on 40 pods", kind: GateProxyRestarts, edit: func(in *BuiltinInput) {
			in.Stable = nil
			in.Health = map[string]ProxyHealth{"1-25": {Pods: 40, Ready: 40, Restarts: 400}}
		}, gate: GateProxyRestarts, want: VerdictFail},
		{name: "stable targets with no pods left", kind: GatePodReady, edit: func(in *BuiltinInput) {
			in.Health = map[string]ProxyHealth{"1-25": {Pods: 40, Ready: 0}}
		}, gate: GatePodReady, want: VerdictFail},
		{name: "empty vector", kind: "prometheus", doc: promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m]))`, "max: 0"),
			answer: prom(map[string]string{`sum(rate(errors{rev="1-25"}[1m]))`: "absent"}), gate: "q", want: VerdictUnknown},
		{name: "NaN", kind: "prometheus", doc: promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m]))`, "max: 0"),
			answer: prom(map[string]string{`sum(rate(errors{rev="1-25"}[1m]))`: "NaN"}), gate: "q", want: VerdictUnknown},
		{name: "+Inf with only a min", kind: "prometheus", doc: promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m]))`, "min: 1"),
			answer: prom(map[string]string{`sum(rate(errors{rev="1-25"}[1m]))`: "+Inf"}), gate: "q", want: VerdictUnknown},
		{name: "-Inf with only a max", kind: "prometheus", doc: promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m]))`, "max: 0"),
			answer: prom(map[string]string{`sum(rate(errors{rev="1-25"}[1m]))`: "-Inf"}), gate: "q", want: VerdictUnknown},
		{name: "or vector(0) with the canary istiod gone from Prometheus", kind: "prometheus",
			doc:    promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m])) or vector(0)`, "max: 0"),
			answer: prom(map[string]string{`max(` + up + `)`: "absent", `time() - max(timestamp(` + up + `))`: "absent"}), gate: "q", want: VerdictUnknown},
		{name: "canary istiod scrape failing (up 0)", kind: "prometheus",
			doc:    promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m])) or vector(0)`, "max: 0"),
			answer: prom(map[string]string{`max(` + up + `)`: "0"}), gate: "q", want: VerdictUnknown},
		{name: "canary istiod last scraped 10 minutes ago", kind: "prometheus",
			doc:    promDoc(`sum(rate(errors{rev="{{ .Revision }}"}[1m])) or vector(0)`, "max: 0"),
			answer: prom(map[string]string{`time() - max(timestamp(` + up + `))`: "600"}), gate: "q", want: VerdictUnknown},
	}
	notPassing := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got GateResult
			if c.doc == "" {
				in := builtin()
				c.edit(&in)
				got = gate(Builtin(in), c.gate)
			} else {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					v, ok := c.answer[r.URL.Query().Get("query")]
					if !ok {
						_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
						return
					}
					_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,%q]}]}}`, v)
				}))
				defer srv.Close()
				p := mustPolicy(t, fmt.Sprintf(c.doc, srv.URL))
				vars := policy.QueryVars{Revision: "1-25", Canary: "1-25", Stable: "1-24"}
				got = gate(Queries(context.Background(), &HTTPQuerier{Client: srv.Client()}, p.Rollout.Gates.Prometheus, vars, []string{srv.URL}), c.gate)
			}
			if got.Verdict != c.want {
				t.Errorf("%s: %s = %s (%q), want %s", c.kind, c.gate, got.Verdict, got.Message, c.want)
				return
			}
			notPassing++
		})
	}
	fmt.Printf("RESULT no-data gate cases=%d not-passing=%d passed-on-nothing=%d\n", len(cases), notPassing, len(cases)-notPassing)
}

// TestNoStepCompletesOnZeroObservations: a step whose hold is 0 does not
// complete on the measurement taken while its migration ran (pod health
// not judged then); it waits for one taken in the hold. The last step
// included.
func TestNoStepCompletesOnZeroObservations(t *testing.T) {
	p := mustPolicy(t, head+"rollout:\n  interval: 10s\n  steps: [{canary: 50, hold: 0s}, {canary: 100, hold: 0s}]\n")
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	rolling := Builtin(BuiltinInput{Canary: "1-25", Stable: []string{"1-24"}, Istio: istioState("1-24", "1-25"), PodsSynced: true,
		Health: map[string]ProxyHealth{}, Gates: p.Rollout.Gates, Rolling: true})
	res := Step(Input{Policy: p, Now: now, Gates: rolling}, nil)
	completedOnNothing := 0
	for i := range 2 {
		now = now.Add(time.Second)
		res = Step(Input{Policy: p, Now: now, Gates: rolling, Migration: Migration{State: MigrationDone}}, res.State)
		if res.State.Step != i || res.State.Phase != PhaseHolding {
			completedOnNothing++
			t.Errorf("step %d: %s at step %d on a measurement taken while the migration ran", i+1, res.State.Phase, res.State.Step+1)
			break
		}
		if !Due(res.State, p.Rollout, Control{}, now) {
			t.Errorf("step %d: the hold's first measurement is not due at once", i+1)
		}
		// Measured in the hold, with no canary pods observed: unknown.
		empty := Builtin(BuiltinInput{Canary: "1-25", Stable: []string{"1-24"}, Istio: istioState("1-24", "1-25"), PodsSynced: true,
			Health: map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}}, Gates: p.Rollout.Gates})
		r2 := Step(Input{Policy: p, Now: now.Add(time.Second), Gates: empty, Migration: Migration{State: MigrationDone}}, res.State)
		if r2.State.Phase != PhasePaused || r2.State.Step != i {
			completedOnNothing++
			t.Errorf("step %d: with no canary pods observed in the hold: %s at step %d", i+1, r2.State.Phase, r2.State.Step+1)
		}
		// Measured in the hold with canary pods observed: the step completes.
		seen := Builtin(BuiltinInput{Canary: "1-25", Stable: []string{"1-24"}, Istio: istioState("1-24", "1-25"), PodsSynced: true,
			Health: map[string]ProxyHealth{"1-24": {Pods: 4, Ready: 4}, "1-25": {Pods: 4, Ready: 4}}, Gates: p.Rollout.Gates})
		now = now.Add(time.Second)
		res = Step(Input{Policy: p, Now: now, Gates: seen, Migration: Migration{State: MigrationDone}}, res.State)
	}
	if res.State.Phase != PhaseComplete {
		t.Errorf("with observations in every hold the rollout ends %s", res.State.Phase)
	}
	fmt.Printf("RESULT zero-observation steps=2 completed-on-nothing=%d\n", completedOnNothing)
}

// TestUnknownPastMaxUnknownStops: gates unknown pause the rollout and it
// resumes on its own when data returns; unknown for longer than
// gates.maxUnknown, it stops for an operator.
func TestUnknownPastMaxUnknownStops(t *testing.T) {
	p := mustPolicy(t, head+"rollout:\n  interval: 10s\n  steps: [{canary: 50, hold: 1m}, {canary: 100}]\n  gates: {maxUnknown: 1m}\n")
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	unknown := []GateResult{{Name: GateInjector, Verdict: VerdictUnknown, Message: "the Istio view has not synced"}}
	pass := []GateResult{{Name: GateInjector, Verdict: VerdictPass}}
	res := Step(Input{Policy: p, Now: now, Gates: pass}, nil)
	res = Step(Input{Policy: p, Now: now.Add(10 * time.Second), Gates: unknown}, res.State)
	if res.State.Phase != PhasePaused || !res.State.AutoResume {
		t.Fatalf("first unknown: %s auto=%v", res.State.Phase, res.State.AutoResume)
	}
	res = Step(Input{Policy: p, Now: now.Add(40 * time.Second), Gates: unknown}, res.State)
	if !res.State.AutoResume {
		t.Fatalf("stopped before maxUnknown: %s", res.State.Reason)
	}
	res = Step(Input{Policy: p, Now: now.Add(80 * time.Second), Gates: unknown}, res.State)
	if res.State.Phase != PhasePaused || res.State.AutoResume || !strings.Contains(res.State.Reason, "maxUnknown") {
		t.Fatalf("past maxUnknown: %s auto=%v %q", res.State.Phase, res.State.AutoResume, res.State.Reason)
	}
	if Due(res.State, p.Rollout, Control{}, now.Add(200*time.Second)) {
		t.Fatal("a stopped rollout is still measured")
	}
	res = Step(Input{Policy: p, Now: now.Add(90 * time.Second), Control: Control{Action: ActionResume, RequestID: "r1"}, Gates: pass}, res.State)
	if res.State.Phase != PhaseProgressing {
		t.Fatalf("after resume: %s", res.State.Phase)
	}
}
