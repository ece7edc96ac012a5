// Package istio is the router's live view of Istio's control planes: which
// revisions and revision tags exist (read from the injectors'
// MutatingWebhookConfigurations), whether each revision's istiod has ready
// endpoints, and whether any injector config sorts before the router's own.
//
// State is an immutable snapshot built by a pure function (NewState), so
// the rules are table-tested without a cluster; Watcher keeps one current
// from informers.
package istio

import (
	"slices"
	"strings"
)

// Labels Istio puts on its injector configs (docs/istio.md).
const (
	// LabelRev names the revision an injector config serves, or the
	// revision a tag points to.
	LabelRev = "istio.io/rev"
	// LabelTag marks a revision tag's config (istio-revision-tag-<tag>).
	LabelTag = "istio.io/tag"
)

// Name prefixes of Istio's injector configs; the webhook order check is
// about these.
const (
	prefixInjector = "istio-sidecar-injector"
	prefixTag      = "istio-revision-tag-"
)

// Default is the name of both Istio's default revision (the revision
// label of an install without --revision, whose istiod Service has no
// suffix) and the default revision tag: either one is what injects
// namespaces labelled istio-injection=enabled.
const Default = "default"

// Cause says why a target cannot be written. The set is closed so it can
// label metrics.
type Cause string

// Causes of an unavailable target.
const (
	// CauseNotFound: no injector config names the target as a revision or a
	// tag. A pod labelled with it would match no webhook and run without a
	// sidecar.
	CauseNotFound Cause = "not-found"
	// CauseNotReady: the target's istiod has no ready endpoints. Its
	// webhook fails closed, so every pod routed to it would be refused.
	CauseNotReady Cause = "not-ready"
	// CauseNotAnswering: the target's istiod has ready endpoints, but its
	// injector webhook failed the router's active check (Prober): the
	// window between an istiod dying and its endpoints turning unready.
	CauseNotAnswering Cause = "not-answering"
	// CauseUnknown: the router has not read the cluster's Istio
	// configuration yet.
	CauseUnknown Cause = "unknown"
)

// Config is what the router reads of one MutatingWebhookConfiguration.
type Config struct {
	Name string
	// Rev and Tag are the istio.io/rev and istio.io/tag labels ("" when
	// absent).
	Rev, Tag string
	// Webhooks are the config's webhooks in order; nil when only the
	// config's metadata was read, which leaves InjectedBy without a verdict.
	Webhooks []Webhook
}

// Endpoints is the readiness of one EndpointSlice in the Istio namespace.
type Endpoints struct {
	// Service is the slice's kubernetes.io/service-name label.
	Service string
	// Ready: at least one endpoint of the slice is ready.
	Ready bool
}

// Status is the availability of one policy target.
type Status struct {
	// Revision is the real revision: the target itself, or the revision a
	// tag points to.
	Revision string
	// Tag is set when the target is a revision tag.
	Tag bool
	// Cause is empty when the target can be written.
	Cause Cause
	// Detail explains Cause to a person, naming the objects to look at.
	Detail string
}

// Available reports whether the target can be written.
func (s Status) Available() bool { return s.Cause == "" }

// State is one snapshot of Istio's control planes. It is immutable: build
// it with NewState.
type State struct {
	namespace string
	revisions map[string]struct{}
	tags      map[string]string // tag -> revision
	ready     map[string]bool   // istiod Service -> any ready endpoint
	// misordered lists the injector configs that sort before ownConfig.
	misordered []string
	ownConfig  string
	// injectors are every injector webhook in the order the API server
	// calls them; selectorsKnown is false when no config carried its
	// webhooks.
	injectors      []injector
	selectorsKnown bool
	// probes is where each revision's own injector webhook is served, for
	// the active check; notAnswering holds the revisions that failed it,
	// with what the check saw (see WithNotAnswering).
	probes       map[string]ProbeTarget
	notAnswering map[string]string
}

