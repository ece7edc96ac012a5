package istio

import (
	"sort"

	"k8s.io/apimachinery/pkg/labels"
)

// Webhook is one webhook of an Istio injector config: the selectors the API
// server evaluates before calling it, and where it is served (for the
// active health check).
type Webhook struct {
	Name string
	// NamespaceSelector and ObjectSelector are the webhook's selectors,
	// converted once; a nil selector matches everything, as the API server
	// treats an absent one.
	NamespaceSelector labels.Selector
	ObjectSelector    labels.Selector
	// Client is the webhook's clientConfig.
	Client ClientConfig
}

// ClientConfig is where a webhook is served: a URL, or a Service.
type ClientConfig struct {
	URL string
	// Service is nil for a URL webhook.
	Service *ServiceRef
	// CABundle verifies the injector's serving certificate.
	CABundle []byte
}

// ServiceRef is a webhook's Service reference.
type ServiceRef struct {
	Namespace, Name, Path string
	Port                  int32
}

// injector is one webhook of a config, resolved to the real revision that
// injects what it matches.
type injector struct {
	config   string
	revision string
	hook     Webhook
	// name is "<config>/<webhook>", as a Verdict names it.
	name string
}

// Verdict says what Istio would do with a pod, by the selectors of its
// injector webhooks.
type Verdict struct {
	// Known is false when the router has no selectors to judge by (a state
	// built from metadata only, or no injector config at all read yet).
	Known bool
	// Revision is the real revision whose webhook is called first for the
	// pod, "" when no injector webhook matches.
	Revision string
	// Webhook names the matching webhook ("<config>/<webhook>").
	Webhook string
	// Live: Revision's istiod can answer (State.RevisionLive).
	Live bool
}

// Injected reports whether the pod would get a sidecar from a live
// revision.
func (v Verdict) Injected() bool { return v.Known && v.Revision != "" && v.Live }

// buildInjectors orders every injector webhook as the API server calls
// them: configs in byte-wise name order, webhooks in their order within a
// config. The first match injects the pod; Istio's later injectors see its
// status annotation and leave it alone.
func buildInjectors(configs []Config) (out []injector, known bool) {
	sorted := make([]Config, 0, len(configs))
	for _, c := range configs {
		if c.Webhooks != nil {
			known = true
		}
		if isInjector(c) && c.Rev != "" {
			sorted = append(sorted, c)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, c := range sorted {
		for _, h := range c.Webhooks {
			out = append(out, injector{config: c.Name, revision: c.Rev, hook: h, name: c.Name + "/" + h.Name})
		}
	}
	return out, known
}

// InjectedBy returns which revision's injector the API server would call
// for a pod with podLabels in a namespace with nsLabels. Both are read
// through labels.Labels so a caller can overlay the label it is about to
// write without copying the map.
func (s *State) InjectedBy(nsLabels, podLabels labels.Labels) Verdict {
	if !s.selectorsKnown {
		return Verdict{}
	}
	for i := range s.injectors {
		in := &s.injectors[i]
		if matches(in.hook.NamespaceSelector, nsLabels) && matches(in.hook.ObjectSelector, podLabels) {
			return Verdict{Known: true, Revision: in.revision, Webhook: in.name, Live: s.RevisionLive(in.revision)}
		}
	}
	return Verdict{Known: true}
}

func matches(sel labels.Selector, l labels.Labels) bool {
	return sel == nil || sel.Matches(l)
}

// RevisionLive reports whether a real revision's istiod can answer its
// injector webhook: ready endpoints, and no failed active check.
func (s *State) RevisionLive(rev string) bool {
	if _, ok := s.revisions[rev]; !ok {
		return false
	}
	return s.revisionStatus(rev, false, "").Available()
}
