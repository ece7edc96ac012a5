package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/progress"
)

// Namespace labels status groups namespaces by (README.md, "Policy reference").
const (
	labelIstioRev       = "istio.io/rev"
	labelIstioInjection = "istio-injection"
)

// StatusReport is what status prints; -o json|yaml writes it as it is.
type StatusReport struct {
	Policy statusPolicy `json:"policy"`
	progress.Summary
	// Mismatches lists pods the router routed to one revision and that
	// were injected by another (or not injected), by pair: should be empty.
	Mismatches []statusMismatch `json:"mismatches"`
	// PinOverrides lists pods their owners pinned to one revision and
	// that Istio injected otherwise (a namespace label wins), by pair.
	PinOverrides []statusMismatch `json:"pinOverrides"`
	Namespaces   statusNamespaces `json:"namespaces"`
	// StalePins lists workloads whose owners pinned them to a revision
	// that is not live (their new pods are refused, or run without a
	// sidecar outside managed namespaces) or is being retired (outside
	// the policy's targets).
	StalePins []migrate.StalePin `json:"stalePins"`
	// Rollout is the self-driving rollout whose weights are the targets
	// above, nil when the policy's own weights are in force.
	Rollout *statusRollout `json:"rollout,omitempty"`
	// Warnings name what could not be read, and what follows from it.
	Warnings []string `json:"warnings,omitempty"`
}

// statusRollout is the rollout's step (from 1), phase and reason; the
// details are in `canary-router rollout status`.
type statusRollout struct {
	Step   int    `json:"step"`
	Phase  string `json:"phase"`
	Reason string `json:"reason,omitempty"`
}

type statusPolicy struct {
	// ConfigMap is namespace/name.
	ConfigMap   string `json:"configMap"`
	Valid       bool   `json:"valid"`
	Granularity string `json:"granularity,omitempty"`
	// Error says why the policy could not be read or is invalid. The
	// router keeps the last valid policy it applied in that case.
	Error string `json:"error,omitempty"`
	// Gateways says where gateway pods go.
	Gateways *statusGateways `json:"gateways,omitempty"`
}

// statusGateways is the gateway placement: routed like any pod, or kept
// on one revision (gateways: exclude).
type statusGateways struct {
	// Mode is the policy's gateways: exclude or route.
	Mode string `json:"mode"`
	// Revision is where excluded gateway pods are injected, "" when
	// routed or when nothing is available.
	Revision string `json:"revision,omitempty"`
	// Why says who chose it.
	Why string `json:"why,omitempty"`
	// Live is false when Istio has no revision or tag of that name (every
	// gateway pod would be refused); absent when the configs could not be
	// read.
	Live *bool `json:"live,omitempty"`
}

type statusMismatch struct {
	Routed string `json:"routedRevision"`
	// Injected is "" for a pod that was not injected at all.
	Injected string `json:"injectedRevision"`
	Pods     int    `json:"pods"`
}

type statusNamespaces struct {
	// ByRevision lists the namespaces labelled istio.io/rev, by value:
	// routed whole (namespace granularity) or pinned.
	ByRevision map[string][]string `json:"byRevision"`
	// Managed lists the namespaces labelled
	// canary-router.io/injection=enabled, routed workload by workload or
	// pod by pod.
	Managed []string `json:"managed"`
	// IstioInjection lists the namespaces still labelled
	// istio-injection=enabled: Istio's default revision injects them.
	IstioInjection []string `json:"istioInjection"`
}

