package certs

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// watch starts informers on exactly the three objects the manager owns,
// each selected by name, and pokes the run loop on every event: a new CA
// written by another replica, or a caBundle reset by `kubectl apply` of the
// manifests, is acted on within moments instead of at the next check. The
// name field selector also lets RBAC restrict list and watch to those
// names. The returned func stops the informers and waits for them.
func (m *SelfManaged) watch(ctx context.Context) (stop func()) {
	byName := func(name string) informers.SharedInformerOption {
		return informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { m.poke() },
		UpdateFunc: func(any, any) { m.poke() },
		DeleteFunc: func(any) { m.poke() },
	}
	// Resync 0: the CheckInterval ticker already re-reads everything.
	secrets := informers.NewSharedInformerFactoryWithOptions(m.o.Client, 0,
		informers.WithNamespace(m.o.Namespace), byName(m.o.SecretName))
	configs := informers.NewSharedInformerFactoryWithOptions(m.o.Client, 0, byName(m.o.WebhookConfigName))
	for _, inf := range []cache.SharedIndexInformer{
		secrets.Core().V1().Secrets().Informer(),
		configs.Admissionregistration().V1().MutatingWebhookConfigurations().Informer(),
		configs.Admissionregistration().V1().ValidatingWebhookConfigurations().Informer(),
	} {
		_, _ = inf.AddEventHandler(handler)
	}
	ctx, cancel := context.WithCancel(ctx)
	secrets.Start(ctx.Done())
	configs.Start(ctx.Done())
	return func() {
		cancel()
		secrets.Shutdown()
		configs.Shutdown()
	}
}
