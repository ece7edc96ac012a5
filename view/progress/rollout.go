// Package progress summarises a control-plane rollout from live pod counts:
// per revision, the pods routed to it (pod label istio.io/rev), the pods it
// injected (as Istio records it, docs/istio.md), the pods that ran on
// something other than what they were routed to, and the observed share
// next to the policy's target.
//
// It is pure: the router's metrics and the status command feed it what
// they read, so both apply one definition of a mismatch and of the
// observed share, and their figures agree.
package progress

import (
	"cmp"
	"slices"

	"github.com/canary-router/canary-router/view/podview"
)

// Resolver maps a routed revision (a revision or a revision tag) to the
// real revision that should inject it: the revision itself, or the one a
// tag points to. It returns "" when it does not know the name.
type Resolver func(name string) string

// Expected is the revision that should inject a pod routed to routed: the
// resolved revision, or routed itself when resolve is nil or does not know
// it.
func Expected(routed string, resolve Resolver) string {
	if resolve != nil {
		if r := resolve(routed); r != "" {
			return r
		}
	}
	return routed
}

// Mismatched reports whether a pod routed to routed runs with something
// other than what it was routed to: injected by another revision, or not
// injected at all. Injected is always a real revision, so a pod routed to
// a tag is compared with the tag's revision. A pod with no routed revision
// never mismatches: nothing asked for a revision.
func Mismatched(routed, injected string, resolve Resolver) bool {
	return routed != "" && injected != Expected(routed, resolve)
}

// RouterMismatch reports whether c counts pods the router routed that run
// elsewhere (should be 0); OverriddenPin whether it counts pods whose
// owners pinned a revision that Istio overrode (a namespace label wins
// over a pod label), which is the owner's business, not the router's.
func RouterMismatch(c podview.RevisionCount, resolve Resolver) bool {
	return !c.Pinned && Mismatched(c.Routed, c.Injected, resolve)
}

// OverriddenPin: see RouterMismatch.
func OverriddenPin(c podview.RevisionCount, resolve Resolver) bool {
	return c.Pinned && Mismatched(c.Routed, c.Injected, resolve)
}

// Target is one policy target and its share (0-1).
type Target struct {
	Revision string
	Share    float64
}

// Input is what a summary is made of.
type Input struct {
	// Targets are the policy's targets in policy order; empty without a
	// valid policy.
	Targets []Target
	// Pods are live pods by routed and injected revision (podview).
	Pods []podview.RevisionCount
	// Resolve resolves tags; nil compares names as they are.
	Resolve Resolver
	// Namespaces counts namespaces by their istio.io/rev label value.
	Namespaces map[string]int
}

// Revision is one revision's (or tag's) line of a summary.
type Revision struct {
	// Name is the revision or tag as pods and the policy name it.
	Name string `json:"revision"`
	// TagOf is the revision a tag points to; empty for a revision.
	TagOf string `json:"tagOf,omitempty"`
	// InPolicy: the policy in force names it as a target.
	InPolicy bool `json:"inPolicy"`
	// TargetShare is the policy's share (0-1); 0 outside the policy.
	TargetShare float64 `json:"targetShare"`
	// RoutedPods carry istio.io/rev=Name.
	RoutedPods int `json:"routedPods"`
	// InjectedPods were injected by Name (always 0 for a tag: Istio
	// records the real revision).
	InjectedPods int `json:"injectedPods"`
	// MismatchedPods were routed to Name by the router but injected by
	// another revision, or not injected.
	MismatchedPods int `json:"mismatchedPods"`
	// OverriddenPins were pinned to Name by their owners (no router
	// decision) but injected by another revision, or not injected.
	OverriddenPins int `json:"overriddenPins"`
	// ObservedShare is RoutedPods over all routed pods (0-1), the figure
	// to hold against TargetShare.
	ObservedShare float64 `json:"observedShare"`
	// Namespaces counts namespaces labelled istio.io/rev=Name.
	Namespaces int `json:"namespaces"`
	// NamespaceShare is Namespaces over all namespaces labelled
	// istio.io/rev (0-1): the observed share under namespace granularity,
	// where pods carry no routing label.
	NamespaceShare float64 `json:"namespaceShare"`
}

