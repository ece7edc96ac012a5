package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/canary-router/canary-router/view/podview"
)

// podviewMemory measures what the router's live pod view keeps on the
// heap: the informer's trimmed pods and the per-unit counts. The source is
// synthetic (client-go's fake metadata client holding realistic injected
// Deployment pods, managedFields included); its own copies are part of the
// baseline, so the figure is the view's cost alone.
func podviewMemory(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("pods", "10000,50000,100000", "pod counts to measure, comma-separated")
	md := fs.String("md", "", "also write the results as Markdown to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var rows []string
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-pods: %q is not a pod count", s)
		}
		bytes, took, err := measureView(n)
		if err != nil {
			return err
		}
		row := fmt.Sprintf("| %d | %.1f MB | %d | %s |", n, float64(bytes)/1e6, bytes/int64(n), took.Round(time.Millisecond))
		fmt.Fprintf(stdout, "pod view: %d pods: %.1f MB on the heap, %d bytes per pod (first list and sync %s)\n",
			n, float64(bytes)/1e6, bytes/int64(n), took.Round(time.Millisecond))
		rows = append(rows, row)
	}
	if *md == "" {
		return nil
	}
	doc := "Command: `bin/canary-router-load podview -pods " + *sizes + "` (synthetic informer source: client-go's fake metadata client)\n\n" +
		"| pods | heap held by the view | bytes per pod | first list and sync |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	return os.WriteFile(*md, []byte(doc), 0o644)
}

// measureView syncs a new view over n pods and returns the heap it holds.
func measureView(n int) (int64, time.Duration, error) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		return 0, 0, err
	}
	objs := syntheticPods(n)
	client := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	// The fake client keeps its own copies; only its tracker should hold
	// the pods from here on.
	objs = nil
	before := heapAfterGC()

	v := podview.New(podview.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go v.Run(ctx, client)
	for !v.Synced() {
		if time.Since(start) > 5*time.Minute {
			return 0, 0, errors.New("pod view did not sync in 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	held := heapAfterGC() - before
	if got := totalPods(v); got != n {
		return 0, 0, fmt.Errorf("pod view counts %d pods, want %d", got, n)
	}
	runtime.KeepAlive(v)
	runtime.KeepAlive(client)
	return held, took, nil
}

func totalPods(v *podview.View) int {
	n := 0
	for _, rc := range v.Revisions() {
		n += rc.Pods
	}
	return n
}

func heapAfterGC() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

var podGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

// syntheticPods returns n injected Deployment pods' metadata as the
// apiserver serves it: 10 replicas per ReplicaSet, 50 ReplicaSets per
// namespace, with Istio's annotations and two managedFields entries.
func syntheticPods(n int) []kruntime.Object {
	yes := true
	status := `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["workload-socket","credential-socket","workload-certs","istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"%s"}`
	fields := metav1.FieldsV1{Raw: []byte(strings.Repeat(`{"f:metadata":{"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{}}}}}`, 3))}
	out := make([]kruntime.Object, n)
	for i := range n {
		rs := i / 10
		rev := "stable"
		if i%10 < 3 {
			rev = "canary"
		}
		hash := fmt.Sprintf("%09x", rs*7919)
		app := fmt.Sprintf("app-%04d", rs)
		p := &metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{APIVersion: podGVK.GroupVersion().String(), Kind: podGVK.Kind},
			ObjectMeta: metav1.ObjectMeta{
				Name:            fmt.Sprintf("%s-%s-%05d", app, hash, i),
				GenerateName:    app + "-" + hash + "-",
				Namespace:       fmt.Sprintf("ns-%03d", rs/50),
				UID:             types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)),
				ResourceVersion: strconv.Itoa(1000 + i),
				Labels: map[string]string{"app": app, "pod-template-hash": hash, "istio.io/rev": rev,
					"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app, "service.istio.io/canonical-revision": "latest"},
				Annotations: map[string]string{"sidecar.istio.io/status": fmt.Sprintf(status, rev), "istio.io/rev": rev,
					"kubectl.kubernetes.io/default-container": "app", "canary-router.io/decision": `{"revision":"` + rev + `","reason":"balanced","unit":"ReplicaSet/` + app + `-` + hash + `","generation":3,"policy":"9f2c01ab"}`},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-" + hash,
					UID: "11111111-0000-0000-0000-000000000000", Controller: &yes, BlockOwnerDeletion: &yes}},
				ManagedFields: []metav1.ManagedFieldsEntry{
					{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: &fields},
					{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: &fields, Subresource: "status"},
				},
			},
		}
		out[i] = p
	}
	return out
}
