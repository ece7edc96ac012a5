package uninstall

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

// Namespace is what uninstall reads of one namespace the router
// manages (label canary-router.io/injection=enabled) or routed (namespace
// granularity: istio.io/rev with the router's decision annotation).
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Pods are its live pods by routed (pod label) and injected revision,
	// counted by the router's own pod view code.
	Pods []podview.RevisionCount
}

// Input is everything the plan is computed from.
type Input struct {
	State      *istio.State
	Namespaces []Namespace
	// Policy is the policy in force, nil when it could not be read.
	Policy *policy.Policy
	// Revision is --revision: the revision or tag every namespace without
	// an Istio label gets, instead of the computed choice.
	Revision string
}

// namespaceStep is what uninstall does to one namespace.
type namespaceStep struct {
	Namespace string
	// Label and Value are the Istio label the namespace carries afterwards.
	Label, Value string
	// SetLabel: Value is written (otherwise the namespace already has it).
	SetLabel bool
	// RemoveOptIn: drop canary-router.io/injection and the decision
	// annotation.
	RemoveOptIn bool
	Why         string
	Notes       []string
	// Problem: no live revision fits; nothing may be written, and the
	// router must not be removed while this namespace depends on it.
	Problem string
}

// changes reports whether the step writes to the namespace.
func (s namespaceStep) changes() bool { return s.Problem == "" && (s.SetLabel || s.RemoveOptIn) }

