package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook"
)

// The wiring serve uses, end to end in process: pods reach a real pod
// view through its informer, the validator dry-runs an UPDATE of the
// policy ConfigMap with the migration's planner, and kubectl would print
// the count.
func TestPolicyEditWarnsWithTheDryRunCount(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	yes := true
	var objs []runtime.Object
	// 8 Deployments of 2 pods each, every pod injected by stable.
	for d := range 8 {
		for p := range 2 {
			hash := fmt.Sprintf("h%d", d)
			objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d-%d", d, p), Namespace: "shop",
					Labels:          map[string]string{"pod-template-hash": hash, policy.LabelIstioRev: "stable"},
					Annotations:     map[string]string{"sidecar.istio.io/status": "{}", "istio.io/rev": "stable", "canary-router.io/decision": "x"},
					OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: fmt.Sprintf("web-%d-%s", d, hash), Controller: &yes}}}})
		}
	}
	view := podview.New(podview.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go view.Run(ctx, metadatafake.NewSimpleMetadataClient(scheme, objs...))
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return view.Synced(), nil
	}); err != nil {
		t.Fatal("pod view never synced")
	}
	state := istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	}, []istio.Endpoints{{Service: "istiod-stable", Ready: true}, {Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
	v := &webhook.PolicyValidator{Namespace: "canary-router-system", Name: "canary-router-policy",
		Restarts: &restartEstimator{pods: view, istio: func() *istio.State { return state }, ownNamespace: "canary-router-system",
			namespaces: fakeNamespaces{synced: true, list: []nsview.Namespace{{Name: "shop", Labels: map[string]string{policy.LabelOptIn: policy.OptInEnabled}}}}},
		WarnRestartShare: webhook.DefaultWarnRestartShare}
	reg := prometheus.NewRegistry()
	metrics := webhook.NewMetrics(reg, "test")
	a := webhook.NewAdmitter(webhook.AdmitterConfig{Store: inforce.NewStore(time.Now, nil, nil), Metrics: metrics, Log: zap.NewNop(),
		Draw: func() uint64 { return 0 }, OwnNamespace: "canary-router-system"})

	cm := func(doc string) []byte {
		raw, err := json.Marshal(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "canary-router-policy", Namespace: "canary-router-system"},
			Data:       map[string]string{webhook.PolicyKey: doc}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Operation: admissionv1.Update, Namespace: "canary-router-system",
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"},
			Object:    runtime.RawExtension{Raw: cm("granularity: workload\ntargets: [{revision: canary, weight: 100}]\nmigration: {}\n")},
			OldObject: runtime.RawExtension{Raw: cm("granularity: workload\ntargets: [{revision: stable, weight: 100}]\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, webhook.PathPolicy, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	a.PolicyHandler(v).ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("HTTP %d, body %s: %v", rec.Code, rec.Body.String(), err)
	}
	want := "this edit would restart 8 of 8 workloads (100%) through the migration, above the 25% warn threshold (serve --warn-restart-share)"
	found := false
	for _, w := range out.Response.Warnings {
		found = found || w == want
	}
	if !out.Response.Allowed || !found {
		t.Fatalf("allowed %v (%+v), warnings %q; want %q", out.Response.Allowed, out.Response.Result, out.Response.Warnings, want)
	}
}
