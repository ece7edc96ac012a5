package rollout

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/policy"
)

// proxyContainer is the sidecar Istio injects, a regular container or,
// with native sidecars, a restartable init container.
const proxyContainer = "istio-proxy"

// ProxyOf reads one pod's sidecar health: the revision that injected it,
// whether its istio-proxy is ready and how often it restarted. ok is
// false for pods the gate does not compare: not routed by the router (no
// decision annotation: pinned, excluded, or older than the router), not
// part of a workload, not injected, or being deleted.
func ProxyOf(p *corev1.Pod) (rev string, ready bool, restarts int32, ok bool) {
	if _, routed := p.Annotations[policy.AnnotationDecision]; !routed {
		return "", false, 0, false
	}
	rec, counted := migrate.RecordOf(p)
	if !counted || rec.Injected == "" {
		return "", false, 0, false
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for _, c := range list {
			if c.Name == proxyContainer {
				return rec.Injected, c.Ready, c.RestartCount, true
			}
		}
	}
	// Injected but no status yet: a starting pod, counted as not ready.
	return rec.Injected, false, 0, true
}

// healthPod is what the informer keeps of a pod: a few dozen bytes.
type healthPod struct {
	metav1.ObjectMeta
	rev      string
	ready    bool
	restarts int32
	ok       bool
}

var _ runtime.Object = (*healthPod)(nil)

// GetObjectKind implements runtime.Object; a cached pod needs no kind.
func (p *healthPod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object (the informer may copy what it
// caches); the metadata holds no maps, so a shallow copy is a deep one.
func (p *healthPod) DeepCopyObject() runtime.Object {
	c := *p
	return &c
}

// HealthInformer watches pods for the pod-health gates. It runs on the
// leader only, with each term, like the migration's informers.
type HealthInformer struct {
	inf cache.SharedIndexInformer
}

// NewHealthInformer returns an informer that keeps only each pod's proxy
// health (a transform drops the rest before it is cached).
func NewHealthInformer(client kubernetes.Interface) *HealthInformer {
	inf := informers.NewSharedInformerFactory(client, 0).Core().V1().Pods().Informer()
	_ = inf.SetTransform(func(obj any) (any, error) {
		p, isPod := obj.(*corev1.Pod)
		if !isPod {
			return obj, nil
		}
		rev, ready, restarts, ok := ProxyOf(p)
		return &healthPod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, ResourceVersion: p.ResourceVersion},
			rev: rev, ready: ready, restarts: restarts, ok: ok}, nil
	})
	return &HealthInformer{inf: inf}
}

// Run runs the informer until ctx ends.
func (h *HealthInformer) Run(ctx context.Context) { h.inf.RunWithContext(ctx) }

// HasSynced reports whether the first list is in.
func (h *HealthInformer) HasSynced() bool { return h.inf.HasSynced() }

// Health aggregates the cached pods by injected revision; nil before the
// first list.
func (h *HealthInformer) Health() map[string]ProxyHealth {
	if !h.inf.HasSynced() {
		return nil
	}
	out := map[string]ProxyHealth{}
	for _, it := range h.inf.GetStore().List() {
		p, ok := it.(*healthPod)
		if !ok || !p.ok {
			continue
		}
		c := out[p.rev]
		c.Pods++
		if p.ready {
			c.Ready++
		}
		c.Restarts += int(p.restarts)
		out[p.rev] = c
	}
	return out
}