// NewState resolves configs and endpoints into a snapshot. istioNamespace
// is where the istiod Services live; ownConfig is the name of the router's
// own MutatingWebhookConfiguration, for the order check.
//
// A revision is a config labelled istio.io/rev=<name> without istio.io/tag;
// a tag is a config labelled istio.io/tag=<name>, pointing at the revision
// in its istio.io/rev label.
func NewState(configs []Config, endpoints []Endpoints, istioNamespace, ownConfig string) *State {
	s := &State{
		namespace: istioNamespace,
		revisions: map[string]struct{}{},
		tags:      map[string]string{},
		ready:     map[string]bool{},
		ownConfig: ownConfig,
	}
	for _, c := range configs {
		switch {
		case c.Tag != "":
			s.tags[c.Tag] = c.Rev
		case c.Rev != "":
			s.revisions[c.Rev] = struct{}{}
		}
		if isInjector(c) && c.Name < ownConfig {
			s.misordered = append(s.misordered, c.Name)
		}
	}
	slices.Sort(s.misordered)
	s.injectors, s.selectorsKnown = buildInjectors(configs)
	s.probes = probeTargets(configs)
	for _, e := range endpoints {
		if e.Ready {
			s.ready[e.Service] = true
		}
	}
	return s
}

// isInjector reports whether a config is one of Istio's sidecar injector
// configs: by Istio's names, or by the labels Istio puts on them, so a
// renamed one is caught too.
func isInjector(c Config) bool {
	return strings.HasPrefix(c.Name, prefixInjector) || strings.HasPrefix(c.Name, prefixTag) ||
		c.Rev != "" || c.Tag != ""
}

// Target returns the availability of a policy target (a revision or a tag).
// A name that is both a revision and a tag is taken as the revision: Istio
// refuses to create such a tag, and the revision's own webhook would match.
func (s *State) Target(name string) Status {
	if _, ok := s.revisions[name]; ok {
		return s.revisionStatus(name, false, "")
	}
	rev, ok := s.tags[name]
	if !ok {
		return Status{Cause: CauseNotFound, Detail: "no Istio revision or revision tag named " + name +
			": no MutatingWebhookConfiguration is labelled istio.io/rev=" + name + " (without istio.io/tag) or istio.io/tag=" + name}
	}
	if rev == "" {
		return Status{Tag: true, Cause: CauseNotFound, Detail: "revision tag " + name + " points to no revision: its MutatingWebhookConfiguration has no istio.io/rev label"}
	}
	return s.revisionStatus(rev, true, "revision tag "+name+" points to revision "+rev+", and ")
}

func (s *State) revisionStatus(rev string, tag bool, prefix string) Status {
	st := Status{Revision: rev, Tag: tag}
	services := istiodServices(rev)
	ready := false
	for _, svc := range services {
		ready = ready || s.ready[svc]
	}
	// Not-ready goes first: the EndpointSlices are the cluster's own
	// account of istiod, and the probe failure follows from it.
	if ready {
		if why, ok := s.notAnswering[rev]; ok {
			st.Cause, st.Detail = CauseNotAnswering, prefix+why
		}
		return st
	}
	st.Cause = CauseNotReady
	st.Detail = prefix + "Service " + strings.Join(services, " or ") + " in " + s.namespace +
		" has no ready endpoints (EndpointSlices labelled kubernetes.io/service-name=" + services[0] + ")"
	return st
}

// istiodServices returns the istiod Service names of a revision. Istio's
// chart names it istiod-<revision>, and plain istiod for an install without
// a revision, whose configs are labelled istio.io/rev=default.
func istiodServices(rev string) []string {
	if rev == Default {
		return []string{"istiod", "istiod-" + rev}
	}
	return []string{"istiod-" + rev}
}

// Misordered returns the names of Istio injector configs that sort before
// the router's own config, sorted. The API server calls mutating webhooks
// in name order, so those injectors decide before the router has written
// istio.io/rev, and never see it.
func (s *State) Misordered() []string { return s.misordered }

// OwnConfig is the name of the router's own MutatingWebhookConfiguration.
func (s *State) OwnConfig() string { return s.ownConfig }

// OrderProblem describes a misordered configuration in one sentence, or
// returns "" when the order is right.
func (s *State) OrderProblem() string {
	if len(s.misordered) == 0 {
		return ""
	}
	return "MutatingWebhookConfiguration " + s.ownConfig + " sorts after Istio injector config " +
		strings.Join(s.misordered, ", ") + ": the API server calls webhooks in name order, so " +
		pronoun(len(s.misordered)) + " never see the istio.io/rev label canary-router writes; rename canary-router's configuration so it sorts first"
}

func pronoun(n int) string {
	if n == 1 {
		return "that injector decides before canary-router and will"
	}
	return "those injectors decide before canary-router and will"
}
