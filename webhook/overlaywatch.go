package webhook

import (
	"context"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy/inforce"
)

// OverlayWatcher feeds the rollout's weights in force from the router's
// status object into a inforce.Store. Every replica runs one, whoever leads: the
// leader decides the weights, all replicas route by them. It watches that
// one object only (a field selector on its name).
type OverlayWatcher struct {
	store    *inforce.Store
	log      *zap.Logger
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
}

// NewOverlayWatcher returns a watcher of ConfigMap namespace/name (the
// status object, migrate.StatusConfigMap).
func NewOverlayWatcher(client kubernetes.Interface, store *inforce.Store, namespace, name string, log *zap.Logger) *OverlayWatcher {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	w := &OverlayWatcher{store: store, log: log, factory: factory, informer: factory.Core().V1().ConfigMaps().Informer()}
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.apply,
		UpdateFunc: func(_, obj any) { w.apply(obj) },
		// A deleted status object keeps the weights in force: dropping
		// them would route, and migrate, by the policy's own weights (often
		// the old revision at 100) on every replica before the leader has
		// even noticed; the leader stops the rollout as "state lost" and
		// writes them back (controller/rollout).
		DeleteFunc: func(any) {
			if w.store.CurrentOverlay() != nil {
				w.log.Warn("the status object was deleted; routing keeps the rollout's weights in force until the leader writes them again")
			}
		},
	})
	return w
}

// Run watches until ctx ends.
func (w *OverlayWatcher) Run(ctx context.Context) {
	w.factory.Start(ctx.Done())
	<-ctx.Done()
	w.factory.Shutdown()
}

// HasSynced reports whether the first list has been applied.
func (w *OverlayWatcher) HasSynced() bool { return w.informer.HasSynced() }

func (w *OverlayWatcher) apply(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	o := inforce.DecodeOverlay(cm.Data[inforce.OverlayKey])
	if o == nil && cm.Data[inforce.OverlayKey] != "" {
		// Garbled, not removed: keep what routes now, as for a deleted
		// object, rather than act on the damage.
		w.log.Warn("rollout weights in the status object are unreadable; the weights in force stay until the leader rewrites them",
			zap.String("configmap", cm.Namespace+"/"+cm.Name), zap.String("key", inforce.OverlayKey))
		return
	}
	w.store.SetOverlay(o)
}
