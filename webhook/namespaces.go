package webhook

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/webhook/wire"
)

// admitNamespace handles Namespace CREATE and UPDATE: in namespace
// granularity it replaces istio-injection=enabled with a chosen
// istio.io/rev; otherwise it replaces it with the router's opt-in label,
// because a namespace's Istio label would win over any pod label.
func (a *Admitter) admitNamespace(r *wire.Review) wire.Response {
	if (r.Operation != "CREATE" && r.Operation != "UPDATE") || r.SubResource != "" {
		return wire.Allowed(r.UID, nil)
	}
	if r.Object.Name == a.ownNamespace {
		a.count(r, resourceNamespaces, "", policy.ReasonUnmanaged)
		return wire.Allowed(r.UID, nil)
	}
	snap := a.store.Load()
	if snap == nil {
		// Blocking namespaces would block the cluster; without a policy a
		// namespace keeps its Istio labels and the default revision injects.
		return wire.Allowed(r.UID, []string{"canary-router has no valid policy: namespace labels left unchanged"})
	}
	rt := a.cluster.routesFor(snap)
	d := snap.Policy.DecideNamespace(policy.NamespaceSubject{
		Name:        r.Object.Name,
		Labels:      r.Object.Labels,
		Annotations: r.Object.Annotations,
		Down:        rt.down,
	})
	if d.Refuse {
		a.metrics.reject(resourceNamespaces, causeNoTarget)
		a.requestLog(r).Warn("refusing namespace: no routing target is available", zap.String("unavailable", rt.unavailable))
		return wire.Denied(r.UID, http.StatusServiceUnavailable, rt.refusal("namespace "+r.Object.Name, a.policyRef))
	}
	a.count(r, resourceNamespaces, d.Revision, d.Reason)
	warnings := d.Warnings
	note := inforce.Note{Revision: d.Revision, Reason: d.Reason, Unit: "Namespace", TagRevision: rt.tagRevision(d.Revision)}
	if d.NoTarget {
		warnings = append(warnings, "canary-router: unavailable targets: "+rt.unavailable)
	}
	if d.Avoided != "" {
		cause := rt.statusOf(d.Avoided).Cause
		if !r.DryRun {
			a.metrics.fellBack(d.Avoided, cause)
		}
		note.Avoided, note.Cause = d.Avoided, string(cause)
		warnings = append(warnings, rt.fallbackWarning("namespace "+r.Object.Name, d.Revision, d.Avoided))
	}
	if ce := a.log.Check(zap.DebugLevel, "namespace decision"); ce != nil {
		ce.Write(zap.String("uid", r.UID), zap.String("namespace", r.Object.Name),
			zap.String("revision", d.Revision), zap.String("reason", string(d.Reason)), zap.String("avoided", d.Avoided))
	}
	if d.Action == policy.NamespaceNone {
		return wire.Allowed(r.UID, warnings)
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
	p.setDecision(note, snap)
	return wire.Patched(r.UID, p.bytes(), warnings)
}
