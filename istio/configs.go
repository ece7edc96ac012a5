package istio

import (
	"bytes"

	"go.uber.org/zap"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// trimConfig keeps what the router reads of a webhook configuration: its
// name and Istio labels, and for Istio's injector configs their webhooks'
// names, selectors and client configs. Other configs (cert-manager's,
// policy engines') keep only their name, so the cache holds little more
// than Istio's own configs.
func trimConfig(obj any) (any, error) {
	m, ok := obj.(*admissionregv1.MutatingWebhookConfiguration)
	if !ok {
		return obj, nil
	}
	out := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: m.Name, ResourceVersion: m.ResourceVersion}}
	for _, k := range []string{LabelRev, LabelTag} {
		if v, ok := m.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	if !isInjector(Config{Name: m.Name, Rev: out.Labels[LabelRev], Tag: out.Labels[LabelTag]}) {
		return out, nil
	}
	out.Webhooks = make([]admissionregv1.MutatingWebhook, len(m.Webhooks))
	for i, h := range m.Webhooks {
		out.Webhooks[i] = admissionregv1.MutatingWebhook{Name: h.Name, ClientConfig: h.ClientConfig,
			NamespaceSelector: h.NamespaceSelector, ObjectSelector: h.ObjectSelector}
	}
	return out, nil
}

// configOf converts a (trimmed) webhook configuration. A selector the API
// server would refuse cannot be in a stored config; should one fail to
// convert anyway, the webhook is taken as matching nothing, so the router
// refuses rather than counts on an injector it cannot judge.
func configOf(m *admissionregv1.MutatingWebhookConfiguration, log *zap.Logger) Config {
	c := Config{Name: m.Name, Rev: m.Labels[LabelRev], Tag: m.Labels[LabelTag]}
	if !isInjector(c) {
		return c
	}
	c.Webhooks = make([]Webhook, 0, len(m.Webhooks))
	for _, h := range m.Webhooks {
		ns, errNS := selectorOf(h.NamespaceSelector)
		obj, errObj := selectorOf(h.ObjectSelector)
		if errNS != nil || errObj != nil {
			if log != nil {
				log.Error("unreadable selector in an Istio injector webhook", zap.String("config", m.Name),
					zap.String("webhook", h.Name), zap.NamedError("namespaceSelector", errNS), zap.NamedError("objectSelector", errObj))
			}
			ns, obj = labels.Nothing(), labels.Nothing()
		}
		w := Webhook{Name: h.Name, NamespaceSelector: ns, ObjectSelector: obj,
			Client: ClientConfig{CABundle: h.ClientConfig.CABundle}}
		if h.ClientConfig.URL != nil {
			w.Client.URL = *h.ClientConfig.URL
		}
		if s := h.ClientConfig.Service; s != nil {
			w.Client.Service = &ServiceRef{Namespace: s.Namespace, Name: s.Name, Port: 443}
			if s.Path != nil {
				w.Client.Service.Path = *s.Path
			}
			if s.Port != nil {
				w.Client.Service.Port = *s.Port
			}
		}
		c.Webhooks = append(c.Webhooks, w)
	}
	return c
}

// selectorOf converts a webhook selector; an absent one matches
// everything, as the API server reads it.
func selectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// sameInjector reports whether two injectors would match and be reached
// alike.
func sameInjector(a, b injector) bool {
	return a.config == b.config && a.revision == b.revision && a.hook.Name == b.hook.Name &&
		selectorString(a.hook.NamespaceSelector) == selectorString(b.hook.NamespaceSelector) &&
		selectorString(a.hook.ObjectSelector) == selectorString(b.hook.ObjectSelector) &&
		a.hook.Client.URL == b.hook.Client.URL && bytes.Equal(a.hook.Client.CABundle, b.hook.Client.CABundle) &&
		sameService(a.hook.Client.Service, b.hook.Client.Service)
}

func selectorString(s labels.Selector) string {
	if s == nil {
		return ""
	}
	return s.String()
}

func sameService(a, b *ServiceRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