// Summary is a rollout's state.
type Summary struct {
	Revisions []Revision `json:"revisions"`
	// RoutedPods carry any istio.io/rev label.
	RoutedPods int `json:"routedPods"`
	// InjectedPods were injected by any revision.
	InjectedPods int `json:"injectedPods"`
	// MismatchedPods: pods the router routed that run elsewhere (see
	// RouterMismatch); should be 0.
	MismatchedPods int `json:"mismatchedPods"`
	// OverriddenPins: owner-pinned pods that Istio injected otherwise (see
	// OverriddenPin).
	OverriddenPins int `json:"overriddenPins"`
	// UnroutedInjectedPods were injected without a pod label: through
	// their namespace's label (namespace granularity, pinned namespaces)
	// or the default revision.
	UnroutedInjectedPods int `json:"unroutedInjectedPods"`
}

// Summarize builds a summary. Lines come in policy order, then the
// revisions the targets' tags point to, then every other name in
// alphabetical order.
func Summarize(in Input) Summary {
	var s Summary
	lines := map[string]*Revision{}
	var order []string
	line := func(name string) *Revision {
		if r, ok := lines[name]; ok {
			return r
		}
		r := &Revision{Name: name}
		if exp := Expected(name, in.Resolve); exp != name {
			r.TagOf = exp
		}
		lines[name] = r
		order = append(order, name)
		return r
	}
	for _, t := range in.Targets {
		r := line(t.Revision)
		r.InPolicy, r.TargetShare = true, r.TargetShare+t.Share
	}
	for _, t := range in.Targets {
		if r := lines[t.Revision]; r.TagOf != "" {
			line(r.TagOf)
		}
	}
	fixed := len(order)
	for _, c := range in.Pods {
		if c.Routed != "" {
			r := line(c.Routed)
			r.RoutedPods += c.Pods
			s.RoutedPods += c.Pods
			switch {
			case RouterMismatch(c, in.Resolve):
				r.MismatchedPods += c.Pods
				s.MismatchedPods += c.Pods
			case OverriddenPin(c, in.Resolve):
				r.OverriddenPins += c.Pods
				s.OverriddenPins += c.Pods
			}
		}
		if c.Injected != "" {
			line(c.Injected).InjectedPods += c.Pods
			s.InjectedPods += c.Pods
			if c.Routed == "" {
				s.UnroutedInjectedPods += c.Pods
			}
		}
	}
	namespaces := 0
	for name, n := range in.Namespaces {
		if name != "" {
			line(name).Namespaces += n
			namespaces += n
		}
	}
	slices.Sort(order[fixed:])
	for _, name := range order {
		r := lines[name]
		if s.RoutedPods > 0 {
			r.ObservedShare = float64(r.RoutedPods) / float64(s.RoutedPods)
		}
		if namespaces > 0 {
			r.NamespaceShare = float64(r.Namespaces) / float64(namespaces)
		}
		s.Revisions = append(s.Revisions, *r)
	}
	return s
}

// Other is the label value that stands for every revision name beyond a
// cap (see Fold).
const Other = "other"

// Fold bounds the distinct revision names in counts to limit, so a
// cluster full of stray istio.io/rev values cannot blow up a metric's
// cardinality. The names in keep (the policy's targets and their
// revisions) stay first, then the names with the most pods; every other
// name becomes Other, and counts that then coincide are merged. "" (not
// routed, not injected) is never folded. The result is sorted by routed,
// then injected name. Pinned and routed pods of one pair are merged: the
// metric it feeds counts pods by revision, whoever chose it.
func Fold(counts []podview.RevisionCount, keep []string, limit int) []podview.RevisionCount {
	pods := map[string]int{}
	for _, c := range counts {
		pods[c.Routed] += c.Pods
		pods[c.Injected] += c.Pods
	}
	delete(pods, "")
	kept := map[string]bool{"": true}
	for _, k := range keep {
		if len(kept) > limit {
			break
		}
		kept[k] = true
	}
	names := make([]string, 0, len(pods))
	for n := range pods {
		if !kept[n] {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(pods[b], pods[a]), cmp.Compare(a, b))
	})
	for _, n := range names {
		if len(kept) > limit {
			break
		}
		kept[n] = true
	}
	name := func(n string) string {
		if kept[n] {
			return n
		}
		return Other
	}
	type key struct {
		routed, injected string
	}
	merged := map[key]int{}
	for _, c := range counts {
		merged[key{name(c.Routed), name(c.Injected)}] += c.Pods
	}
	out := make([]podview.RevisionCount, 0, len(merged))
	for k, n := range merged {
		out = append(out, podview.RevisionCount{Routed: k.routed, Injected: k.injected, Pods: n})
	}
	slices.SortFunc(out, func(a, b podview.RevisionCount) int {
		return cmp.Or(cmp.Compare(a.Routed, b.Routed), cmp.Compare(a.Injected, b.Injected))
	})
	return out
}
