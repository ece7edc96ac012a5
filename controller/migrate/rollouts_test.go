package migrate

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func rollout(spec, status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"namespace": "shop", "name": "web", "generation": int64(3)},
		"spec":     spec, "status": status,
	}}
}

func TestFromRollout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     map[string]any
		status   map[string]any
		complete bool
	}{
		{name: "rolled out, observedGeneration as a string", spec: map[string]any{"replicas": int64(3)},
			status: map[string]any{"replicas": int64(3), "updatedReplicas": int64(3), "availableReplicas": int64(3), "observedGeneration": "3"}, complete: true},
		{name: "restart asked, not done", spec: map[string]any{"replicas": int64(3), "restartAt": "2026-12-02T10:00:00Z"},
			status: map[string]any{"replicas": int64(3), "updatedReplicas": int64(3), "availableReplicas": int64(3), "observedGeneration": "3"}},
		{name: "restart done", spec: map[string]any{"replicas": int64(3), "restartAt": "2026-12-02T10:00:00Z"},
			status: map[string]any{"replicas": int64(3), "updatedReplicas": int64(3), "availableReplicas": int64(3), "observedGeneration": "3",
				"restartedAt": "2026-12-02T10:00:00Z"}, complete: true},
		{name: "old generation", spec: map[string]any{"replicas": int64(3)},
			status: map[string]any{"replicas": int64(3), "updatedReplicas": int64(3), "availableReplicas": int64(3), "observedGeneration": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := FromRollout(rollout(tc.spec, tc.status))
			if w.Kind != KindRollout || w.Replicas != 3 {
				t.Fatalf("%+v", w)
			}
			if got := Complete(w); got != tc.complete {
				t.Fatalf("complete = %v, want %v (%+v)", got, tc.complete, w)
			}
		})
	}
}

func TestRestartRollout(t *testing.T) {
	scheme := runtime.NewScheme()
	u := rollout(map[string]any{"replicas": int64(1)}, map[string]any{})
	d := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{RolloutGVR: "RolloutList"}, u)
	w := &KubeWriter{Dynamic: d}
	for range 2 { // idempotent
		if err := w.Restart(context.Background(), Ref{"shop", KindRollout, "web"}, "", "d1", "2026-12-02T10:00:00Z"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Resource(RolloutGVR).Namespace("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at, _, _ := unstructured.NestedString(got.Object, "spec", "restartAt")
	if at != "2026-12-02T10:00:00Z" || got.GetAnnotations()[AnnotationMigrated] != "d1" {
		t.Fatalf("restartAt %q, annotations %v", at, got.GetAnnotations())
	}
}
