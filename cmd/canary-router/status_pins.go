package main

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/webhook/istio"
	"github.com/canary-router/canary-router/webhook/policy"
)

// States of a pin status reports.
const (
	// pinMissing: no live revision or tag has the pinned name. The router
	// refuses the workload's new pods in a managed namespace; elsewhere
	// they run without a sidecar.
	pinMissing = "missing"
	// pinRetiring: a live revision the policy no longer routes to. Its
	// pods run, but nothing moves them off it, and they break when it is
	// removed.
	pinRetiring = "retiring"
)

// pinKey is one workload's pin: its pods carry istio.io/rev=Revision set
// by their owner (no router decision).
type pinKey struct {
	Namespace, Workload, Revision string
}

// pinCounts counts owner-pinned pods by workload and revision while status
// lists pods. Pods that opt out are left out: their pin asks for nothing.
type pinCounts map[pinKey]int

// add counts one pod.
func (c pinCounts) add(m *metav1.PartialObjectMetadata) {
	rev, ok := m.Labels[policy.LabelIstioRev]
	if !ok || m.DeletionTimestamp != nil {
		return
	}
	if _, decided := m.Annotations[policy.AnnotationDecision]; decided {
		return
	}
	if m.Labels[policy.LabelSidecarInject] == "false" || m.Annotations[policy.LabelSidecarInject] == "false" {
		return
	}
	s := policy.PodSubject{Namespace: m.Namespace, Name: m.Name, GenerateName: m.GenerateName, Labels: m.Labels}
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			s.Owner = &policy.Owner{Kind: o.Kind, Name: o.Name}
			break
		}
	}
	workload := "Pod/" + m.Name
	if kind, name, ok := policy.WorkloadOf(s); ok {
		workload = kind + "/" + name
	}
	c[pinKey{Namespace: m.Namespace, Workload: workload, Revision: rev}]++
}

// statusPin is a workload pinned to a revision that is not live or is
// being retired.
type statusPin struct {
	Namespace string `json:"namespace"`
	// Workload is Kind/name (a Deployment's, not its ReplicaSet's).
	Workload string `json:"workload"`
	Revision string `json:"revision"`
	// State is missing or retiring.
	State string `json:"state"`
	Pods  int    `json:"pods"`
}

// stalePins lists the pins that need the operator: to a name no live
// revision or tag has, or to a live revision outside the policy's targets
// (and not what a target tag points to). A pin in a namespace with an
// Istio label is left out: the namespace label wins, and status reports
// it as a pin override. configs nil (not readable) lists nothing;
// targets nil (no valid policy) lists only missing pins.
func stalePins(pins pinCounts, configs []istio.Config, targets []string, namespaces []namespaceLabels) []statusPin {
	out := []statusPin{}
	if configs == nil {
		return out
	}
	st := istio.NewState(configs, nil, "", "")
	kept := map[string]bool{}
	for _, t := range targets {
		kept[t] = true
		if r := st.Target(t).Revision; r != "" {
			kept[r] = true
		}
	}
	labelled := map[string]bool{}
	for _, ns := range namespaces {
		_, rev := ns.Labels[labelIstioRev]
		_, inj := ns.Labels[labelIstioInjection]
		labelled[ns.Name] = rev || inj
	}
	for k, n := range pins {
		if labelled[k.Namespace] {
			continue
		}
		state := ""
		switch live := st.Target(k.Revision).Revision; {
		case live == "":
			state = pinMissing
		case targets != nil && !kept[k.Revision] && !kept[live]:
			state = pinRetiring
		default:
			continue
		}
		out = append(out, statusPin{Namespace: k.Namespace, Workload: k.Workload, Revision: k.Revision, State: state, Pods: n})
	}
	slices.SortFunc(out, func(a, b statusPin) int {
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload),
			cmp.Compare(a.Revision, b.Revision))
	})
	return out
}
