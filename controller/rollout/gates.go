package rollout

import (
	"fmt"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/view/progress"
)

// Names of the built-in gates, as status and metrics show them. The
// migration's outcome is a gate too, but it reaches Step as Migration.
const (
	GateInjector      = "injector-ready"
	GateMismatches    = "mismatches"
	GatePodReady      = "proxy-ready"
	GateProxyRestarts = "proxy-restarts"
)

// ProxyHealth counts the istio-proxy containers of the pods one revision
// injected.
type ProxyHealth struct {
	Pods, Ready, Restarts int
}

// BuiltinInput is what the built-in gates read, all from informer caches.
type BuiltinInput struct {
	// Canary is the plan's canary target; Istio resolves it (a tag to its
	// revision) and says whether its injector answers. A nil Istio is a
	// view not yet synced: unknown.
	Canary string
	Istio  *istio.State
	// Pods are live pods by routed and injected revision (podview);
	// PodsSynced is false until the view listed every pod.
	Pods       []podview.RevisionCount
	PodsSynced bool
	// Health is the proxies' health by injected revision; nil: unknown.
	Health map[string]ProxyHealth
	// Stable are the other targets.
	Stable []string
	Gates  policy.Gates
	// Rolling: the step's migration is restarting workloads. Pod health
	// is not judged then: pods that are starting are not ready yet, and
	// the migration's readiness timeout already fails a batch whose pods
	// never turn ready. The next measurement, in the hold, judges.
	Rolling bool
	// Idle: the weights in force route nothing to the canary (a 0 percent
	// step), so there are no canary pods to expect and pod health has
	// nothing to judge.
	Idle bool
}

// Builtin measures the built-in gates.
func Builtin(in BuiltinInput) []GateResult {
	limit := in.Gates.FailureLimit
	out := []GateResult{injectorGate(in), mismatchGate(in)}
	out = append(out, healthGates(in)...)
	for i := range out {
		out[i].FailureLimit = limit
	}
	return out
}

// injectorGate: the canary's istiod is ready (the active injector check
// of istio: a revision that stops answering is out).
func injectorGate(in BuiltinInput) GateResult {
	g := GateResult{Name: GateInjector}
	if in.Istio == nil {
		g.Verdict, g.Message = VerdictUnknown, "the Istio view has not synced"
		return g
	}
	st := in.Istio.Target(in.Canary)
	if !st.Available() {
		g.Verdict, g.Message = VerdictFail, fmt.Sprintf("canary %s is not available (%s): %s", in.Canary, st.Cause, st.Detail)
		return g
	}
	g.Value, g.Verdict, g.Message = 1, VerdictPass, "canary "+in.Canary+" injector answers"
	return g
}

// mismatchGate: pods the router routed but another revision (or none)
// injected, the same count as canary_router_pods_mismatched.
func mismatchGate(in BuiltinInput) GateResult {
	g := GateResult{Name: GateMismatches}
	if !in.PodsSynced {
		g.Verdict, g.Message = VerdictUnknown, "the pod view has not listed every pod"
		return g
	}
	resolve := in.resolver()
	n := 0
	for _, rc := range in.Pods {
		if progress.RouterMismatch(rc, resolve) {
			n += rc.Pods
		}
	}
	g.Value = float64(n)
	g.Verdict = VerdictPass
	if n > in.Gates.MaxMismatches {
		g.Verdict = VerdictFail
	}
	g.Message = fmt.Sprintf("%d routed-vs-injected mismatches, at most %d allowed", n, in.Gates.MaxMismatches)
	return g
}

func (in BuiltinInput) resolver() progress.Resolver {
	if in.Istio == nil {
		return nil
	}
	return func(name string) string { return in.Istio.Target(name).Revision }
}

