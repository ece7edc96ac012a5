package webhook

import (
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/canary-router/canary-router/webhook/policy"
)

// admitNamespace handles Namespace CREATE and UPDATE: in namespace
// granularity it replaces istio-injection=enabled with a chosen
// istio.io/rev; otherwise it replaces it with the router's opt-in label,
// because a namespace's Istio label would win over any pod label.
func (a *Admitter) admitNamespace(r *review) *admissionv1.AdmissionResponse {
	if (r.Operation != "CREATE" && r.Operation != "UPDATE") || r.SubResource != "" {
		return allowed(r.UID, nil)
	}
	if r.Object.Name == a.ownNamespace {
		a.count(r, resourceNamespaces, "", policy.ReasonUnmanaged)
		return allowed(r.UID, nil)
	}
	snap := a.store.Load()
	if snap == nil {
		// Blocking namespaces would block the cluster; without a policy a
		// namespace keeps its Istio labels and the default revision injects.
		return allowed(r.UID, []string{"canary-router has no valid policy: namespace labels left unchanged"})
	}
	d := snap.Policy.DecideNamespace(policy.NamespaceSubject{
		Name:        r.Object.Name,
		Labels:      r.Object.Labels,
		Annotations: r.Object.Annotations,
	})
	a.count(r, resourceNamespaces, d.Revision, d.Reason)
	if ce := a.log.Check(zap.DebugLevel, "namespace decision"); ce != nil {
		ce.Write(zap.String("uid", r.UID), zap.String("namespace", r.Object.Name),
			zap.String("revision", d.Revision), zap.String("reason", string(d.Reason)))
	}
	if d.Action == policy.NamespaceNone {
		return allowed(r.UID, d.Warnings)
	}
	p := newPatch(&r.Object)
	if _, ok := r.Object.Labels[policy.LabelIstioInjection]; ok {
		p.removeLabel(policy.LabelIstioInjection)
	}
	switch d.Action {
	case policy.NamespaceRoute:
		p.setLabel(policy.LabelIstioRev, d.Revision)
	case policy.NamespaceOptIn:
		p.setLabel(policy.LabelOptIn, "enabled")
	}
	p.setAnnotation(policy.AnnotationDecision, decisionAnnotation(d.Revision, d.Reason, "Namespace", snap))
	return patched(r.UID, p.bytes(), d.Warnings)
}
