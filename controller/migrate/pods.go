package migrate

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

// PodRecord is what the migration keeps of a pod: its unit and the
// revision that injected it. A few dozen bytes, so 100,000 pods cost a few
// MB on the leader.
type PodRecord struct {
	Unit     Ref
	Injected string
}

// Aggregate counts pods per unit and injected revision: the Input's Pods.
func Aggregate(pods []PodRecord) map[Ref]PodCounts {
	out := make(map[Ref]PodCounts, len(pods)/4+1)
	for _, p := range pods {
		c := out[p.Unit]
		if c == nil {
			c = PodCounts{}
			out[p.Unit] = c
		}
		c[p.Injected]++
	}
	return out
}

// RecordOf reads a pod's record from its metadata; ok is false for a pod
// being deleted (it is on its way out and must not hold a batch back) or
// one with no unit.
func RecordOf(m metav1.Object) (PodRecord, bool) {
	if m.GetDeletionTimestamp() != nil {
		return PodRecord{}, false
	}
	s := policy.PodSubject{Namespace: m.GetNamespace(), Name: m.GetName(), Labels: m.GetLabels()}
	for _, o := range m.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			s.Owner = &policy.Owner{Kind: o.Kind, Name: o.Name}
			break
		}
	}
	kind, name, ok := policy.WorkloadOf(s)
	if !ok {
		return PodRecord{}, false
	}
	return PodRecord{Unit: Ref{Namespace: m.GetNamespace(), Kind: kind, Name: name},
		Injected: injectedRevision(m.GetLabels(), m.GetAnnotations())}, true
}

// injectedRevision reads which revision injected a pod as Istio records
// it (the same rule as view/podview): annotation istio.io/rev, else the
// revision in sidecar.istio.io/status, else the pod label; no status
// annotation means no sidecar.
func injectedRevision(labels, annotations map[string]string) string {
	status, ok := annotations["sidecar.istio.io/status"]
	if !ok {
		return ""
	}
	if rev := annotations[policy.LabelIstioRev]; rev != "" {
		return rev
	}
	var s struct {
		Revision string `json:"revision"`
	}
	if json.Unmarshal([]byte(status), &s) == nil && s.Revision != "" {
		return s.Revision
	}
	return labels[policy.LabelIstioRev]
}

// slimPod is the informer's cached pod: the store key and the record.
type slimPod struct {
	namespace, name, resourceVersion string
	rec                              PodRecord
	ok                               bool
}

func (p *slimPod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (p *slimPod) DeepCopyObject() runtime.Object   { c := *p; return &c }
func (p *slimPod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: p.namespace, Name: p.name, ResourceVersion: p.resourceVersion}
}

// PodInformer watches pod metadata and keeps only PodRecords.
type PodInformer struct{ inf cache.SharedIndexInformer }

// NewPodInformer returns a metadata-only pod informer; Run starts it.
func NewPodInformer(client metadata.Interface) *PodInformer {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	inf := metadatainformer.NewFilteredMetadataInformer(client, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	_ = inf.SetTransform(func(obj any) (any, error) {
		m, ok := obj.(metav1.Object)
		if !ok {
			return obj, nil
		}
		rec, counted := RecordOf(m)
		return &slimPod{namespace: m.GetNamespace(), name: m.GetName(), resourceVersion: m.GetResourceVersion(), rec: rec, ok: counted}, nil
	})
	return &PodInformer{inf: inf}
}

// Informer is the underlying informer, for event handlers.
func (p *PodInformer) Informer() cache.SharedIndexInformer { return p.inf }

// Run runs the informer until ctx ends.
func (p *PodInformer) Run(ctx context.Context) { p.inf.RunWithContext(ctx) }

// Counts aggregates the cached pods per unit.
func (p *PodInformer) Counts() map[Ref]PodCounts {
	items := p.inf.GetStore().List()
	recs := make([]PodRecord, 0, len(items))
	for _, it := range items {
		if s, ok := it.(*slimPod); ok && s.ok {
			recs = append(recs, s.rec)
		}
	}
	return Aggregate(recs)
}

// HasSynced reports the informer's first full list.
func (p *PodInformer) HasSynced() bool { return p.inf.HasSynced() }

// ViewPods is the leader's PodSource: the replica's own pod view, which
// every replica runs for admission, so the leader watches pods once, not
// twice. The view's records hold what PodRecord does (unit and injected
// revision, pods being deleted left out).
type ViewPods struct{ View *podview.View }

// HasSynced reports the view's first full list.
func (p ViewPods) HasSynced() bool { return p.View.Synced() }

// Counts returns the view's units; nil before the first list.
func (p ViewPods) Counts() map[Ref]PodCounts {
	units, ok := p.View.Units()
	if !ok {
		return nil
	}
	out := make(map[Ref]PodCounts, len(units))
	for k, c := range units {
		out[Ref{Namespace: k.Namespace, Kind: k.Kind, Name: k.Name}] = c
	}
	return out
}
