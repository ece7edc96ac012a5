package podview

import (
	"encoding/json"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/policy"
)

// Keys the view reads (docs/istio.md).
const (
	// labelRev is the revision the router (or a user) routed the pod to.
	labelRev = "istio.io/rev"
	// annotationRev is where Istio >= 1.18 records the revision that
	// injected the pod.
	annotationRev = "istio.io/rev"
	// annotationStatus marks an injected pod; its JSON names the revision
	// since Istio 1.11.
	annotationStatus = "sidecar.istio.io/status"
	// annotationDecision is the router's decision annotation: a routed pod
	// without it was pinned by its owner, not routed by the router.
	annotationDecision = "canary-router.io/decision"
)

// Key names a balancing unit: the pods of one controller in one namespace.
// A Deployment's pods are controlled by a ReplicaSet whose name ends with
// the pod-template-hash, so each template (each rollout) is balanced on
// its own and ends at the target split however the old pods were removed.
type Key struct {
	Namespace, Kind, Name string
}

// record is what the view counts of one pod.
type record struct {
	key Key
	// owned: the pod has a controller, so it belongs to a unit.
	owned bool
	// routed is the pod's istio.io/rev label, injected the revision that
	// really injected it ("" when it was not injected).
	routed, injected string
	// live: not being deleted. A terminating pod is on its way out and
	// must not hold back its replacement.
	live bool
	// pinned: the istio.io/rev label was set by the pod's owner, not the
	// router (no decision annotation). Istio may override a pin with the
	// namespace's label; that is not the router's mismatch.
	pinned bool
	// wkind and wcut name the pod's workload (policy.WorkloadOf: a
	// Deployment rather than its ReplicaSet) as a cut of key, so it costs
	// the record no string and no size: kind workloadKinds[wkind] (the
	// owner's own kind when 0), name key.Name without its last wcut
	// bytes. wkind is noWorkload when the unit is not one of those.
	wkind, wcut uint8
}

// workloadKinds are the kinds policy.WorkloadOf names other than the
// owner's own; record.wkind indexes it.
var workloadKinds = [...]string{"", "Deployment", "Rollout", "CronJob"}

// noWorkload is record.wkind for a pod whose workload cannot be written
// as a cut of its owner (never, for the kinds WorkloadOf names today).
const noWorkload = 0xff

// workload returns the pod's workload unit; ok is false for a pod
// without a controller, or one whose unit the record could not keep.
func (r record) workload() (Key, bool) {
	if !r.owned || r.wkind == noWorkload || int(r.wcut) > len(r.key.Name) {
		return Key{}, false
	}
	kind := r.key.Kind
	if r.wkind != 0 {
		kind = workloadKinds[r.wkind]
	}
	return Key{Namespace: r.key.Namespace, Kind: kind, Name: r.key.Name[:len(r.key.Name)-int(r.wcut)]}, true
}

// encodeWorkload sets wkind and wcut from policy.WorkloadOf.
func (r *record) encodeWorkload(labels map[string]string) {
	kind, name, ok := policy.WorkloadOf(policy.PodSubject{Namespace: r.key.Namespace, Labels: labels,
		Owner: &policy.Owner{Kind: r.key.Kind, Name: r.key.Name}})
	r.wkind = noWorkload
	if !ok || !strings.HasPrefix(r.key.Name, name) || len(r.key.Name)-len(name) > 0xfe {
		return
	}
	cut := uint8(len(r.key.Name) - len(name))
	if kind == r.key.Kind {
		r.wkind, r.wcut = 0, cut
		return
	}
	for i, k := range workloadKinds {
		if i > 0 && k == kind {
			r.wkind, r.wcut = uint8(i), cut
			return
		}
	}
}

// counted reports whether the pod counts towards its unit's split.
func (r record) counted() bool { return r.owned && r.live && r.routed != "" }

// recordOf reads a pod's record from its metadata, trimmed or not.
func recordOf(m metav1.Object) record {
	r := record{
		routed:   m.GetLabels()[labelRev],
		injected: injectedRevision(m.GetLabels(), m.GetAnnotations()),
		live:     m.GetDeletionTimestamp() == nil,
	}
	if r.routed != "" {
		_, decided := m.GetAnnotations()[annotationDecision]
		r.pinned = !decided
	}
	for _, o := range m.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			r.key = Key{Namespace: m.GetNamespace(), Kind: o.Kind, Name: o.Name}
			r.owned = o.Kind != "" && o.Name != ""
			break
		}
	}
	if r.owned {
		r.encodeWorkload(m.GetLabels())
	}
	return r
}

// injectedRevision reads which revision injected a pod the way Istio
// records it: annotation istio.io/rev (>= 1.18), else the revision in the
// status annotation (>= 1.11), else the pod label; no status annotation
// means not injected. The recorded value is the real revision, never a tag.
func injectedRevision(labels, annotations map[string]string) string {
	status, ok := annotations[annotationStatus]
	if !ok {
		return ""
	}
	if rev := annotations[annotationRev]; rev != "" {
		return rev
	}
	if status != "" {
		var s struct {
			Revision string `json:"revision"`
		}
		if json.Unmarshal([]byte(status), &s) == nil && s.Revision != "" {
			return s.Revision
		}
	}
	return labels[labelRev]
}

type trimmer struct{ intern interner }

// trim is the informer's transform: it reduces pod metadata (kilobytes
// with managedFields) to a slimPod, sharing one copy of the strings that
// repeat across pods (revision names, controller kinds). Trimming a
// trimmed pod changes nothing.
func (t *trimmer) trim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	r := recordOf(m)
	r.routed = t.intern.get(r.routed)
	r.injected = t.intern.get(r.injected)
	r.key.Kind = t.intern.get(r.key.Kind)
	return &slimPod{namespace: m.Namespace, name: m.Name, resourceVersion: m.ResourceVersion, rec: r}, nil
}

// maxInterned bounds the interner: revision names and controller kinds
// are a handful, but label values are user input.
const maxInterned = 4096

// interner shares one copy of strings that repeat across pods (revision
// names, controller kinds).
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

func (in *interner) get(s string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.m[s]; ok {
		return v
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
