package fakeistio

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Namespace holds the stand-in istiod Services. Nothing serves them: the
// router's health gate reads only their EndpointSlices, written here by
// hand (the Services have no selector, so no controller writes them).
const Namespace = "istio-system"

// ServiceName is istiod's Service for a revision: istiod-<rev>, or istiod
// for a non-revisioned install (revision "default").
func ServiceName(rev string) string {
	if rev == "default" {
		return "istiod"
	}
	return "istiod-" + rev
}

// RegisterIstiod creates, for each revision, its istiod Service with a
// ready endpoint, as a running istiod has: without it the router's health
// gate takes the revision as down and routes nothing to it.
func RegisterIstiod(ctx context.Context, c kubernetes.Interface, revisions ...string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s: %w", Namespace, err)
	}
	for _, rev := range revisions {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName(rev), Namespace: Namespace, Labels: map[string]string{"istio.io/rev": rev}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443}}},
		}
		if _, err := c.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Service %s: %w", svc.Name, err)
		}
		if err := SetIstiodReady(ctx, c, rev, true); err != nil {
			return err
		}
	}
	return nil
}

// SetIstiodReady writes the EndpointSlice of a revision's istiod with one
// endpoint whose ready condition is ready.
func SetIstiodReady(ctx context.Context, c kubernetes.Interface, rev string, ready bool) error {
	slices := c.DiscoveryV1().EndpointSlices(Namespace)
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(rev) + "-stand-in", Namespace: Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: ServiceName(rev),
			// Not the EndpointSlice controller's: it leaves the slice alone.
			discoveryv1.LabelManagedBy: "canary-router-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
	}
	cur, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		_, err = slices.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("EndpointSlice of %s: %w", ServiceName(rev), err)
	}
	return nil
}

// Install registers a stand-in Istio with the given revisions: an
// injector config per revision, served on the revision's own listener, the default revision tag pointing at
// defaultRev (when not empty), and a ready istiod for each revision.
func (in *Injectors) Install(ctx context.Context, c kubernetes.Interface, defaultRev string, revisions ...string) error {
	mwcs := c.AdmissionregistrationV1().MutatingWebhookConfigurations()
	for _, rev := range revisions {
		base, err := in.RevisionURL(rev)
		if err != nil {
			return err
		}
		if _, err := mwcs.Create(ctx, InjectorConfig(base, in.CABundle, rev, ""), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("registering the %s injector: %w", rev, err)
		}
	}
	if defaultRev != "" {
		base, err := in.RevisionURL(defaultRev)
		if err != nil {
			return err
		}
		if _, err := mwcs.Create(ctx, InjectorConfig(base, in.CABundle, defaultRev, "default"), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("registering the default tag: %w", err)
		}
	}
	return RegisterIstiod(ctx, c, revisions...)
}