// BuildStatus turns what was read into the report. It is pure.
func BuildStatus(s *ClusterSnapshot) StatusReport {
	r := StatusReport{
		Policy:       statusPolicy{ConfigMap: s.PolicyRef},
		Mismatches:   []statusMismatch{},
		PinOverrides: []statusMismatch{},
		Namespaces:   statusNamespaces{ByRevision: map[string][]string{}, Managed: []string{}, IstioInjection: []string{}},
	}
	in := progress.Input{Namespaces: map[string]int{}, Pods: s.Pods}
	var targets []string
	if s.PolicyErr != nil {
		r.Policy.Error = s.PolicyErr.Error()
		r.Warnings = append(r.Warnings, ReadProblem("read the policy ConfigMap "+s.PolicyRef, s.PolicyErr))
	} else if p, err := policy.Parse(s.PolicyDoc); err != nil {
		r.Policy.Error = err.Error()
		r.Warnings = append(r.Warnings, "the policy in ConfigMap "+s.PolicyRef+" is invalid; the router keeps the last valid policy it applied: "+err.Error())
	} else {
		r.Policy.Valid, r.Policy.Granularity = true, string(p.Granularity)
		r.Policy.Gateways = gatewayStatus(p, s)
		if s.OverlayErr != nil && p.Rollout != nil {
			// Silently showing the policy's own weights mid-rollout would
			// contradict the router's metrics and dashboard.
			r.Warnings = append(r.Warnings, ReadProblem("read the status object "+migrate.StatusConfigMap, s.OverlayErr)+
				"; the target shares are the policy's own, not the self-driving rollout's weights in force")
		}
		if q, ok := s.Overlay.Apply(p); ok {
			p = q
			r.Rollout = &statusRollout{Step: s.Overlay.Step + 1, Phase: s.Overlay.Phase, Reason: s.Overlay.Reason}
		}
		for _, t := range p.Targets {
			in.Targets = append(in.Targets, progress.Target{Revision: t.Revision, Share: t.Weight / 100})
			targets = append(targets, t.Revision)
		}
	}
	if s.ConfigsErr != nil {
		r.Warnings = append(r.Warnings, ReadProblem("list MutatingWebhookConfigurations", s.ConfigsErr)+
			"; revision tags are not resolved, so a pod routed to a tag counts as mismatched")
	} else {
		st := istio.NewState(s.Configs, nil, "", "")
		in.Resolve = func(name string) string { return st.Target(name).Revision }
		if g := r.Policy.Gateways; g != nil && g.Revision != "" {
			live := st.Target(g.Revision).Cause != istio.CauseNotFound
			g.Live = &live
			if !live {
				r.Warnings = append(r.Warnings, fmt.Sprintf("gateway pods are kept on %s (%s), but no Istio revision or tag has that name: every gateway pod is refused until one does (an ingress outage)", g.Revision, g.Why))
			}
		}
	}
	if s.NamespacesErr != nil {
		r.Warnings = append(r.Warnings, ReadProblem("list namespaces", s.NamespacesErr))
	}
	for _, ns := range s.Namespaces {
		// istio-injection wins over istio.io/rev on a namespace, so a
		// namespace carrying both is listed under istio-injection only.
		if rev, ok := ns.Labels[labelIstioRev]; ok && ns.Labels[labelIstioInjection] != "enabled" {
			r.Namespaces.ByRevision[rev] = append(r.Namespaces.ByRevision[rev], ns.Name)
			in.Namespaces[rev]++
		}
		if ns.Labels[policy.LabelOptIn] == "enabled" {
			r.Namespaces.Managed = append(r.Namespaces.Managed, ns.Name)
		}
		if ns.Labels[labelIstioInjection] == "enabled" {
			r.Namespaces.IstioInjection = append(r.Namespaces.IstioInjection, ns.Name)
		}
	}
	for _, names := range r.Namespaces.ByRevision {
		slices.Sort(names)
	}
	slices.Sort(r.Namespaces.Managed)
	slices.Sort(r.Namespaces.IstioInjection)
	r.Summary = progress.Summarize(in)
	for _, c := range s.Pods {
		m := statusMismatch{Routed: c.Routed, Injected: c.Injected, Pods: c.Pods}
		switch {
		case progress.RouterMismatch(c, in.Resolve):
			r.Mismatches = append(r.Mismatches, m)
		case progress.OverriddenPin(c, in.Resolve):
			r.PinOverrides = append(r.PinOverrides, m)
		}
	}
	byPods := func(a, b statusMismatch) int {
		return cmp.Or(cmp.Compare(b.Pods, a.Pods), cmp.Compare(a.Routed, b.Routed), cmp.Compare(a.Injected, b.Injected))
	}
	slices.SortFunc(r.Mismatches, byPods)
	slices.SortFunc(r.PinOverrides, byPods)
	r.StalePins = stalePins(s.Pins, s.Configs, targets, s.Namespaces)
	return r
}

// gatewayStatus places gateway pods as the router does
// (Policy.GatewayPlacement), with the default revision live when Istio
// has a revision or tag of that name (status reads no istiod health).
func gatewayStatus(p *policy.Policy, s *ClusterSnapshot) *statusGateways {
	g := &statusGateways{Mode: string(p.Gateways)}
	if p.Gateways == policy.GatewaysRoute {
		g.Why = "routed like any other pod"
		return g
	}
	defaultLive := false
	if s.ConfigsErr == nil {
		defaultLive = istio.NewState(s.Configs, nil, "", "").Target(policy.DefaultRevision).Cause != istio.CauseNotFound
	}
	rev, chosen := p.GatewayPlacement(defaultLive, nil)
	g.Revision = rev
	switch {
	case !chosen:
		g.Why = "the policy's gatewayRevision"
	case rev == policy.DefaultRevision:
		g.Why = "Istio's default revision, where its gateway charts put them"
	default:
		g.Why = "no gatewayRevision and no default revision: the first target"
	}
	return g
}

// writeStatusJSON writes the report for scripts, as -o json does.
func writeStatusJSON(w io.Writer, r StatusReport) error {
	return cmdutil.WriteDocument(w, cmdutil.OutputJSON, r)
}

// statusBarWidth is the width of the progress bars, in cells.
const statusBarWidth = 20

// maxListedNamespaces bounds the names printed per namespace group; -o
// json lists them all.
const maxListedNamespaces = 6

