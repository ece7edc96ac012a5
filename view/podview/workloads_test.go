package podview

import (
	"context"
	"strconv"
	"testing"
	"time"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"
)

// ownedPod is a pod of owner kind/name with the given labels.
func ownedPod(ns, name, kind, owner string, labels, annotations map[string]string) *metav1.PartialObjectMetadata {
	yes := true
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: owner, Controller: &yes}}}}
}

func TestRecordWorkload(t *testing.T) {
	injected := map[string]string{annotationStatus: "{}", annotationRev: "canary"}
	cases := []struct {
		name               string
		kind, owner        string
		labels             map[string]string
		wantKind, wantName string
		wantOK             bool
	}{
		{"Deployment's ReplicaSet", "ReplicaSet", "web-5d8f7c9b6d", map[string]string{"pod-template-hash": "5d8f7c9b6d"}, "Deployment", "web", true},
		{"Argo Rollout's ReplicaSet", "ReplicaSet", "api-6c4f", map[string]string{"rollouts-pod-template-hash": "6c4f"}, "Rollout", "api", true},
		{"bare ReplicaSet", "ReplicaSet", "plain", nil, "ReplicaSet", "plain", true},
		{"StatefulSet", "StatefulSet", "db", map[string]string{"controller-revision-hash": "db-7f"}, "StatefulSet", "db", true},
		{"DaemonSet", "DaemonSet", "agent", nil, "DaemonSet", "agent", true},
		{"CronJob's Job", "Job", "backup-29012345", nil, "CronJob", "backup", true},
		{"Job", "Job", "once", nil, "Job", "once", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := recordOf(ownedPod("shop", "p", tc.kind, tc.owner, tc.labels, injected))
			k, ok := r.workload()
			if ok != tc.wantOK || k.Kind != tc.wantKind || k.Name != tc.wantName || (ok && k.Namespace != "shop") {
				t.Fatalf("workload() = %+v, %v; want %s/%s, %v", k, ok, tc.wantKind, tc.wantName, tc.wantOK)
			}
			if r.key.Kind != tc.kind || r.key.Name != tc.owner {
				t.Fatalf("the balancing unit changed: %+v", r.key)
			}
		})
	}
	bare := recordOf(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: "shop"}})
	if _, ok := bare.workload(); ok {
		t.Fatal("a pod without a controller has no workload to restart")
	}
}

// The workload fits in the record's padding: a pod costs the cache no
// more than before (docs/performance.md, the live pod view's memory).
func TestRecordSizeUnchanged(t *testing.T) {
	if got := unsafe.Sizeof(record{}); got != 96 {
		t.Fatalf("record is %d bytes, was 96", got)
	}
}

func TestWorkloadsFromTheInformer(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	hash := func(h string) map[string]string { return map[string]string{"pod-template-hash": h, labelRev: "stable"} }
	on := func(rev string) map[string]string {
		return map[string]string{annotationStatus: "{}", annotationRev: rev, annotationDecision: "x"}
	}
	pinned := map[string]string{labelRev: "stable"}
	deleting := ownedPod("shop", "web-old-1", "ReplicaSet", "web-1111", hash("1111"), on("stable"))
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		// One Deployment across two ReplicaSets: one workload.
		ownedPod("shop", "web-a", "ReplicaSet", "web-1111", hash("1111"), on("stable")),
		ownedPod("shop", "web-b", "ReplicaSet", "web-2222", hash("2222"), on("canary")),
		ownedPod("shop", "web-c", "ReplicaSet", "web-2222", map[string]string{"pod-template-hash": "2222"}, nil),
		deleting,
		ownedPod("shop", "db-0", "StatefulSet", "db", pinned, map[string]string{annotationStatus: "{}", annotationRev: "stable"}),
	)
	v := New(Options{})
	if _, ok := v.Workloads(); ok {
		t.Fatal("workloads reported before the first list")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go v.Run(ctx, client)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return v.Synced(), nil
	}); err != nil {
		t.Fatal("view never synced")
	}
	ws, ok := v.Workloads()
	if !ok || len(ws) != 2 {
		t.Fatalf("Workloads() = %+v, %v; want 2 workloads", ws, ok)
	}
	got := map[Key]WorkloadPods{}
	for _, w := range ws {
		got[w.Key] = w
	}
	web := got[Key{"shop", "Deployment", "web"}]
	if web.Injected["stable"] != 1 || web.Injected["canary"] != 1 || web.Injected[""] != 1 || web.Pinned != 0 {
		t.Fatalf("web: %+v (the terminating pod must not count)", web)
	}
	if db := got[Key{"shop", "StatefulSet", "db"}]; db.Injected["stable"] != 1 || db.Pinned != 1 {
		t.Fatalf("db: %+v", db)
	}
}

// BenchmarkWorkloads100kPods: the walk behind the policy validator's dry
// run, over 100,000 cached pods of 20,000 Deployments.
func BenchmarkWorkloads100kPods(b *testing.B) {
	v := New(Options{})
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	var tr trimmer
	for i := range 100_000 {
		w := i / 5
		ns := "ns-" + strconv.Itoa(w%200)
		hash := "h" + strconv.Itoa(w)
		p := ownedPod(ns, "p-"+strconv.Itoa(i), "ReplicaSet", "web-"+strconv.Itoa(w)+"-"+hash,
			map[string]string{"pod-template-hash": hash, labelRev: "stable"},
			map[string]string{annotationStatus: "{}", annotationRev: "stable", annotationDecision: "x"})
		slim, _ := tr.trim(p)
		if err := store.Add(slim); err != nil {
			b.Fatal(err)
		}
	}
	synced := func() bool { return true }
	v.hasSynced.Store(&synced)
	v.setStore(store)
	b.ResetTimer()
	for range b.N {
		if ws, ok := v.Workloads(); !ok || len(ws) != 20_000 {
			b.Fatalf("%d workloads, %v", len(ws), ok)
		}
	}
}
