package podview

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestInjectedRevision(t *testing.T) {
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		want        string
	}{
		{"not injected", map[string]string{labelRev: "canary"}, nil, ""},
		{"Istio >= 1.18 annotation", map[string]string{labelRev: "prod"},
			map[string]string{annotationStatus: `{"revision":"canary"}`, annotationRev: "canary"}, "canary"},
		{"status JSON (1.11 to 1.17)", map[string]string{labelRev: "prod"},
			map[string]string{annotationStatus: `{"containers":["istio-proxy"],"revision":"1-16"}`}, "1-16"},
		{"older: the pod label", map[string]string{labelRev: "1-10"},
			map[string]string{annotationStatus: `{"containers":["istio-proxy"]}`}, "1-10"},
		{"status that is not JSON", map[string]string{labelRev: "x"}, map[string]string{annotationStatus: "garbage"}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := injectedRevision(tt.labels, tt.annotations); got != tt.want {
				t.Errorf("injectedRevision = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecordOf(t *testing.T) {
	yes, no := true, false
	now := metav1.Now()
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want record
	}{
		{"replicaset pod the router routed", metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{labelRev: "canary"},
			Annotations:     map[string]string{annotationDecision: `{"revision":"canary"}`},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &yes}}},
			record{key: Key{"shop", "ReplicaSet", "web-5d8f"}, owned: true, routed: "canary", live: true}},
		{"replicaset pod its owner pinned", metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{labelRev: "canary"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &yes}}},
			record{key: Key{"shop", "ReplicaSet", "web-5d8f"}, owned: true, routed: "canary", live: true, pinned: true}},
		{"non-controller owner", metav1.ObjectMeta{Namespace: "shop",
			OwnerReferences: []metav1.OwnerReference{{Kind: "Thing", Name: "t", Controller: &no}, {Kind: "Other", Name: "o"}}},
			record{live: true}},
		{"terminating", metav1.ObjectMeta{Namespace: "shop", DeletionTimestamp: &now, Labels: map[string]string{labelRev: "stable"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: &yes}}},
			record{key: Key{"shop", "StatefulSet", "db"}, owned: true, routed: "stable", pinned: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recordOf(&tt.meta); got != tt.want {
				t.Errorf("recordOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTrimKeepsTheRecord(t *testing.T) {
	yes := true
	now := metav1.Now()
	pods := []*metav1.PartialObjectMetadata{
		{ObjectMeta: metav1.ObjectMeta{
			Name: "web-5d8f-x1", Namespace: "shop", ResourceVersion: "42", UID: "u",
			Labels: map[string]string{labelRev: "prod", "app": "web", "pod-template-hash": "5d8f"},
			Annotations: map[string]string{annotationStatus: `{"revision":"canary"}`, annotationRev: "canary",
				"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f", UID: "rs", Controller: &yes}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "old", DeletionTimestamp: &now,
			Labels:      map[string]string{labelRev: "1-10"},
			Annotations: map[string]string{annotationStatus: `{}`}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "x", Labels: map[string]string{"app": "x"}}},
	}
	tr := &trimmer{}
	for _, p := range pods {
		want := recordOf(p)
		out, err := tr.trim(p.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		m, ok := out.(*slimPod)
		if !ok {
			t.Fatalf("%s: trimmed to %T, want *slimPod", p.Name, out)
		}
		if got, _ := recordFrom(m); got != want {
			t.Errorf("%s: record after trim %+v, want %+v", p.Name, got, want)
		}
		// The informer keys the cache by namespace/name through meta.Accessor.
		if key, err := cache.MetaNamespaceKeyFunc(m); err != nil || key != p.Namespace+"/"+p.Name {
			t.Errorf("%s: store key %q (%v), want %s/%s", p.Name, key, err, p.Namespace, p.Name)
		}
		if acc, err := meta.Accessor(m); err != nil || acc.GetResourceVersion() != p.ResourceVersion {
			t.Errorf("%s: resource version not kept: %v %v", p.Name, acc, err)
		}
		again, _ := tr.trim(m.DeepCopyObject())
		if got, _ := recordFrom(again); got != want {
			t.Errorf("%s: trimming twice changed the record to %+v", p.Name, got)
		}
	}
}
