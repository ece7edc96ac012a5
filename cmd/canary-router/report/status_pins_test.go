package report

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
)

// TestPinCounts: owner pins are counted by workload; the router's own
// labels, opted-out pods and terminating pods are not.
func TestPinCounts(t *testing.T) {
	yes := true
	pod := func(name string, labels, annotations map[string]string, owner string) *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels, Annotations: annotations}}
		if owner != "" {
			m.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner, Controller: &yes}}
		}
		return m
	}
	gone := metav1.Now()
	terminating := pod("web-5d8f-c", map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"}, nil, "web-5d8f")
	terminating.DeletionTimestamp = &gone
	c := pinCounts{}
	for _, m := range []*metav1.PartialObjectMetadata{
		pod("web-5d8f-a", map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"}, nil, "web-5d8f"),
		pod("web-5d8f-b", map[string]string{"istio.io/rev": "old", "pod-template-hash": "5d8f"}, nil, "web-5d8f"),
		terminating,
		pod("routed", map[string]string{"istio.io/rev": "stable"}, map[string]string{"canary-router.io/decision": "{}"}, ""),
		pod("opted-out", map[string]string{"istio.io/rev": "old"}, map[string]string{"sidecar.istio.io/inject": "false"}, ""),
		pod("bare", map[string]string{"istio.io/rev": "stabel"}, nil, ""),
		pod("unpinned", nil, nil, ""),
	} {
		c.add(m)
	}
	want := pinCounts{
		{Unit: migrate.Ref{Namespace: "shop", Kind: "Deployment", Name: "web"}, Revision: "old"}: 2,
		{Unit: migrate.Ref{Namespace: "shop", Kind: "Pod", Name: "bare"}, Revision: "stabel"}:    1,
	}
	if len(c) != len(want) {
		t.Fatalf("counted %v, want %v", c, want)
	}
	for k, n := range want {
		if c[k] != n {
			t.Errorf("%+v: %d pods, want %d (all: %v)", k, c[k], n, c)
		}
	}
}
