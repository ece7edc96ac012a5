package rollout

import (
	"fmt"

	"github.com/canary-router/canary-router/webhook/istio"
	"github.com/canary-router/canary-router/webhook/podview"
	"github.com/canary-router/canary-router/webhook/policy"
	webrollout "github.com/canary-router/canary-router/webhook/rollout"
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
// of webhook/istio: a revision that stops answering is out).
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
		if webrollout.RouterMismatch(rc, resolve) {
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

func (in BuiltinInput) resolver() webrollout.Resolver {
	if in.Istio == nil {
		return nil
	}
	return func(name string) string { return in.Istio.Target(name).Revision }
}

// healthGates compare canary-injected proxies with stable-injected ones
// by ratio, so a cluster whose pods restart anyway does not fail every
// canary: readiness share canary/stable at least MinReadyRatio, restarts
// per pod (plus one) canary/stable at most MaxRestartRatio.
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
	canary := in.Health[webrollout.Expected(in.Canary, resolve)]
	var stable ProxyHealth
	for _, s := range in.Stable {
		h := in.Health[webrollout.Expected(s, resolve)]
		stable.Pods += h.Pods
		stable.Ready += h.Ready
		stable.Restarts += h.Restarts
	}
	ph := in.Gates.PodHealth
	if in.Rolling {
		msg := "not judged while the step's migration restarts workloads (its readiness timeout covers them)"
		return []GateResult{{Name: GatePodReady, Value: 1, Verdict: VerdictPass, Message: msg},
			{Name: GateProxyRestarts, Value: 1, Verdict: VerdictPass, Message: msg}}
	}
	if canary.Pods < max(ph.MinPods, 1) || stable.Pods == 0 {
		msg := fmt.Sprintf("%d canary and %d stable pods: too few to compare (minPods %d)", canary.Pods, stable.Pods, ph.MinPods)
		ready = GateResult{Name: GatePodReady, Value: 1, Verdict: VerdictPass, Message: msg}
		restarts = GateResult{Name: GateProxyRestarts, Value: 1, Verdict: VerdictPass, Message: msg}
		return []GateResult{ready, restarts}
	}
	cShare := float64(canary.Ready) / float64(canary.Pods)
	sShare := float64(stable.Ready) / float64(stable.Pods)
	ready.Value = 1
	if sShare > 0 {
		ready.Value = cShare / sShare
	}
	ready.Verdict = verdictOf(ready.Value >= ph.MinReadyRatio)
	ready.Message = fmt.Sprintf("canary %d/%d ready, stable %d/%d: ratio %.3g, at least %g", canary.Ready, canary.Pods,
		stable.Ready, stable.Pods, ready.Value, ph.MinReadyRatio)
	cRate := float64(canary.Restarts)/float64(canary.Pods) + 1
	sRate := float64(stable.Restarts)/float64(stable.Pods) + 1
	restarts.Value = cRate / sRate
	restarts.Verdict = verdictOf(restarts.Value <= ph.MaxRestartRatio)
	restarts.Message = fmt.Sprintf("istio-proxy restarts per pod canary %.3g, stable %.3g: ratio %.3g, at most %g",
		cRate-1, sRate-1, restarts.Value, ph.MaxRestartRatio)
	return []GateResult{ready, restarts}
}

func verdictOf(ok bool) Verdict {
	if ok {
		return VerdictPass
	}
	return VerdictFail
}
