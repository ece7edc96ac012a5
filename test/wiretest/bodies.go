// Package wiretest holds what tests of the admission wire format share
// with the handler tests: the typed-decode oracle, a generator of
// AdmissionReview-shaped bodies, and fixture bodies. Only tests import it.
package wiretest

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/test/podgen"
)

// EdgeCases are bodies written to hit one rule each of the decoder.
var EdgeCases = []string{
	``, ` `, `null`, `true`, `"x"`, `1`, `[]`, `{}`, `{} {}`, `{}x`, "\ufeff{}",
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"DELETE"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"DELETE","object":null}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"metadata":null}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":5}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":[]}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"kind":5}}}`,
	// Repeated keys: last scalar wins, null leaves a string and a raw
	// object alone, maps and objects merge, null clears maps, slices and
	// the request.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":null,"object":{"metadata":{"labels":{"a":"1"},"labels":{"b":null}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{"a":"1"},"labels":null}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","resource":{"group":"g"},"resource":{"version":"v1"},"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":null}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":null,"request":{"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":{"namespace":"n"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"name":"x"}},"object":{"metadata":{"labels":{"a":"b"}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":5}},"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","dryRun":true,"dryRun":null,"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"name":"x"}},"object":null,"oldObject":{},"oldObject":null}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"kind":5},"object":null}}`,
	// Slices fill in place: stale elements of a longer earlier array
	// come back when a later array grows again.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[{"kind":"A","controller":true},{"name":"b"},{"kind":"C"}],"ownerReferences":[{"name":"x"}],"ownerReferences":[null,null,{"name":"z"}]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[{"kind":"A"}],"ownerReferences":[]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[5,{"controller":"yes"}]}}}}`,
	// Keys match case-sensitively, as kube-apiserver's decoder matches
	// them: other spellings are unknown fields. Escapes still spell a name.
	`{"APIVERSION":"admission.k8s.io/v1","\u212aind":"AdmissionReview","Request":{"\u0075id":"a","OBJECT":{"METADATA":{"LABELS":{"K":"V"},"name\u017f":"x","Name":"y"}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"\u0075id":"a","UID":"b","Object":5,"object":{"Metadata":5,"metadata":{"LABELS":{"K":"V"},"name\u017f":"x","Name":"y","n\u0061me":"z"}}}}`,
	// Wrong types in fields the router does not read are not its concern.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","userInfo":5,"object":{"metadata":{"uid":[],"managedFields":7}}}}`,
	// Strings: escapes, surrogates, invalid UTF-8 (U+FFFD, as encoding/json).
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"\\ud83d\\ude00\\ud800\\u0041\\udc00\\ud800\\ud800\xff\xc3\xed\xa0\x80\",\"object\":{\"metadata\":{\"labels\":{\"\xff\":\"\\u2028\",\"\\ufffd\":\"x\"}}}}}",
	// Wrong types: the first one is reported, envelope before object.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{"a":1},"name":true}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5,"dryRun":"x","object":{"metadata":{"labels":[]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":[]}}},"kind":[1,}`,
	// Numbers and literals are checked even where they are skipped.
	`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":.5}`, `{"x":tru}`, `{"x":nul}`, `{"x":[1,]}`, `{"x":{"a":1,}}`, `{"x":"\u12"}`, "{\"x\":\"\x01\"}",
	`{"x":-0.0e+0,"y":1E-7,"z":[true,false,null,{}]}`,
}

// FixtureBodies are the reviews the handler tests send: pods and a
// namespace built with k8s.io/api types, then a pod of each podgen shape.
func FixtureBodies(t testing.TB) [][]byte {
	bodies := [][]byte{
		ReviewBody(t, "pods", "CREATE", "shop", DeploymentPod("shop", "web", "5d8f7c", nil), false),
		ReviewBody(t, "pods", "CREATE", "shop", DeploymentPod("shop", "web", "5d8f7c", map[string]string{"istio.io/rev": "canary"}), true),
		ReviewBody(t, "namespaces", "UPDATE", "", DeploymentPod("shop", "web", "1", nil), false),
	}
	for _, s := range podgen.Shapes {
		bodies = append(bodies, podgen.Review(podgen.Pod(s, 0), "uid-1"))
	}
	return bodies
}

// ReviewBody wraps obj in an AdmissionReview request as kube-apiserver
// sends it.
func ReviewBody(t testing.TB, resource, operation, namespace string, obj runtime.Object, dryRun bool) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "uid-1",
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: resource},
			Namespace: namespace,
			Operation: admissionv1.Operation(operation),
			Object:    runtime.RawExtension{Raw: raw},
			DryRun:    &dryRun,
		},
	}
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// DeploymentPod is a pod of Deployment deployment as its ReplicaSet
// creates it: generateName, pod-template-hash and the controller owner.
func DeploymentPod(ns, deployment, hash string, labels map[string]string) *corev1.Pod {
	ctrl := true
	l := map[string]string{"app": deployment, "pod-template-hash": hash}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: deployment + "-" + hash + "-", Namespace: ns, Labels: l,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deployment + "-" + hash, UID: "rs-uid", Controller: &ctrl}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
}
