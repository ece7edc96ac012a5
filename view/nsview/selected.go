package nsview

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canary-router/canary-router/policy"
)

// RuledOut returns the namespace label keys the pod webhook's
// namespaceSelector requires absent (deploy/base/webhooks.yaml): a
// namespace labelled with either never reaches the pod webhook, in every
// granularity. deploy's tests hold the manifests to this list.
func RuledOut() []string {
	return []string{policy.LabelIstioRev, policy.LabelIstioInjection}
}

func ruledOut(key string) bool {
	return key == policy.LabelIstioRev || key == policy.LabelIstioInjection
}

// Selected is a namespace's labels as the pod webhook's namespaceSelector
// matched them. When the API server called the pod webhook for a pod, the
// namespace as the API server saw it had neither Istio label and did carry
// the opt-in label, and Istio's injector webhooks, called right after in
// the same request, read that same view. A value the watch still holds for
// a ruled-out key is therefore stale (the namespace was relabelled, and the
// watch has not caught up), and trusting it would make the injection check
// expect an injection no Istio webhook will make. So Selected never
// supplies a ruled-out key, and always supplies the opt-in label. It is a
// map type, so wrapping the cached map costs nothing per request.
type Selected map[string]string

var _ labels.Labels = Selected(nil)

// Has implements labels.Labels.
func (s Selected) Has(key string) bool {
	_, ok := s.Lookup(key)
	return ok
}

// Get implements labels.Labels.
func (s Selected) Get(key string) string {
	v, _ := s.Lookup(key)
	return v
}

// Lookup implements labels.Labels.
func (s Selected) Lookup(key string) (string, bool) {
	switch {
	case ruledOut(key):
		return "", false
	case key == policy.LabelOptIn:
		return policy.OptInEnabled, true
	}
	v, ok := s[key]
	return v, ok
}

// SelectedLabels returns a namespace's labels as the pod webhook's
// selector matched them (see Selected), false when the view does not hold
// the namespace. The map is shared: callers must not change it.
func (v *View) SelectedLabels(name string) (Selected, bool) {
	ns, ok := v.Get(name)
	return Selected(ns.Labels), ok
}
