package migrate

import (
	"fmt"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// TestCacheMemory measures what the leader's migration caches hold for
// the scale item's cluster: 100,000 pods through the pod transform and
// 10,000 Deployments through slimWorkload, in informer stores.
func TestCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("scale figures: run without -short")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pods := cache.NewStore(cache.MetaNamespaceKeyFunc)
	deps := cache.NewStore(cache.MetaNamespaceKeyFunc)
	ctl := true
	for w := range 10_000 {
		ns, name := fmt.Sprintf("ns-%03d", w/100), fmt.Sprintf("app-%04d", w)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 2,
			Annotations: map[string]string{AnnotationMigrated: "d1"}, ManagedFields: make([]metav1.ManagedFieldsEntry, 3)},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](10)}}
		obj, _ := slimWorkload(d)
		_ = deps.Add(obj)
		for p := range 10 {
			m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-7d4b9c8f5-%05d", name, p),
				ResourceVersion: "123456",
				Labels:          map[string]string{"app": name, "pod-template-hash": "7d4b9c8f5", "istio.io/rev": "stable"},
				Annotations:     map[string]string{"sidecar.istio.io/status": `{"revision":"1-24"}`, "istio.io/rev": "1-24"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: name + "-7d4b9c8f5", Controller: &ctl}}}}
			rec, ok := RecordOf(m)
			_ = pods.Add(&slimPod{namespace: ns, name: m.Name, resourceVersion: m.ResourceVersion, rec: rec, ok: ok})
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("RESULT migrate-cache-memory: pods=%d workloads=%d heap=%.1fMB", len(pods.List()), len(deps.List()),
		float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
}
