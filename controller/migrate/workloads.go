package migrate

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
)

// WorkloadInformers watch the kinds the migration restarts.
type WorkloadInformers struct {
	factory         informers.SharedInformerFactory
	deploy, sts, ds cache.SharedIndexInformer
	// rollouts is set by WithRollouts, when Argo Rollouts is installed.
	rollouts        *rolloutInformer
	rolloutsFactory dynamicinformer.DynamicSharedInformerFactory
}

// WithRollouts also watches Argo Rollouts; call it only when the CRD is
// installed (RolloutsInstalled), before Run.
func (w *WorkloadInformers) WithRollouts(d dynamic.Interface) *WorkloadInformers {
	w.rollouts, w.rolloutsFactory = newRolloutInformer(d)
	return w
}

// NewWorkloadInformers returns informers for Deployments, StatefulSets and
// DaemonSets in every namespace; Run starts them.
func NewWorkloadInformers(client kubernetes.Interface) *WorkloadInformers {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(slimWorkload))
	return &WorkloadInformers{factory: f,
		deploy: f.Apps().V1().Deployments().Informer(),
		sts:    f.Apps().V1().StatefulSets().Informer(),
		ds:     f.Apps().V1().DaemonSets().Informer()}
}

// slimWorkload keeps of a workload only what FromDeployment,
// FromStatefulSet and FromDaemonSet read: its name, version and
// generation, the router's two annotations, the template's injection
// labels and annotation, the replica counts and pause. A Deployment
// decoded whole is a few kilobytes (labels, selector, template metadata,
// conditions); the scale run's leader held 30 MB of them at 10,000
// Deployments when only the pod spec and managedFields were dropped.
func slimWorkload(obj any) (any, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: slimMeta(&o.ObjectMeta),
			Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas, Paused: o.Spec.Paused, Template: slimTemplate(&o.Spec.Template)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: o.Status.ObservedGeneration, Replicas: o.Status.Replicas,
				UpdatedReplicas: o.Status.UpdatedReplicas, AvailableReplicas: o.Status.AvailableReplicas}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: slimMeta(&o.ObjectMeta),
			Spec: appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas, Template: slimTemplate(&o.Spec.Template)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: o.Status.ObservedGeneration, Replicas: o.Status.Replicas,
				UpdatedReplicas: o.Status.UpdatedReplicas, AvailableReplicas: o.Status.AvailableReplicas}}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: slimMeta(&o.ObjectMeta),
			Spec: appsv1.DaemonSetSpec{Template: slimTemplate(&o.Spec.Template)},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: o.Status.ObservedGeneration, DesiredNumberScheduled: o.Status.DesiredNumberScheduled,
				CurrentNumberScheduled: o.Status.CurrentNumberScheduled, UpdatedNumberScheduled: o.Status.UpdatedNumberScheduled,
				NumberAvailable: o.Status.NumberAvailable}}, nil
	}
	return obj, nil
}

// slimMeta is the workload metadata the migration reads (and the store's
// key): name, namespace, version, generation, the router's annotations.
func slimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion, Generation: m.Generation,
		Annotations: only(m.Annotations, AnnotationMigrate, AnnotationMigrated)}
}

// slimTemplate is the pod template metadata that pins a workload: the
// istio.io/rev label and the sidecar.istio.io/inject label or annotation.
func slimTemplate(t *corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
		Labels:      only(t.Labels, policy.LabelIstioRev, policy.LabelSidecarInject),
		Annotations: only(t.Annotations, policy.LabelSidecarInject)}}
}

// only returns the entries of m under keys; nil when there are none.
func only(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

// Run starts the informers; they stop when ctx ends.
func (w *WorkloadInformers) Run(ctx context.Context) {
	w.factory.Start(ctx.Done())
	if w.rolloutsFactory != nil {
		w.rolloutsFactory.Start(ctx.Done())
	}
}

// HasSynced reports the first full list of every kind.
func (w *WorkloadInformers) HasSynced() bool {
	return w.deploy.HasSynced() && w.sts.HasSynced() && w.ds.HasSynced() &&
		(w.rollouts == nil || w.rollouts.inf.HasSynced())
}

// AddEventHandler registers h on every kind.
func (w *WorkloadInformers) AddEventHandler(h cache.ResourceEventHandler) {
	for _, inf := range []cache.SharedIndexInformer{w.deploy, w.sts, w.ds} {
		_, _ = inf.AddEventHandler(h)
	}
	if w.rollouts != nil {
		_, _ = w.rollouts.inf.AddEventHandler(h)
	}
}

// List returns every cached workload, normalised.
func (w *WorkloadInformers) List() []Workload {
	var out []Workload
	for _, o := range w.deploy.GetStore().List() {
		out = append(out, FromDeployment(o.(*appsv1.Deployment)))
	}
	for _, o := range w.sts.GetStore().List() {
		out = append(out, FromStatefulSet(o.(*appsv1.StatefulSet)))
	}
	for _, o := range w.ds.GetStore().List() {
		out = append(out, FromDaemonSet(o.(*appsv1.DaemonSet)))
	}
	if w.rollouts != nil {
		out = append(out, w.rollouts.list()...)
	}
	return out
}

// FromDeployment normalises a Deployment.
func FromDeployment(d *appsv1.Deployment) Workload {
	w := base(KindDeployment, &d.ObjectMeta, &d.Spec.Template.ObjectMeta)
	w.Replicas = replicas(d.Spec.Replicas)
	w.StatusReplicas, w.Updated, w.Available = d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas
	w.ObservedGeneration, w.Paused = d.Status.ObservedGeneration, d.Spec.Paused
	return w
}

// FromStatefulSet normalises a StatefulSet. One rolled with OnDelete
// never updates its pods on a restart; it shows as never completing, and
// the batch fails with that reason rather than waiting silently.
func FromStatefulSet(s *appsv1.StatefulSet) Workload {
	w := base(KindStatefulSet, &s.ObjectMeta, &s.Spec.Template.ObjectMeta)
	w.Replicas = replicas(s.Spec.Replicas)
	w.StatusReplicas, w.Updated, w.Available = s.Status.Replicas, s.Status.UpdatedReplicas, s.Status.AvailableReplicas
	w.ObservedGeneration = s.Status.ObservedGeneration
	return w
}

// FromDaemonSet normalises a DaemonSet: its desired count is the nodes it
// should run on.
func FromDaemonSet(d *appsv1.DaemonSet) Workload {
	w := base(KindDaemonSet, &d.ObjectMeta, &d.Spec.Template.ObjectMeta)
	w.Replicas = d.Status.DesiredNumberScheduled
	w.StatusReplicas, w.Updated, w.Available = d.Status.CurrentNumberScheduled, d.Status.UpdatedNumberScheduled, d.Status.NumberAvailable
	w.ObservedGeneration = d.Status.ObservedGeneration
	return w
}

func base(kind string, m, tmpl *metav1.ObjectMeta) Workload {
	inject := tmpl.Labels[policy.LabelSidecarInject]
	if inject == "" {
		inject = tmpl.Annotations[policy.LabelSidecarInject]
	}
	_, pinned := tmpl.Labels[policy.LabelIstioRev]
	return Workload{
		Ref:        Ref{Namespace: m.Namespace, Kind: kind, Name: m.Name},
		Generation: m.Generation,
		OptOut:     m.Annotations[AnnotationMigrate] == "false",
		Pinned:     pinned || inject == "false",
		Migrated:   m.Annotations[AnnotationMigrated],

		ResourceVersion: m.ResourceVersion,
	}
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
