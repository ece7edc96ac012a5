package webhook

import (
	"net/http"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/webhook/wire"
)

// causeNotInjected labels a pod refused because no live Istio injector
// would inject it as the router leaves it.
const causeNotInjected = "not_injected"

// NamespaceLabels reads a namespace's labels from an informer cache, as
// the pod webhook's namespaceSelector matched them: never a label that
// selector rules out (nsview.Selected says why).
type NamespaceLabels interface {
	// SelectedLabels returns the labels of namespace name, false when the
	// cache does not hold it (yet).
	SelectedLabels(name string) (nsview.Selected, bool)
}

// podLabels reads a pod's labels with the istio.io/rev label the router is
// about to write laid over them, without copying the map.
type podLabels struct {
	m   map[string]string
	rev string // "" writes nothing
}

var _ labels.Labels = (*podLabels)(nil)

// Has implements labels.Labels.
func (l *podLabels) Has(key string) bool {
	if l.rev != "" && key == policy.LabelIstioRev {
		return true
	}
	_, ok := l.m[key]
	return ok
}

// Get implements labels.Labels.
func (l *podLabels) Get(key string) string {
	if l.rev != "" && key == policy.LabelIstioRev {
		return l.rev
	}
	return l.m[key]
}

// Lookup implements labels.Labels.
func (l *podLabels) Lookup(key string) (string, bool) {
	if l.rev != "" && key == policy.LabelIstioRev {
		return l.rev, true
	}
	v, ok := l.m[key]
	return v, ok
}

// namespaceLabels returns the labels of the pod's namespace as the pod
// webhook's namespaceSelector matched them: the opt-in label and neither
// Istio label, whatever the cache still holds. That is what the API server
// matched, and what Istio's selectors will see in the same request.
func (a *Admitter) namespaceLabels(ns string) labels.Labels {
	if a.cluster.namespaces != nil {
		if l, ok := a.cluster.namespaces.SelectedLabels(ns); ok {
			return l
		}
	}
	return selectedNamespace(ns)
}

// selectedNamespace is the labels of a namespace the pod webhook's
// selector matched, known only by name: the opt-in label and the name
// label the API server sets. A type of its own, so assuming them does
// not build a map per request.
type selectedNamespace string

// Has implements labels.Labels.
func (n selectedNamespace) Has(key string) bool {
	_, ok := n.Lookup(key)
	return ok
}

// Get implements labels.Labels.
func (n selectedNamespace) Get(key string) string {
	v, _ := n.Lookup(key)
	return v
}

// Lookup implements labels.Labels.
func (n selectedNamespace) Lookup(key string) (string, bool) {
	switch key {
	case policy.LabelOptIn:
		return policy.OptInEnabled, true
	case corev1.LabelMetadataName:
		return string(n), true
	}
	return "", false
}

// injectionCheck is the promise's last line: a pod that did not opt out is
// admitted only if a live Istio injector webhook will match it as the
// router leaves it. It returns "" when the pod may be admitted, else the
// refusal message and its HTTP code.
func (a *Admitter) injectionCheck(r *wire.Review, ns string, state *istio.State, d *policy.PodDecision) (string, int32) {
	// A pinned pod that also opts out is decided as pinned, but no injector
	// is meant to match it.
	if state == nil || d.Reason == policy.ReasonOptedOut || optsOut(&r.Object) {
		return "", 0
	}
	pl := podLabels{m: r.Object.Labels, rev: d.Revision}
	v := state.InjectedBy(a.namespaceLabels(ns), &pl)
	if !v.Known || v.Injected() {
		return "", 0
	}
	if v.Revision != "" {
		return "canary-router: refusing the pod rather than admitting it without a sidecar: it would be injected by revision " +
			v.Revision + " (webhook " + v.Webhook + "), whose istiod is not available. " + state.Target(v.Revision).Detail, http.StatusServiceUnavailable
	}
	return notInjectedMessage(ns, a.namespaceLabels(ns), &pl, d), http.StatusForbidden
}

// notInjectedMessage explains why no injector matches, with the labels
// Istio's selectors read and what the operator can do.
func notInjectedMessage(ns string, nsl labels.Labels, pl *podLabels, d *policy.PodDecision) string {
	var b strings.Builder
	b.WriteString("canary-router: refusing the pod rather than admitting it without a sidecar: no Istio injector webhook matches it (namespace ")
	b.WriteString(ns)
	b.WriteString(" labels ")
	writeLabel(&b, nsl, policy.LabelIstioRev)
	b.WriteString(", ")
	writeLabel(&b, nsl, policy.LabelIstioInjection)
	b.WriteString("; pod labels ")
	writeLabel(&b, pl, policy.LabelIstioRev)
	b.WriteString(", ")
	writeLabel(&b, pl, policy.LabelSidecarInject)
	b.WriteString("). ")
	switch {
	case pl.Has(policy.LabelIstioRev) && pl.rev == "":
		b.WriteString("The pod is pinned to revision " + strconv.Quote(pl.Get(policy.LabelIstioRev)) +
			", and no live Istio revision or revision tag has that name (a typo, or a revision removed after an upgrade); set its istio.io/rev label, in the pod template of its workload, to a live revision or remove it")
	case d.Reason == policy.ReasonUnmanaged:
		b.WriteString("The namespace opted in (" + policy.LabelOptIn + "=" + policy.OptInEnabled +
			") but is not routed yet: in namespace granularity canary-router labels it istio.io/rev within seconds; retry then")
	case d.Reason == policy.ReasonExcluded && d.Gateway:
		b.WriteString("The pod is an Istio gateway kept out of the split (gateways: exclude), and no revision answers to where it would stay; set gatewayRevision in the policy to a live revision")
	case d.Reason == policy.ReasonExcluded:
		b.WriteString("The namespace is in the policy's namespaces.exclude but labelled " + policy.LabelOptIn + "=" + policy.OptInEnabled +
			"; remove that label, or the namespace from namespaces.exclude")
	default:
		b.WriteString("Check the policy's targets against the live revisions (canary-router status)")
	}
	b.WriteString(", or label the pod sidecar.istio.io/inject=false to run it without a sidecar on purpose")
	return b.String()
}

// optsOut reports whether a pod opts out of injection, as a label (Istio's
// object selectors) or an annotation (Istio's injector).
func optsOut(m *wire.ObjectMeta) bool {
	return m.Labels[policy.LabelSidecarInject] == "false" || m.Annotations[policy.LabelSidecarInject] == "false"
}

func writeLabel(b *strings.Builder, l labels.Labels, key string) {
	b.WriteString(key)
	b.WriteByte('=')
	if !l.Has(key) {
		b.WriteString("<none>")
		return
	}
	b.WriteString(l.Get(key))
}
