// Package istiotest builds Istio states for tests of the packages that
// read them.
package istiotest

import (
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/istio"
)

// State is a State in istio-system with every named revision's istiod
// ready; the router's own webhook configuration is "canary-router".
func State(configs []istio.Config, ready ...string) *istio.State {
	var eps []istio.Endpoints
	for _, r := range ready {
		svc := "istiod-" + r
		if r == istio.Default {
			svc = "istiod"
		}
		eps = append(eps, istio.Endpoints{Service: svc, Ready: true})
	}
	return istio.NewState(configs, eps, "istio-system", "canary-router")
}

// InjectorObjects are Istio's objects for one revision, for a fake
// clientset: its injector webhook configuration (no default tag) and a
// ready istiod EndpointSlice in istio-system.
func InjectorObjects(rev string) []runtime.Object {
	ready := true
	return []runtime.Object{
		&admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + rev, Labels: map[string]string{istio.LabelRev: rev}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev + "-x", Namespace: "istio-system",
			Labels: map[string]string{discoveryv1.LabelServiceName: "istiod-" + rev}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
	}
}
