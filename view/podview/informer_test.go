package podview

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	metadatafake "k8s.io/client-go/metadata/fake"
)

func TestRunFeedsTheView(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	typed := func(p *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		return p
	}
	client := metadatafake.NewSimpleMetadataClient(scheme, typed(pod(rs, "a", "canary")), typed(pod(rs, "b", "stable")))
	v := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go v.Run(ctx, client)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return v.Synced(), nil
	}); err != nil {
		t.Fatal("view never synced")
	}
	if got := v.Counts(rs); got["canary"] != 1 || got["stable"] != 1 {
		t.Fatalf("counts after the first list: %v", got)
	}
	if _, err := client.Resource(podResource).Namespace("shop").(metadatafake.MetadataClient).CreateFake(typed(pod(rs, "c", "canary")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return v.Counts(rs)["canary"] == 2, nil
	}); err != nil {
		t.Fatalf("a new pod was not counted: %v", v.Counts(rs))
	}
}
