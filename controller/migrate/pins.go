package migrate

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
)

// PinState says why an owner's pin (istio.io/rev in the pod template, no
// router decision) needs the operator. The migration never moves pinned
// workloads, so the plan, status and uninstall name them instead; all
// three classify with ClassifyPin.
type PinState string

// States of a stale pin.
const (
	// PinMissing: no Istio revision or tag has the pinned name. The router
	// refuses the workload's new pods in a managed namespace; elsewhere
	// they run without a sidecar.
	PinMissing PinState = "missing"
	// PinRetiring: a live revision the policy no longer routes to. Its
	// pods run, but nothing moves them off it, and they break when it is
	// removed.
	PinRetiring PinState = "retiring"
)

// ClassifyPin classifies a pin to name: PinMissing, PinRetiring, or ""
// when it needs nothing (a target, or the revision a target tag points
// to). st nil (Istio's configurations not readable) classifies nothing;
// targets nil (no valid policy) never gives PinRetiring. A revision counts
// whether or not its istiod is ready: an outage is not a stale pin.
func ClassifyPin(st *istio.State, name string, targets []string) PinState {
	if st == nil {
		return ""
	}
	live := st.Target(name).Revision
	if live == "" {
		return PinMissing
	}
	if targets == nil {
		return ""
	}
	for _, t := range targets {
		if t == name || t == live || st.Target(t).Revision == live {
			return ""
		}
	}
	return PinRetiring
}

// OwnerPin returns the revision a pod's owner pinned it to: its
// istio.io/rev label when the router did not write it (no decision
// annotation) and the pod does not opt out of injection (such a pin asks
// for nothing).
func OwnerPin(labels, annotations map[string]string) (string, bool) {
	rev, ok := labels[policy.LabelIstioRev]
	if !ok {
		return "", false
	}
	if _, decided := annotations[policy.AnnotationDecision]; decided {
		return "", false
	}
	if labels[policy.LabelSidecarInject] == "false" || annotations[policy.LabelSidecarInject] == "false" {
		return "", false
	}
	return rev, true
}

// PinKey is one unit's pin: its pods carry istio.io/rev=Revision set by
// their owner.
type PinKey struct {
	Unit     Ref
	Revision string
}

// PinOf reads a live pod's pin; ok is false for a pod being deleted, one
// without an owner's pin, or one with no unit. The leader's pod cache
// keeps no pins (its records stay as small as they were): the CLI and
// status count them while they list pods.
func PinOf(m metav1.Object) (PinKey, bool) {
	rev, pinned := OwnerPin(m.GetLabels(), m.GetAnnotations())
	if !pinned {
		return PinKey{}, false
	}
	rec, ok := RecordOf(m)
	if !ok {
		return PinKey{}, false
	}
	return PinKey{Unit: rec.Unit, Revision: rev}, true
}

// StalePin is a workload pinned to a revision that is not live or is
// being retired.
type StalePin struct {
	Namespace string `json:"namespace"`
	// Workload is Kind/name (a Deployment's, not its ReplicaSet's).
	Workload string `json:"workload"`
	Revision string `json:"revision"`
	// State is missing or retiring.
	State PinState `json:"state"`
	Pods  int      `json:"pods"`
}

// StalePins lists the pins ClassifyPin flags, ordered by state, namespace,
// workload and revision. A pin in a namespace for which labelled is true
// (it carries an Istio label) is left out: the namespace label wins over
// the pod's, and status reports it as a pin override.
func StalePins(pins map[PinKey]int, st *istio.State, targets []string, labelled func(namespace string) bool) []StalePin {
	out := []StalePin{}
	for k, n := range pins {
		if labelled(k.Unit.Namespace) {
			continue
		}
		state := ClassifyPin(st, k.Revision, targets)
		if state == "" {
			continue
		}
		out = append(out, StalePin{Namespace: k.Unit.Namespace, Workload: k.Unit.Kind + "/" + k.Unit.Name,
			Revision: k.Revision, State: state, Pods: n})
	}
	slices.SortFunc(out, func(a, b StalePin) int {
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload),
			cmp.Compare(a.Revision, b.Revision))
	})
	return out
}

// IstioLabelled reports whether a namespace's labels choose a revision
// themselves (istio.io/rev or istio-injection, whatever the value).
func IstioLabelled(labels map[string]string) bool {
	_, rev := labels[policy.LabelIstioRev]
	_, inj := labels[policy.LabelIstioInjection]
	return rev || inj
}
