package istio

import "k8s.io/apimachinery/pkg/labels"

// ChartWebhooks returns the webhooks, with their selectors, that Istio's
// charts (>= 1.10) render into an injector config that matches value (a
// revision, or a tag): rev.namespace and rev.object, plus namespace and
// object when the config is the default revision or the `default` tag
// (docs/istio.md). Tests and tools use it to stand in for a live
// config without a cluster.
func ChartWebhooks(value string, withDefault bool) []Webhook {
	sel := func(s string) labels.Selector {
		out, err := labels.Parse(s)
		if err != nil {
			panic("istio: bad chart selector " + s + ": " + err.Error())
		}
		return out
	}
	hooks := []Webhook{
		{Name: "rev.namespace.sidecar-injector.istio.io",
			NamespaceSelector: sel("istio.io/rev in (" + value + "),!istio-injection"),
			ObjectSelector:    sel("sidecar.istio.io/inject notin (false)")},
		{Name: "rev.object.sidecar-injector.istio.io",
			NamespaceSelector: sel("!istio.io/rev,!istio-injection"),
			ObjectSelector:    sel("sidecar.istio.io/inject notin (false),istio.io/rev in (" + value + ")")},
	}
	if withDefault {
		hooks = append(hooks,
			Webhook{Name: "namespace.sidecar-injector.istio.io",
				NamespaceSelector: sel("istio-injection in (enabled)"),
				ObjectSelector:    sel("sidecar.istio.io/inject notin (false)")},
			Webhook{Name: "object.sidecar-injector.istio.io",
				NamespaceSelector: sel("!istio-injection,!istio.io/rev"),
				ObjectSelector:    sel("sidecar.istio.io/inject in (true),!istio.io/rev")})
	}
	return hooks
}
