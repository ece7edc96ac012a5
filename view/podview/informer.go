package podview

import (
	"context"
	"time"

	"go.uber.org/zap"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var podResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// Run feeds the view from a metadata-only pod informer across all
// namespaces until ctx ends. Metadata is all the view reads (labels,
// annotations, owners, deletion), and the trim transform keeps only that,
// so the cache costs a few short strings per pod rather than whole pods.
// All namespaces, because which namespaces are managed is a label the
// router would otherwise have to watch too, and a pod's trimmed form is
// cheap.
func (v *View) Run(ctx context.Context, client metadata.Interface) {
	inf := metadatainformer.NewFilteredMetadataInformer(client, podResource, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	_ = inf.SetTransform(v.trim.trim)
	// The registration's HasSynced also waits until the handlers have seen
	// every object of the first list, which the informer's own does not.
	reg, err := inf.AddEventHandler(v)
	if err != nil {
		v.o.Log.Error("pod view: cannot register the informer handler; per-pod routing uses draws", zap.Error(err))
		return
	}
	synced := reg.HasSynced
	v.hasSynced.Store(&synced)
	v.setStore(inf.GetStore())
	count := func() int { return len(inf.GetStore().ListKeys()) }
	go v.sweepEvery(ctx, max(v.o.TTL/sweepsPerTTL, v.bucket))
	go v.logSynced(ctx, synced, count)
	inf.RunWithContext(ctx)
}

// logSynced logs once the first list of pods is in, with how long it took
// and how many pods it held: the figure that grows with the cluster.
func (v *View) logSynced(ctx context.Context, synced func() bool, count func() int) {
	if cache.WaitForCacheSync(ctx.Done(), synced) {
		v.o.Log.Info("pod view synced", zap.Int("pods", count()), zap.Duration("took", v.o.Now().Sub(v.started)))
	}
}

// sweepsPerTTL: a unit whose reservations expired still counts against
// Options.MaxReservingUnits until the sweep or a placement touches it, so
// the sweep runs a few times per TTL rather than once.
const sweepsPerTTL = 3

// sweepEvery drops expired reservations of units nobody touches any more,
// so the map does not keep one entry per ReplicaSet that ever existed.
func (v *View) sweepEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.sweep()
		}
	}
}
