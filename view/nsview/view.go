// Package nsview is the router's metadata-only view of namespaces: their
// labels, which Istio's injector selectors read, and the router's decision
// annotation. The pod webhook reads it for the injection check, through
// Selected (never a label its namespaceSelector rules out), and the
// namespace reconciler lists and watches it.
package nsview

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
)

var namespaceResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// errNotSynced is the readiness error before the first list.
var errNotSynced = errors.New("waiting for the first list of namespaces")

// Namespace is what the view keeps of one namespace.
type Namespace struct {
	Name   string
	Labels map[string]string
	// Annotations holds only the router's decision and failover-from
	// annotations, if any.
	Annotations map[string]string
	// Deleting: the namespace is terminating; nothing should be written.
	Deleting bool
	// ResourceVersion is the version read, for conditional writes.
	ResourceVersion string
}

// View watches namespaces, metadata only. Build it with New.
type View struct {
	inf cache.SharedIndexInformer
}

// New returns a View of the cluster's namespaces; Run starts it.
func New(client metadata.Interface) *View {
	inf := metadatainformer.NewFilteredMetadataInformer(client, namespaceResource, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	_ = inf.SetTransform(trim)
	return &View{inf: inf}
}

// OnChange registers fn, called with a namespace's name whenever it is
// added, changed or deleted (and for each namespace of the first list).
// Register before Run.
func (v *View) OnChange(fn func(name string)) {
	name := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			fn(m.GetName())
		}
	}
	_, _ = v.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    name,
		UpdateFunc: func(_, obj any) { name(obj) },
		DeleteFunc: name,
	})
}

// Run watches until ctx ends.
func (v *View) Run(ctx context.Context) { v.inf.RunWithContext(ctx) }

// HasSynced reports whether the first list is in.
func (v *View) HasSynced() bool { return v.inf.HasSynced() }

// Ready is a readiness check: it fails until the first list is in.
func (v *View) Ready() error {
	if !v.inf.HasSynced() {
		return errNotSynced
	}
	return nil
}

// Get returns one namespace.
func (v *View) Get(name string) (Namespace, bool) {
	obj, ok, err := v.inf.GetStore().GetByKey(name)
	if err != nil || !ok {
		return Namespace{}, false
	}
	return namespaceOf(obj)
}

// List returns every namespace in the view.
func (v *View) List() []Namespace {
	objs := v.inf.GetStore().List()
	out := make([]Namespace, 0, len(objs))
	for _, obj := range objs {
		if ns, ok := namespaceOf(obj); ok {
			out = append(out, ns)
		}
	}
	return out
}

func namespaceOf(obj any) (Namespace, bool) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return Namespace{}, false
	}
	return Namespace{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations, Deleting: m.DeletionTimestamp != nil,
		ResourceVersion: m.ResourceVersion}, true
}

// trim keeps a namespace's name, labels, deletion mark and the router's
// decision and failover-from annotations: every label, because an
// injector's selector may name any of them.
func trim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, ResourceVersion: m.ResourceVersion, Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp,
	}}
	for _, k := range []string{policy.AnnotationDecision, policy.AnnotationFailoverFrom} {
		if v, ok := m.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out, nil
}
