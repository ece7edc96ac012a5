package webhook

import (
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook/wire"
)

// noPolicyMessage explains a refused pod: admitting it would run it
// without a sidecar, which is worse than a retry once a policy is loaded.
func noPolicyMessage(policyRef string) string {
	return "canary-router has no valid routing policy (ConfigMap " + policyRef + ", key policy.yaml): " +
		"refusing the pod rather than admitting it without a sidecar; fix the policy or label the pod istio.io/rev=<revision>"
}

// admitPod routes a pod CREATE: it sets the pod label istio.io/rev so that
// exactly one Istio revision's object-selector webhook injects it.
func (a *Admitter) admitPod(r *wire.Review) wire.Response {
	if r.Operation != "CREATE" || r.SubResource != "" {
		return wire.Allowed(r.UID, nil)
	}
	ns := r.Namespace
	if ns == "" {
		ns = r.Object.Namespace
	}
	if ns == a.ownNamespace {
		a.count(r, resourcePods, "", policy.ReasonUnmanaged)
		return wire.Allowed(r.UID, nil)
	}
	snap := a.store.Load()
	if snap == nil {
		if explicitPod(&r.Object) {
			// Pinned or opted out needs no policy, but a pin still has to
			// name a live revision.
			d := policy.PodDecision{Reason: policy.ReasonPinned}
			if !isPinned(&r.Object) {
				d.Reason = policy.ReasonOptedOut
			}
			if resp, refused := a.refuseUninjected(r, ns, a.cluster.istioState(), &d); refused {
				return resp
			}
			return wire.Allowed(r.UID, nil)
		}
		a.metrics.reject(resourcePods, causeNoPolicy)
		a.requestLog(r).Warn("refusing pod: no valid policy loaded")
		return wire.Denied(r.UID, http.StatusServiceUnavailable, a.noPolicy)
	}
	rt := a.cluster.routesFor(snap)
	owner := controllerOf(&r.Object)
	draw := a.draw()
	d := snap.Policy.DecidePod(policy.PodSubject{
		Namespace:    ns,
		Name:         r.Object.Name,
		GenerateName: r.Object.GenerateName,
		Labels:       r.Object.Labels,
		Annotations:  r.Object.Annotations,
		Owner:        owner,
		Draw:         draw,
		Down:         rt.down,

		GatewayRevision: rt.gatewayRev,
	})
	var note inforce.Note
	if d.Balance {
		d, note = a.balance(r, ns, snap, rt, owner, draw, d)
	}
	if d.NoTarget {
		a.metrics.reject(resourcePods, causeNoTarget)
		a.requestLog(r).Warn("refusing pod: no routing target is available", zap.String("unavailable", rt.unavailable))
		return wire.Denied(r.UID, http.StatusServiceUnavailable, rt.refusal("the pod", a.policyRef))
	}
	if resp, refused := a.refuseUninjected(r, ns, rt.state, &d); refused {
		return resp
	}
	a.count(r, resourcePods, d.Revision, d.Reason)
	warnings := a.explainPod(r, rt, d, &note)
	if a.log.Core().Enabled(zapcore.DebugLevel) {
		a.logPodDecision(r, ns, &d, &note)
	}
	if d.Revision == "" {
		return wire.Allowed(r.UID, warnings)
	}
	note.Revision, note.Reason, note.Unit = d.Revision, d.Reason, d.Unit
	note.TagRevision = rt.tagRevision(d.Revision)
	p := newPatch(&r.Object)
	p.setLabel(policy.LabelIstioRev, d.Revision)
	p.setDecision(note, snap)
	return wire.Patched(r.UID, p.bytes(), warnings)
}

// Values of the decision's podView: why a pod that should have been
// balanced was placed by draw.
const (
	podViewNotSynced = "not-synced"
	// podViewFull: the cap on units holding reservations was reached
	// (podview.Options.MaxReservingUnits), and the pod's unit holds none.
	podViewFull = "reservations-full"
)

// balance places a pod-granularity pod by the live pod counts of its
// controller. Without a synced pod view the draw in d stands, and the
// decision annotation says why.
func (a *Admitter) balance(r *wire.Review, ns string, snap *inforce.Snapshot, rt *routes, owner *policy.Owner, draw uint64, d policy.PodDecision) (policy.PodDecision, inforce.Note) {
	if a.cluster.pods == nil {
		return d, inforce.Note{}
	}
	k := podview.Key{Namespace: ns, Kind: owner.Kind, Name: owner.Name}
	choice, preferred, ok := a.cluster.pods.Place(k, snap.Policy, rt.down, draw, !r.DryRun)
	if !ok {
		if a.cluster.pods.Synced() {
			return d, inforce.Note{PodView: podViewFull}
		}
		return d, inforce.Note{PodView: podViewNotSynced}
	}
	b := snap.Policy.BalancedDecision(choice, preferred)
	b.Warnings, b.Gateway = d.Warnings, d.Gateway
	return b, inforce.Note{BalancedKind: owner.Kind, BalancedName: owner.Name}
}

