package istio

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	admissionreginformers "k8s.io/client-go/informers/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// errNotSynced is the readiness error before the first lists.
var errNotSynced = errors.New("waiting for the first list of MutatingWebhookConfigurations and istiod EndpointSlices: " +
	"until then canary-router cannot tell which targets exist and are healthy")

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	// Client lists and watches MutatingWebhookConfigurations and the
	// EndpointSlices in Namespace.
	Client kubernetes.Interface
	// Namespace holds the istiod Services (istio-system).
	Namespace string
	// OwnConfig is the router's own MutatingWebhookConfiguration name.
	OwnConfig string
	Log       *zap.Logger
	// OnChange, when set, is called with each new State that differs from
	// the previous one (prev is nil the first time), one call at a time.
	OnChange func(prev, next *State)
}

// Watcher keeps a State current from two informers: webhook configurations
// (cluster-wide, trimmed to what Istio's injectors need: names, labels,
// and the injector webhooks' selectors and client configs) and
// EndpointSlices in the Istio namespace.
// Both are small, so every event rebuilds the whole State.
type Watcher struct {
	o         WatcherOptions
	configs   cache.SharedIndexInformer
	endpoints cache.SharedIndexInformer
	factory   informers.SharedInformerFactory

	// mu serialises rebuilds: the two informers deliver events on their
	// own goroutines, and the last rebuild must see both latest stores.
	mu     sync.Mutex
	cur    atomic.Pointer[State]
	synced atomic.Bool
	// notAnswering is the Prober's latest verdict (SetNotAnswering).
	notAnswering atomic.Pointer[map[string]string]
}

// NewWatcher returns a Watcher; Run starts it.
func NewWatcher(o WatcherOptions) *Watcher {
	w := &Watcher{o: o}
	w.configs = admissionreginformers.NewMutatingWebhookConfigurationInformer(o.Client, 0, cache.Indexers{})
	_ = w.configs.SetTransform(trimConfig)
	w.factory = informers.NewSharedInformerFactoryWithOptions(o.Client, 0, informers.WithNamespace(o.Namespace))
	w.endpoints = w.factory.Discovery().V1().EndpointSlices().Informer()
	_ = w.endpoints.SetTransform(trimEndpointSlice)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.rebuild() },
		UpdateFunc: func(any, any) { w.rebuild() },
		DeleteFunc: func(any) { w.rebuild() },
	}
	_, _ = w.configs.AddEventHandler(h)
	_, _ = w.endpoints.AddEventHandler(h)
	return w
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	go w.configs.RunWithContext(ctx)
	w.factory.Start(ctx.Done())
	if cache.WaitForCacheSync(ctx.Done(), w.configs.HasSynced, w.endpoints.HasSynced) {
		w.synced.Store(true)
		w.rebuild()
	}
	<-ctx.Done()
	w.factory.Shutdown()
}

// Current returns the State in force, or nil before the first lists.
func (w *Watcher) Current() *State { return w.cur.Load() }

// Ready is a readiness check: it fails until the first State exists.
func (w *Watcher) Ready() error {
	if w.cur.Load() == nil {
		return errNotSynced
	}
	return nil
}

// SetNotAnswering records the revisions whose injector fails the active
// check (Prober's Report), and rebuilds the State with them.
func (w *Watcher) SetNotAnswering(revisions map[string]string) {
	w.notAnswering.Store(&revisions)
	w.rebuild()
}

// rebuild makes a new State from the informers' stores. Events before the
// first complete lists are ignored: a partial view would report targets
// missing that merely have not been listed yet.
func (w *Watcher) rebuild() {
	if !w.synced.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var configs []Config
	for _, obj := range w.configs.GetStore().List() {
		if m, ok := obj.(*admissionregv1.MutatingWebhookConfiguration); ok {
			configs = append(configs, configOf(m, w.o.Log))
		}
	}
	var eps []Endpoints
	for _, obj := range w.endpoints.GetStore().List() {
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			eps = append(eps, Endpoints{Service: s.Labels[discoveryv1.LabelServiceName], Ready: len(s.Endpoints) > 0})
		}
	}
	next := NewState(configs, eps, w.o.Namespace, w.o.OwnConfig)
	if na := w.notAnswering.Load(); na != nil && len(*na) > 0 {
		next = next.WithNotAnswering(*na)
	}
	prev := w.cur.Load()
	if prev != nil && prev.equal(next) {
		return
	}
	w.cur.Store(next)
	w.logChange(prev, next)
	if w.o.OnChange != nil {
		w.o.OnChange(prev, next)
	}
}

// logChange logs the first State and every change, and the webhook order
// problem at error level each time the set of misordered configs changes.
func (w *Watcher) logChange(prev, next *State) {
	if w.o.Log == nil {
		return
	}
	w.o.Log.Info("istio control planes", zap.Strings("revisions", sortedKeys(next.revisions)),
		zap.Any("tags", next.tags), zap.Strings("readyIstiod", sortedKeys(next.ready)),
		zap.Strings("notAnswering", sortedKeys(next.notAnswering)))
	if prev != nil && slices.Equal(prev.misordered, next.misordered) {
		return
	}
	if p := next.OrderProblem(); p != "" {
		w.o.Log.Error("webhook order: "+p, zap.Strings("misordered", next.misordered), zap.String("ownConfig", next.ownConfig))
	} else if prev != nil {
		w.o.Log.Info("webhook order: canary-router's configuration sorts before every Istio injector config", zap.String("ownConfig", next.ownConfig))
	}
}

// equal reports whether two States would answer every question alike.
func (s *State) equal(o *State) bool {
	return s.namespace == o.namespace && s.ownConfig == o.ownConfig &&
		maps.Equal(s.revisions, o.revisions) && maps.Equal(s.tags, o.tags) &&
		maps.Equal(s.ready, o.ready) && slices.Equal(s.misordered, o.misordered) &&
		s.selectorsKnown == o.selectorsKnown && slices.EqualFunc(s.injectors, o.injectors, sameInjector) &&
		maps.EqualFunc(s.probes, o.probes, sameProbeTarget) && maps.Equal(s.notAnswering, o.notAnswering)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// trimEndpointSlice keeps a slice's Service label and at most one
// endpoint, present only when some endpoint is ready. A nil ready
// condition counts as ready, as the EndpointSlice API defines it.
func trimEndpointSlice(obj any) (any, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil
	}
	out := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, ResourceVersion: s.ResourceVersion,
		Labels: map[string]string{discoveryv1.LabelServiceName: s.Labels[discoveryv1.LabelServiceName]},
	}}
	for _, e := range s.Endpoints {
		if e.Conditions.Ready == nil || *e.Conditions.Ready {
			out.Endpoints = []discoveryv1.Endpoint{{Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}}}
			break
		}
	}
	return out, nil
}
