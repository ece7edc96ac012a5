package webhook

import (
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/wiretest"
)

// fuzzPolicies are the policies FuzzAdmissionHTTP serves under: each
// granularity, gateways routed, and none loaded (pods are refused).
var fuzzPolicies = []string{
	testPolicy,
	"granularity: pod\nseed: fuzz\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\ngateways: route\nnamespaces: {exclude: [skip]}\n",
	"granularity: namespace\nseed: fuzz\ntargets: [{revision: stable, weight: 10}, {revision: canary, weight: 90}]\n",
	"",
}

// fuzzEndpoint is one handler under fuzzing.
type fuzzEndpoint struct {
	h        http.Handler
	path     string
	resource string
}

func fuzzEndpoints(tb testing.TB) []fuzzEndpoint {
	var out []fuzzEndpoint
	for _, doc := range fuzzPolicies {
		f := newFixture(tb, doc)
		out = append(out,
			fuzzEndpoint{f.admitter.PodHandler(), PathPods, resourcePods},
			fuzzEndpoint{f.admitter.NamespaceHandler(), PathNamespaces, resourceNamespaces})
	}
	return out
}

// FuzzAdmissionHTTP sends any body through the real http.Handler of the
// pod and namespace endpoints under each policy. Every answer must be a
// well-formed AdmissionReview echoing the request UID, 4xx for a body
// that is not a valid review, never a panic or an empty 200; a patch
// touches only /metadata/labels and /metadata/annotations, and, for the
// object as kube-apiserver would serialise it, applies cleanly with
// evanphx/json-patch and changes nothing but the router's own keys.
func FuzzAdmissionHTTP(f *testing.F) {
	for i, body := range fuzzSeedBodies(f) {
		f.Add(uint8(i), body)
	}
	g := wiretest.NewGen(3)
	for i := range 100 {
		f.Add(uint8(i), g.Review())
	}
	endpoints := fuzzEndpoints(f)
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		e := endpoints[int(sel)%len(endpoints)]
		serveAdmission(t, e.h, e.path, body)
		checkCanonical(t, e.h, e.path, e.resource, body)
	})
}

// fuzzSeedBodies are reviews the router acts on (pods and namespaces of
// every kind the policy distinguishes), the decoder's edge cases, and the
// bad-input table's bodies.
func fuzzSeedBodies(tb testing.TB) [][]byte {
	var bodies [][]byte
	pods := []*corev1.Pod{
		deploymentPod("shop", "web", "5d8f7c", nil),
		deploymentPod("shop", "web", "5d8f7c", map[string]string{"istio.io/rev": "canary"}),
		deploymentPod("shop", "web", "5d8f7c", map[string]string{"sidecar.istio.io/inject": "false"}),
		deploymentPod("kube-system", "dns", "1", nil),
		deploymentPod("canary-router-system", "router", "1", nil),
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "shop"}},
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "shop",
			Labels: map[string]string{"sidecar.istio.io/inject": "true", "istio": "ingressgateway"}, Annotations: map[string]string{"inject.istio.io/templates": "gateway"}}},
	}
	for _, p := range pods {
		for _, op := range []string{"CREATE", "UPDATE"} {
			bodies = append(bodies, reviewBody(tb, "pods", op, p.Namespace, p, false))
		}
	}
	for _, labels := range []map[string]string{nil, {"istio-injection": "enabled"}, {"istio-injection": "disabled"},
		{"istio.io/rev": "stable"}, {"canary-router.io/injection": "enabled", "a/b~c": "d"}} {
		ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: labels}}
		bodies = append(bodies, reviewBody(tb, "namespaces", "CREATE", "", ns, false))
	}
	bodies = append(bodies, wiretest.FixtureBodies(tb)...)
	for _, c := range wiretest.EdgeCases {
		bodies = append(bodies, []byte(c))
	}
	for _, c := range badInputBodies(tb) {
		if len(c) < 64<<10 {
			bodies = append(bodies, c)
		}
	}
	return bodies
}

// badInputBodies are the request bodies of the bad-input tables.
func badInputBodies(tb testing.TB) [][]byte {
	valid := string(reviewBody(tb, "pods", "CREATE", "shop", deploymentPod("shop", "web", "1", nil), false))
	return [][]byte{
		[]byte(valid[:len(valid)/2]),
		[]byte(strings.Replace(valid, `"operation":"CREATE"`, `"operation":"FROB"`, 1)),
		[]byte(strings.Replace(valid, `"kind":"Pod"`, `"kind":"Namespace"`, 1)),
		[]byte(strings.Replace(valid, `"app":"web"`, "\"app\":\"w\xffb\"", 1)),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}}}}}`),
	}
}
