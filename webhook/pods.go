package webhook

import (
	"net/http"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/canary-router/canary-router/webhook/policy"
)

// noPolicyMessage explains a refused pod: admitting it would run it
// without a sidecar, which is worse than a retry once a policy is loaded.
const noPolicyMessage = "canary-router has no valid routing policy (ConfigMap canary-router-system/canary-router-policy, key policy.yaml): " +
	"refusing the pod rather than admitting it without a sidecar; fix the policy or label the pod istio.io/rev=<revision>"

// admitPod routes a pod CREATE: it sets the pod label istio.io/rev so that
// exactly one Istio revision's object-selector webhook injects it.
func (a *Admitter) admitPod(r *review) *admissionv1.AdmissionResponse {
	if r.Operation != "CREATE" || r.SubResource != "" {
		return allowed(r.UID, nil)
	}
	ns := r.Namespace
	if ns == "" {
		ns = r.Object.Namespace
	}
	if ns == a.ownNamespace {
		a.count(r, resourcePods, "", policy.ReasonUnmanaged)
		return allowed(r.UID, nil)
	}
	snap := a.store.Load()
	if snap == nil {
		if explicitPod(&r.Object) {
			return allowed(r.UID, nil)
		}
		a.metrics.reject(resourcePods, causeNoPolicy)
		a.requestLog(r).Warn("refusing pod: no valid policy loaded")
		return denied(r.UID, http.StatusServiceUnavailable, noPolicyMessage)
	}
	d := snap.Policy.DecidePod(policy.PodSubject{
		Namespace:    ns,
		Name:         r.Object.Name,
		GenerateName: r.Object.GenerateName,
		Labels:       r.Object.Labels,
		Annotations:  r.Object.Annotations,
		Owner:        r.Object.controller(),
		Draw:         a.draw(),
	})
	a.count(r, resourcePods, d.Revision, d.Reason)
	if ce := a.log.Check(zap.DebugLevel, "pod decision"); ce != nil {
		ce.Write(zap.String("uid", r.UID), zap.String("namespace", ns), zap.String("unit", d.Unit),
			zap.String("revision", d.Revision), zap.String("reason", string(d.Reason)))
	}
	if d.Revision == "" {
		return allowed(r.UID, d.Warnings)
	}
	p := newPatch(&r.Object)
	p.setLabel(policy.LabelIstioRev, d.Revision)
	p.setAnnotation(policy.AnnotationDecision, decisionAnnotation(d.Revision, d.Reason, d.Unit, snap))
	return patched(r.UID, p.bytes(), d.Warnings)
}

// explicitPod reports whether a pod already says how it wants injection;
// such a pod needs no policy to be admitted.
func explicitPod(m *objectMeta) bool {
	if _, ok := m.Labels[policy.LabelIstioRev]; ok {
		return true
	}
	return m.Labels[policy.LabelSidecarInject] == "false" || m.Annotations[policy.LabelSidecarInject] == "false"
}

// count records a decision, except for dry runs: a dry run assigns nothing.
func (a *Admitter) count(r *review, resource, revision string, reason policy.Reason) {
	if !r.DryRun {
		a.metrics.decided(resource, revision, reason)
	}
}