// WriteStatusText writes the report for people.
func WriteStatusText(w io.Writer, r StatusReport) {
	if r.Policy.Valid {
		fmt.Fprintf(w, "policy %s: granularity %s\n", r.Policy.ConfigMap, r.Policy.Granularity)
		if g := r.Policy.Gateways; g != nil {
			if g.Revision == "" {
				fmt.Fprintf(w, "gateways: %s (%s)\n", g.Mode, g.Why)
			} else {
				fmt.Fprintf(w, "gateways: %s, kept on %s (%s)\n", g.Mode, g.Revision, g.Why)
			}
		}
		if ro := r.Rollout; ro != nil {
			fmt.Fprintf(w, "rollout: step %d, %s; targets are the weights in force (canary-router rollout status)\n", ro.Step, ro.Phase)
			if ro.Reason != "" {
				fmt.Fprintf(w, "  reason: %s\n", ro.Reason)
			}
		}
	} else {
		fmt.Fprintf(w, "policy %s: not usable: %s\n", r.Policy.ConfigMap, r.Policy.Error)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTARGET\tOBSERVED\tROUTED\tINJECTED\tMISMATCHED\tNAMESPACES\tPROGRESS (# observed, | target)")
	byNamespace := r.Policy.Granularity == string(policy.GranularityNamespace)
	for _, rev := range r.Revisions {
		name, target, injected := rev.Name, "-", fmt.Sprint(rev.InjectedPods)
		if rev.TagOf != "" {
			name += " -> " + rev.TagOf
			// A tag injects nothing itself: Istio records the revision.
			injected = "-"
		}
		share, observed := rev.ObservedShare, "-"
		if byNamespace {
			share = rev.NamespaceShare
		}
		if (byNamespace && len(r.Namespaces.ByRevision) > 0) || (!byNamespace && r.RoutedPods > 0) {
			observed = percent(share)
		}
		progress := progressBar(share, -1, statusBarWidth)
		if rev.InPolicy {
			target = percent(rev.TargetShare)
			progress = progressBar(share, rev.TargetShare, statusBarWidth)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", name, target, observed, rev.RoutedPods, injected, rev.MismatchedPods, rev.Namespaces, progress)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\npods: %d routed (pod label istio.io/rev), %d injected, %d mismatched, %d injected without a pod label (namespace label or default revision), %d pinned by their owners but injected otherwise\n",
		r.RoutedPods, r.InjectedPods, r.MismatchedPods, r.UnroutedInjectedPods, r.OverriddenPins)
	if byNamespace {
		fmt.Fprintln(w, "granularity namespace: OBSERVED is the share of namespaces labelled istio.io/rev (pods carry no routing label)")
	}
	for _, m := range r.Mismatches {
		injected := "not injected"
		if m.Injected != "" {
			injected = "injected by " + m.Injected
		}
		fmt.Fprintf(w, "mismatch: %d %s routed to %s but %s\n", m.Pods, plural(m.Pods, "pod", "pods"), m.Routed, injected)
	}
	for _, m := range r.PinOverrides {
		injected := "not injected"
		if m.Injected != "" {
			injected = "injected by " + m.Injected
		}
		fmt.Fprintf(w, "pin overridden: %d %s pinned to %s by their owners but %s (a namespace label wins over a pod label)\n",
			m.Pods, plural(m.Pods, "pod", "pods"), m.Routed, injected)
	}
	for _, p := range r.StalePins {
		what := "no live Istio revision or tag has that name: new pods are refused in managed namespaces, and run without a sidecar elsewhere"
		if p.State == migrate.PinRetiring {
			what = "a live revision outside the policy's targets: nothing moves these pods, and they break when it is removed"
		}
		fmt.Fprintf(w, "pinned to %s revision: %s/%s (%d %s) istio.io/rev=%s: %s\n",
			p.State, p.Namespace, p.Workload, p.Pods, plural(p.Pods, "pod", "pods"), p.Revision, what)
	}
	fmt.Fprintln(w, "\nnamespaces:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s=enabled (routed by canary-router)\t%d\t%s\n", policy.LabelOptIn, len(r.Namespaces.Managed), listNames(r.Namespaces.Managed))
	revs := make([]string, 0, len(r.Namespaces.ByRevision))
	for rev := range r.Namespaces.ByRevision {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	for _, rev := range revs {
		names := r.Namespaces.ByRevision[rev]
		fmt.Fprintf(tw, "  %s=%s\t%d\t%s\n", labelIstioRev, rev, len(names), listNames(names))
	}
	fmt.Fprintf(tw, "  %s=enabled (Istio's default revision)\t%d\t%s\n", labelIstioInjection, len(r.Namespaces.IstioInjection), listNames(r.Namespaces.IstioInjection))
	_ = tw.Flush()
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warn)
	}
}

// progressBar renders an observed share (0-1) as a bar of width cells,
// with a | on the cell where the target share ends; target < 0 draws no
// marker. A target of 1 has no cell after it: the full bar is the goal.
func progressBar(observed, target float64, width int) string {
	b := []byte(cmdutil.Bar(observed, width))
	if target >= 0 {
		if i := int(target*float64(width) + 0.5); i < width {
			b[1+i] = '|'
		}
	}
	return string(b)
}

func percent(share float64) string { return fmt.Sprintf("%.1f%%", share*100) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listNames joins up to maxListedNamespaces names; "-" for none.
func listNames(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	if len(names) <= maxListedNamespaces {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListedNamespaces], ", ") + fmt.Sprintf(", and %d more", len(names)-maxListedNamespaces)
}
