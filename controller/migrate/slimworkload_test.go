package migrate

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// What the informer caches of a workload must normalise exactly as the
// whole object does: slimWorkload may drop only what the migration never
// reads.
func TestSlimWorkloadKeepsWhatTheMigrationReads(t *testing.T) {
	meta := func(annotations map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", Namespace: "shop", ResourceVersion: "42", Generation: 7, UID: "u",
			Labels: map[string]string{"app": "web"}, Annotations: annotations,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}
	}
	template := func(labels, annotations map[string]string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
	}
	annotated := map[string]string{AnnotationMigrate: "false", AnnotationMigrated: "sha256:1", "other": "x"}
	cases := []struct {
		name string
		obj  any
		norm func(any) Workload
	}{
		{"Deployment, pinned by label, opted out", &appsv1.Deployment{ObjectMeta: meta(annotated),
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Paused: true, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: template(map[string]string{"app": "web", "istio.io/rev": "canary"}, map[string]string{"prometheus.io/scrape": "true"})},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 6, Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Message: "ok"}}}},
			func(o any) Workload { return FromDeployment(o.(*appsv1.Deployment)) }},
		{"Deployment without replicas, injection off by annotation", &appsv1.Deployment{ObjectMeta: meta(nil),
			Spec: appsv1.DeploymentSpec{Template: template(nil, map[string]string{"sidecar.istio.io/inject": "false"})}},
			func(o any) Workload { return FromDeployment(o.(*appsv1.Deployment)) }},
		{"StatefulSet, injection off by label", &appsv1.StatefulSet{ObjectMeta: meta(map[string]string{AnnotationMigrated: "sha256:2"}),
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Template: template(map[string]string{"sidecar.istio.io/inject": "false"}, nil),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 7, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2}},
			func(o any) Workload { return FromStatefulSet(o.(*appsv1.StatefulSet)) }},
		{"DaemonSet", &appsv1.DaemonSet{ObjectMeta: meta(nil), Spec: appsv1.DaemonSetSpec{Template: template(map[string]string{"app": "agent"}, nil)},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: 7, DesiredNumberScheduled: 5, CurrentNumberScheduled: 5, UpdatedNumberScheduled: 4, NumberAvailable: 5}},
			func(o any) Workload { return FromDaemonSet(o.(*appsv1.DaemonSet)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.norm(tc.obj)
			slim, err := slimWorkload(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.norm(slim); got != want {
				t.Fatalf("slimmed: %+v\nwhole:   %+v", got, want)
			}
			if m := slim.(metav1.Object); len(m.GetLabels()) != 0 || len(m.GetManagedFields()) != 0 || m.GetAnnotations()["other"] != "" {
				t.Fatalf("slimmed object keeps what the migration never reads: %+v", m)
			}
		})
	}
}
