package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// istioNamespace holds the stand-in istiod Services. Nothing serves them:
// the router's health gate reads only their EndpointSlices, which the
// tests write by hand (the control plane runs no EndpointSlice
// controller, and the Services have no selector, so nothing else does).
const istioNamespace = "istio-system"

// registerIstiod creates, for each revision, Service istiod-<rev> with a
// ready endpoint, as a running istiod has: without it the router's health
// gate takes the revision as down and routes nothing to it.
func registerIstiod(ctx context.Context, c kubernetes.Interface, revisions ...string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istioNamespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s: %w", istioNamespace, err)
	}
	for _, rev := range revisions {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev, Namespace: istioNamespace, Labels: map[string]string{"istio.io/rev": rev}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443}}},
		}
		if _, err := c.CoreV1().Services(istioNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Service %s: %w", svc.Name, err)
		}
		if err := setIstiodReady(ctx, c, rev, true); err != nil {
			return err
		}
	}
	return nil
}

// setIstiodReady writes the EndpointSlice of istiod-<rev> with one
// endpoint whose ready condition is ready.
func setIstiodReady(ctx context.Context, c kubernetes.Interface, rev string, ready bool) error {
	slices := c.DiscoveryV1().EndpointSlices(istioNamespace)
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev + "-e2e", Namespace: istioNamespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: "istiod-" + rev,
			discoveryv1.LabelManagedBy:   "canary-router-e2e",
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
		return fmt.Errorf("EndpointSlice of istiod-%s: %w", rev, err)
	}
	return nil
}

// istiodReady sets istiod-<rev>'s readiness for the rest of the test and
// restores it to ready afterwards, since the other scenarios share it.
func istiodReady(t *testing.T, rev string, ready bool) {
	t.Helper()
	if err := setIstiodReady(ctxT(t, 30*time.Second), env.cluster.Client, rev, ready); err != nil {
		t.Fatal(err)
	}
	if !ready {
		t.Cleanup(func() {
			if err := setIstiodReady(context.Background(), env.cluster.Client, rev, true); err != nil {
				t.Errorf("restoring istiod-%s: %v", rev, err)
			}
		})
	}
}

// dryRunPod asks the API server what would become of a bare pod in ns, so
// a test can wait for the router to see a change without creating pods.
func dryRunPod(ctx context.Context, ns string) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "dry-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
	return env.cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// waitRouted waits until a dry-run pod in ns gets a decision for which ok
// is true: the router's informers have caught up with a change.
func waitRouted(t *testing.T, ns, what string, ok func(d routed, err error) bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := dryRunPod(ctx, ns)
		var d routed
		if err == nil {
			d, _ = routedOf(t, p.ObjectMeta)
		}
		last = fmt.Sprintf("decision %+v, error %v", d, err)
		return ok(d, err), nil
	})
	if err != nil {
		t.Fatalf("router never saw %s: last %s", what, last)
	}
}

// warnings collects the API server's warning headers for a client.
type warnings struct{ seen []string }

// HandleWarningHeader implements rest.WarningHandler.
func (w *warnings) HandleWarningHeader(_ int, _ string, text string) { w.seen = append(w.seen, text) }

func (w *warnings) mention(sub string) bool {
	for _, s := range w.seen {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// routed is the router's decision annotation with the fields the routing
// safety scenarios read.
type routed struct {
	Revision     string `json:"revision"`
	Reason       string `json:"reason"`
	Unit         string `json:"unit"`
	TagRevision  string `json:"tagRevision"`
	Avoided      string `json:"avoided"`
	Cause        string `json:"cause"`
	BalancedOver string `json:"balancedOver"`
	PodView      string `json:"podView"`
}

func routedOf(t *testing.T, m metav1.ObjectMeta) (routed, bool) {
	t.Helper()
	raw, ok := m.Annotations["canary-router.io/decision"]
	if !ok {
		return routed{}, false
	}
	var d routed
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("%s: decision annotation %q: %v", m.Name, raw, err)
	}
	return d, true
}