// explainPod counts what the decisions metric does not show (gateways,
// fallbacks) and returns the warnings the user should see: the policy's,
// a fallback naming the target and its cause, and, on a routed pod, a
// misordered webhook config. It fills note's fallback fields.
func (a *Admitter) explainPod(r *wire.Review, rt *routes, d policy.PodDecision, note *inforce.Note) []string {
	if d.Gateway && !r.DryRun {
		if d.Reason == policy.ReasonExcluded {
			a.metrics.gatewayPod(gatewayExcluded)
		} else {
			a.metrics.gatewayPod(gatewayRouted)
		}
	}
	warnings := d.Warnings
	if d.Gateway && d.Reason == policy.ReasonExcluded && rt.gatewayWarning != "" {
		warnings = append(warnings, rt.gatewayWarning)
	}
	if d.Avoided != "" {
		cause := rt.statusOf(d.Avoided).Cause
		if !r.DryRun {
			a.metrics.fellBack(d.Avoided, cause)
		}
		note.Avoided, note.Cause = d.Avoided, string(cause)
		warnings = append(warnings, rt.fallbackWarning("the pod", d.Revision, d.Avoided))
	}
	if d.Revision != "" && rt.order != "" {
		warnings = append(warnings, rt.order)
	}
	if d.Revision != "" && rt.rollout != "" {
		warnings = append(warnings, rt.rollout)
	}
	return warnings
}

// refuseUninjected runs the injection check and builds the refusal.
func (a *Admitter) refuseUninjected(r *wire.Review, ns string, state *istio.State, d *policy.PodDecision) (wire.Response, bool) {
	msg, code := a.injectionCheck(r, ns, state, d)
	if msg == "" {
		return wire.Response{}, false
	}
	a.metrics.reject(resourcePods, causeNotInjected)
	a.requestLog(r).Warn("refusing pod: no live Istio injector would inject it", zap.String("reason", string(d.Reason)),
		zap.String("revision", d.Revision))
	return wire.Denied(r.UID, code, msg), true
}

// isPinned reports whether a pod names its revision and does not opt out.
func isPinned(m *wire.ObjectMeta) bool {
	_, ok := m.Labels[policy.LabelIstioRev]
	return ok && m.Labels[policy.LabelSidecarInject] != "false" && m.Annotations[policy.LabelSidecarInject] != "false"
}

// explicitPod reports whether a pod already says how it wants injection;
// such a pod needs no policy to be admitted.
func explicitPod(m *wire.ObjectMeta) bool {
	if _, ok := m.Labels[policy.LabelIstioRev]; ok {
		return true
	}
	return m.Labels[policy.LabelSidecarInject] == "false" || m.Annotations[policy.LabelSidecarInject] == "false"
}

// count records a decision, except for dry runs: a dry run assigns nothing.
func (a *Admitter) count(r *wire.Review, resource, revision string, reason policy.Reason) {
	if !r.DryRun {
		a.metrics.decided(resource, revision, reason)
	}
}

// logPodDecision writes a pod decision at debug level. It is a function of
// its own, called only when debug logging is on, so that neither its
// fields nor zap's level check are in admitPod's stack frame: every
// request runs on a fresh goroutine, and a deeper stack makes each one
// grow (copy) its stack once more, which costs more than the decision.
//
//go:noinline
func (a *Admitter) logPodDecision(r *wire.Review, ns string, d *policy.PodDecision, note *inforce.Note) {
	if ce := a.log.Check(zap.DebugLevel, "pod decision"); ce != nil {
		ce.Write(zap.String("uid", r.UID), zap.String("namespace", ns), zap.String("unit", d.Unit),
			zap.String("revision", d.Revision), zap.String("reason", string(d.Reason)),
			zap.String("avoided", d.Avoided), zap.String("balancedOver", note.BalancedKind+"/"+note.BalancedName))
	}
}

// controllerOf returns the controlling owner, the one whose kind names the
// pod's workload, or nil.
func controllerOf(m *wire.ObjectMeta) *policy.Owner {
	for _, o := range m.OwnerReferences {
		if o.Controller {
			return &policy.Owner{Kind: o.Kind, Name: o.Name}
		}
	}
	return nil
}