// planNamespaces decides, for every namespace the router manages, the
// Istio label that keeps its pods on a live revision once the router is
// gone. A namespace label is the only choice: without the router, a pod
// in a namespace with no Istio label matches no injector (unless it names
// a revision itself) and runs without a sidecar.
func planNamespaces(in Input) []namespaceStep {
	var out []namespaceStep
	for _, ns := range in.Namespaces {
		out = append(out, planNamespace(in, ns))
	}
	slices.SortFunc(out, func(a, b namespaceStep) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return out
}

func planNamespace(in Input, ns Namespace) namespaceStep {
	s := planNamespaceLabel(in, ns)
	s.Notes = append(s.Notes, stalePinNotes(in, ns)...)
	return s
}

func planNamespaceLabel(in Input, ns Namespace) namespaceStep {
	s := namespaceStep{Namespace: ns.Name, RemoveOptIn: ns.Labels[policy.LabelOptIn] == policy.OptInEnabled}
	if v, ok := ns.Labels[policy.LabelIstioInjection]; ok {
		// Istio's label wins over istio.io/rev; the router never routed
		// this namespace's pods, and removing the router changes nothing.
		s.Label, s.Value, s.Why = policy.LabelIstioInjection, v, "already on the namespace; Istio's label wins"
		return s
	}
	if rev, ok := ns.Labels[policy.LabelIstioRev]; ok && rev != "" {
		st := in.State.Target(rev)
		if st.Cause != istio.CauseNotFound {
			s.Label, s.Value, s.Why = policy.LabelIstioRev, rev, "already on the namespace"
			if !st.Available() {
				s.Notes = append(s.Notes, st.Detail+": new pods are refused by Istio until it is ready")
			}
			return s
		}
		s.Notes = append(s.Notes, "istio.io/rev="+rev+" names no live revision or tag: replaced")
	}
	target, why := chooseNamespaceRevision(in, ns)
	if target == "" {
		s.Problem = "no available Istio revision for namespace " + ns.Name + " (" + why + "): pass --revision NAME"
		return s
	}
	s.Label, s.Value, s.SetLabel, s.Why = policy.LabelIstioRev, target, true, why
	if moved := podsElsewhere(ns.Pods, in.State.Target(target).Revision); moved != "" {
		s.Notes = append(s.Notes, moved+" move to "+target+" when restarted")
	}
	return s
}

// chooseNamespaceRevision picks the revision for a namespace without an
// Istio label: --revision; else the revision most of its live pods are
// injected by; else the policy's heaviest target; else Istio's default;
// else the only revision. Each must be available (known, istiod ready):
// an unknown value would unmesh the namespace, and a revision without a
// ready istiod would refuse its pods. It returns "" and the reasons when
// nothing fits.
func chooseNamespaceRevision(in Input, ns Namespace) (target, why string) {
	if in.Revision != "" {
		return in.Revision, "--revision"
	}
	var skipped []string
	try := func(name string) bool {
		if name == "" {
			return false
		}
		if st := in.State.Target(name); !st.Available() {
			skipped = append(skipped, name+": "+st.Detail)
			return false
		}
		target = name
		return true
	}
	rev, n, total := majorityRevision(ns.Pods)
	if try(rev) {
		return target, fmt.Sprintf("%d of %d injected pods run on it", n, total)
	}
	if in.Policy != nil {
		targets := slices.Clone(in.Policy.Targets)
		slices.SortStableFunc(targets, func(a, b policy.Target) int { return cmp.Compare(b.Weight, a.Weight) })
		for _, t := range targets {
			if t.Weight > 0 && try(t.Revision) {
				return target, fmt.Sprintf("the policy's heaviest available target (weight %g)", t.Weight)
			}
		}
	}
	if _, ok := in.State.Tags()[istio.Default]; ok || slices.Contains(in.State.Revisions(), istio.Default) {
		if try(istio.Default) {
			return target, "Istio's default revision"
		}
	}
	if revs := in.State.Revisions(); len(revs) == 1 && try(revs[0]) {
		return target, "the only Istio revision"
	}
	if len(skipped) == 0 {
		return "", "no injected pods, no policy target and no default or single revision"
	}
	return "", strings.Join(skipped, "; ")
}

// majorityRevision returns the revision that injected most live pods (ties
// to the first name), with its count and the injected total.
func majorityRevision(pods []podview.RevisionCount) (rev string, n, total int) {
	by := injectedCounts(pods)
	for _, r := range slices.Sorted(maps.Keys(by)) {
		total += by[r]
		if by[r] > n {
			rev, n = r, by[r]
		}
	}
	return rev, n, total
}

func injectedCounts(pods []podview.RevisionCount) map[string]int {
	by := map[string]int{}
	for _, p := range pods {
		if p.Injected != "" {
			by[p.Injected] += p.Pods
		}
	}
	return by
}

// podsElsewhere describes the live pods injected by a revision other than
// rev (a real revision), or "" when there are none.
func podsElsewhere(pods []podview.RevisionCount, rev string) string {
	by := injectedCounts(pods)
	var parts []string
	n := 0
	for _, r := range slices.Sorted(maps.Keys(by)) {
		if r != rev {
			parts = append(parts, fmt.Sprintf("%s: %d", r, by[r]))
			n += by[r]
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d live pods on other revisions (%s)", n, strings.Join(parts, ", "))
}

// Plan is the -o json|yaml document of canary-router uninstall:
// the plan's steps as data, in the order they run.
type Plan struct {
	// Apply: the plan is carried out (--apply), not only printed.
	Apply      bool                     `json:"apply"`
	Namespaces []uninstallPlanNamespace `json:"namespaces"`
	// Webhooks, Bindings and Others are the router's objects deleted in
	// steps 3, 4 and 6.
	Webhooks []routerObject `json:"webhooks"`
	Bindings []routerObject `json:"bindings"`
	Others   []routerObject `json:"others"`
	// Problems counts namespaces with no live revision to go to; any
	// stops the uninstall before it changes anything.
	Problems int `json:"problems"`
}

// uninstallPlanNamespace is a namespaceStep with stable JSON names.
type uninstallPlanNamespace struct {
	Name        string   `json:"name"`
	Label       string   `json:"label,omitempty"`
	Value       string   `json:"value,omitempty"`
	SetLabel    bool     `json:"setLabel"`
	RemoveOptIn bool     `json:"removeOptIn"`
	Reason      string   `json:"reason,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Problem     string   `json:"problem,omitempty"`
}

func newPlan(c Options, steps []namespaceStep, byPhase [phases][]routerObject) Plan {
	p := Plan{Apply: c.apply, Namespaces: []uninstallPlanNamespace{},
		Webhooks: nonNil(byPhase[phaseWebhooks]), Bindings: nonNil(byPhase[phaseBindings]), Others: nonNil(byPhase[phaseRest])}
	for _, s := range steps {
		if s.Problem != "" {
			p.Problems++
		}
		p.Namespaces = append(p.Namespaces, uninstallPlanNamespace{Name: s.Namespace, Label: s.Label, Value: s.Value,
			SetLabel: s.SetLabel, RemoveOptIn: s.RemoveOptIn, Reason: s.Why, Notes: s.Notes, Problem: s.Problem})
	}
	return p
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// stalePinNotes names the live pods whose owners pinned them to a revision
// that is not live, or that the policy no longer routes to (being
// retired). Once the namespace carries an Istio label the label wins and
// such pods are injected by it; the pin is left in their pod templates,
// where it matters again if the label is removed.
func stalePinNotes(in Input, ns Namespace) []string {
	pinned := map[string]int{}
	for _, c := range ns.Pods {
		if c.Pinned && c.Routed != "" {
			pinned[c.Routed] += c.Pods
		}
	}
	var targets []string
	if in.Policy != nil {
		targets = []string{}
		for _, t := range in.Policy.Targets {
			targets = append(targets, t.Revision)
		}
	}
	var notes []string
	for _, rev := range slices.Sorted(maps.Keys(pinned)) {
		n := pinned[rev]
		switch migrate.ClassifyPin(in.State, rev, targets) {
		case migrate.PinMissing:
			notes = append(notes, fmt.Sprintf("%d live pods pinned by their owners to %s, which no live revision or tag answers to", n, rev))
		case migrate.PinRetiring:
			notes = append(notes, fmt.Sprintf("%d live pods pinned by their owners to %s, a revision the policy no longer routes to", n, rev))
		}
	}
	return notes
}
