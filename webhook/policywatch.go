package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/canary-router/canary-router/policy/inforce"
)

// PolicyKey is the ConfigMap key that holds the policy document.
const PolicyKey = "policy.yaml"

// Event reasons recorded on the policy ConfigMap.
const (
	EventPolicyApplied  = "PolicyApplied"
	EventPolicyRejected = "PolicyRejected"
)

// maxEventMessage keeps Event messages under the apiserver's 1 KiB limit
// for a note.
const maxEventMessage = 1000

// PolicyWatcher applies the policy ConfigMap to a inforce.Store on every change.
// It watches that one object only (a field selector on its name), so the
// router never lists or caches other ConfigMaps.
type PolicyWatcher struct {
	store     *inforce.Store
	namespace string
	name      string
	recorder  record.EventRecorder
	log       *zap.Logger
	factory   informers.SharedInformerFactory
	informer  cache.SharedIndexInformer
	// seen is set once the first list has been processed: from then on
	// "no policy" means the ConfigMap really is missing or invalid.
	seen atomic.Bool
}

// NewPolicyWatcher returns a watcher of ConfigMap namespace/name.
func NewPolicyWatcher(client kubernetes.Interface, store *inforce.Store, namespace, name string, recorder record.EventRecorder, log *zap.Logger) *PolicyWatcher {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	w := &PolicyWatcher{store: store, namespace: namespace, name: name, recorder: recorder, log: log,
		factory: factory, informer: factory.Core().V1().ConfigMaps().Informer()}
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.apply(obj) },
		UpdateFunc: func(_, obj any) { w.apply(obj) },
		DeleteFunc: func(any) {
			w.log.Warn("policy ConfigMap deleted: the last good policy stays in force until it is re-created",
				zap.String("configmap", w.namespace+"/"+w.name))
		},
	})
	return w
}

// Run watches until ctx ends.
func (w *PolicyWatcher) Run(ctx context.Context) {
	w.factory.Start(ctx.Done())
	if cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		w.seen.Store(true)
		if w.store.Load() == nil {
			w.log.Error("no valid policy: pods that need routing are refused until the ConfigMap holds one",
				zap.String("configmap", w.namespace+"/"+w.name), zap.String("key", PolicyKey))
		}
	}
	<-ctx.Done()
	w.factory.Shutdown()
}

// Synced is a readiness check: the router answers only once it knows
// whether a policy exists, so the first admissions after a start are not
// refused for want of a list call.
func (w *PolicyWatcher) Synced() error {
	if !w.seen.Load() {
		return errors.New("policy ConfigMap not read yet")
	}
	return nil
}

func (w *PolicyWatcher) apply(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	source := fmt.Sprintf("ConfigMap %s/%s (resourceVersion %s)", cm.Namespace, cm.Name, cm.ResourceVersion)
	doc, ok := cm.Data[PolicyKey]
	var err error
	var snap *inforce.Snapshot
	if !ok {
		err = fmt.Errorf("policy from %s rejected, previous policy stays in force: data.%s: required key is missing", source, PolicyKey)
		w.store.Reject(err)
	} else {
		snap, err = w.store.Apply([]byte(doc), source)
	}
	if err != nil {
		w.recorder.Event(cm, corev1.EventTypeWarning, EventPolicyRejected, truncate(err.Error(), maxEventMessage))
		return
	}
	if snap.Source == source {
		w.recorder.Eventf(cm, corev1.EventTypeNormal, EventPolicyApplied,
			"policy generation %d (digest %s) applied at %s", snap.Generation, snap.Digest, snap.Applied.UTC().Format(time.RFC3339))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
