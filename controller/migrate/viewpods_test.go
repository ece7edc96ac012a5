package migrate

import (
	"context"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/canary-router/canary-router/view/podview"
)

// podMeta is a pod's metadata; owner "" for a pod without a controller.
func podMeta(ns, name, ownerKind, owner string, labels, annotations map[string]string) *metav1.PartialObjectMetadata {
	yes := true
	p := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
	}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: owner, Controller: &yes}}
	}
	return p
}

// The leader plans from the replica's pod view (ViewPods) instead of a pod
// informer of its own (PodInformer, still what `canary-router migrate`
// runs): over the same pods both must give the very same counts, units
// of every kind included.
func TestViewPodsCountsAsThePodInformer(t *testing.T) {
	on := func(rev string) map[string]string {
		return map[string]string{"sidecar.istio.io/status": `{"revision":"` + rev + `"}`, "canary-router.io/decision": "x"}
	}
	hash := func(h string) map[string]string {
		return map[string]string{"pod-template-hash": h, "istio.io/rev": "stable"}
	}
	deleting := podMeta("shop", "web-old", "ReplicaSet", "web-1111", hash("1111"), on("stable"))
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	notController := podMeta("shop", "adopted", "", "", nil, on("canary"))
	notController.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "x"}}
	pods := []runtime.Object{
		podMeta("shop", "web-a", "ReplicaSet", "web-1111", hash("1111"), on("stable")),
		podMeta("shop", "web-b", "ReplicaSet", "web-2222", hash("2222"), on("canary")),
		podMeta("shop", "web-c", "ReplicaSet", "web-2222", hash("2222"), nil),
		deleting,
		podMeta("shop", "api-a", "ReplicaSet", "api-6c4f", map[string]string{"rollouts-pod-template-hash": "6c4f"}, on("canary")),
		podMeta("shop", "db-0", "StatefulSet", "db", nil, on("stable")),
		podMeta("shop", "backup-29012345-x", "Job", "backup-29012345", nil, on("stable")),
		podMeta("shop", "once-x", "Job", "once", nil, nil),
		podMeta("shop", "lonely", "", "", nil, on("stable")),
		notController,
		podMeta("other", "web-a", "ReplicaSet", "web-1111", hash("1111"), on("canary")),
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informer := NewPodInformer(metadatafake.NewSimpleMetadataClient(scheme, pods...))
	go informer.Run(ctx)
	view := podview.New(podview.Options{})
	shared := ViewPods{View: view}
	if shared.HasSynced() || shared.Counts() != nil {
		t.Fatal("ViewPods reports pods before the view's first list")
	}
	go view.Run(ctx, metadatafake.NewSimpleMetadataClient(scheme, pods...))
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return informer.HasSynced() && shared.HasSynced(), nil
	}); err != nil {
		t.Fatal("never synced")
	}
	want, got := informer.Counts(), shared.Counts()
	if !maps.EqualFunc(want, got, func(a, b PodCounts) bool { return maps.Equal(a, b) }) {
		t.Fatalf("ViewPods.Counts() = %v\nPodInformer.Counts() = %v", got, want)
	}
	if c := got[Ref{Namespace: "shop", Kind: "Deployment", Name: "web"}]; c["stable"] != 1 || c["canary"] != 1 || c[""] != 1 {
		t.Fatalf("web: %v (two ReplicaSets, one workload; the terminating pod must not count)", c)
	}
	if c := got[Ref{Namespace: "shop", Kind: "Pod", Name: "lonely"}]; c["stable"] != 1 {
		t.Fatalf("the bare pod is its own unit: %v", got)
	}
}

// The migration learns of pod changes through the view: every change the
// informer delivers calls the registered function until it is stopped.
func TestViewPodsNotify(t *testing.T) {
	view := podview.New(podview.Options{})
	calls := 0
	stop := view.Notify(func() { calls++ })
	p := podMeta("shop", "web-a", "ReplicaSet", "web-1111", map[string]string{"pod-template-hash": "1111"}, nil)
	view.OnAdd(p, false)
	moved := p.DeepCopy()
	moved.Annotations = map[string]string{"sidecar.istio.io/status": `{"revision":"canary"}`}
	view.OnUpdate(p, moved)
	view.OnUpdate(moved, moved.DeepCopy()) // nothing the view records changed
	view.OnDelete(moved)
	if calls != 3 {
		t.Fatalf("%d calls for an add, a change and a delete, want 3", calls)
	}
	stop()
	view.OnAdd(p, false)
	if calls != 3 {
		t.Fatal("called after stop")
	}
}
