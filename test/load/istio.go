package main

import (
	"context"
	"fmt"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const istioNamespace = "istio-system"

// registerIstio makes each revision look installed and healthy to the
// router: an injector config istio-sidecar-injector-<rev> labelled
// istio.io/rev=<rev>, and Service istiod-<rev> with a ready endpoint. The
// configs carry no webhooks, so the apiserver calls no injector: the
// pod-creation measurement is the router's overhead alone, not that of a
// stand-in injector.
func registerIstio(ctx context.Context, c kubernetes.Interface, revisions ...string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istioNamespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	ready := true
	for _, rev := range revisions {
		mwc := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{
			Name: "istio-sidecar-injector-" + rev, Labels: map[string]string{"istio.io/rev": rev},
		}}
		if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("injector config for %s: %w", rev, err)
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev, Namespace: istioNamespace, Labels: map[string]string{"istio.io/rev": rev}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443}}},
		}
		if _, err := c.CoreV1().Services(istioNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("istiod Service for %s: %w", rev, err)
		}
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev + "-load", Namespace: istioNamespace, Labels: map[string]string{
				discoveryv1.LabelServiceName: "istiod-" + rev,
				discoveryv1.LabelManagedBy:   "canary-router-load",
			}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
		if _, err := c.DiscoveryV1().EndpointSlices(istioNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("istiod EndpointSlice for %s: %w", rev, err)
		}
	}
	return nil
}