// healthGates compare canary-injected proxies with stable-injected ones
// by ratio, so a cluster whose pods restart anyway does not fail every
// canary: readiness share canary/stable at least MinReadyRatio, restarts
// per pod (plus one) canary/stable at most MaxRestartRatio. With no
// stable pods (the last step at 100 percent, or a cluster whose stable
// proxies are all gone) the canary is judged on its own against a
// perfect baseline: every proxy ready, none restarted. With fewer than
// MinPods canary pods the gates are unknown: nothing observed is not a
// pass, so no step completes on it.
func healthGates(in BuiltinInput) []GateResult {
	ready := GateResult{Name: GatePodReady}
	restarts := GateResult{Name: GateProxyRestarts}
	if in.Health == nil {
		for _, g := range []*GateResult{&ready, &restarts} {
			g.Verdict, g.Message = VerdictUnknown, "the pod health view has not synced"
		}
		return []GateResult{ready, restarts}
	}
	resolve := in.resolver()
	canary := in.Health[progress.Expected(in.Canary, resolve)]
	var stable ProxyHealth
	for _, s := range in.Stable {
		h := in.Health[progress.Expected(s, resolve)]
		stable.Pods += h.Pods
		stable.Ready += h.Ready
		stable.Restarts += h.Restarts
	}
	ph := in.Gates.PodHealth
	if in.Rolling {
		// The machine never completes a step on this measurement: the
		// hold needs one of its own (machine.move).
		msg := "not judged while the step's migration restarts workloads (its readiness timeout covers them)"
		return []GateResult{{Name: GatePodReady, Value: 1, Verdict: VerdictPass, Message: msg},
			{Name: GateProxyRestarts, Value: 1, Verdict: VerdictPass, Message: msg}}
	}
	if in.Idle && canary.Pods == 0 {
		msg := "the weights in force route no pods to the canary: no canary pods expected"
		return []GateResult{{Name: GatePodReady, Value: 1, Verdict: VerdictPass, Message: msg},
			{Name: GateProxyRestarts, Value: 1, Verdict: VerdictPass, Message: msg}}
	}
	if minPods := max(ph.MinPods, 1); canary.Pods < minPods {
		msg := fmt.Sprintf("%d canary-injected pods observed, at least %d needed to judge (podHealth.minPods)", canary.Pods, minPods)
		ready = GateResult{Name: GatePodReady, Verdict: VerdictUnknown, Message: msg}
		restarts = GateResult{Name: GateProxyRestarts, Verdict: VerdictUnknown, Message: msg}
		return []GateResult{ready, restarts}
	}
	baseline := fmt.Sprintf("stable %d/%d ready", stable.Ready, stable.Pods)
	sShare, sRate := 1.0, 1.0
	if stable.Pods > 0 {
		sShare = float64(stable.Ready) / float64(stable.Pods)
		sRate = float64(stable.Restarts)/float64(stable.Pods) + 1
	} else {
		baseline = "no stable pods: judged against all ready, no restarts"
	}
	cShare := float64(canary.Ready) / float64(canary.Pods)
	ready.Value = 1
	if sShare > 0 {
		ready.Value = cShare / sShare
	}
	ready.Verdict = verdictOf(ready.Value >= ph.MinReadyRatio)
	ready.Message = fmt.Sprintf("canary %d/%d ready, %s: ratio %.3g, at least %g", canary.Ready, canary.Pods,
		baseline, ready.Value, ph.MinReadyRatio)
	cRate := float64(canary.Restarts)/float64(canary.Pods) + 1
	restarts.Value = cRate / sRate
	restarts.Verdict = verdictOf(restarts.Value <= ph.MaxRestartRatio)
	restarts.Message = fmt.Sprintf("istio-proxy restarts per pod canary %.3g, baseline %.3g: ratio %.3g, at most %g",
		cRate-1, sRate-1, restarts.Value, ph.MaxRestartRatio)
	return []GateResult{ready, restarts}
}

func verdictOf(ok bool) Verdict {
	if ok {
		return VerdictPass
	}
	return VerdictFail
}
