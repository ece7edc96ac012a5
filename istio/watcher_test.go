package istio

import (
	"context"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// mwc is an injector config with Istio's object-selector webhook for the
// tag in its istio.io/tag label, else the revision in its istio.io/rev.
func mwc(name string, labels map[string]string) *admissionregv1.MutatingWebhookConfiguration {
	url := "https://istiod.example/inject"
	match := labels[LabelRev]
	if tag, ok := labels[LabelTag]; ok {
		match = tag
	}
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:         "rev.object.sidecar-injector.istio.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: []byte("ca")},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: LabelRev, Operator: metav1.LabelSelectorOpIn, Values: []string{match}},
			}},
			SideEffects: ptr(admissionregv1.SideEffectClassNone),
		}},
	}
}

func slice(service string, ready ...*bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-abcde", Namespace: "istio-system",
			Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, r := range ready {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: r}})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestWatcherFollowsTheCluster(t *testing.T) {
	kube := kubefake.NewClientset(slice("istiod-stable", ptr(false), ptr(true)), slice("istiod-canary", ptr(false)),
		mwc("istio-sidecar-injector-stable", map[string]string{LabelRev: "stable"}),
		mwc("istio-revision-tag-prod", map[string]string{LabelRev: "stable", LabelTag: "prod"}),
	)
	mwcs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	changes := make(chan *State, 16)
	w := NewWatcher(WatcherOptions{Client: kube, Namespace: "istio-system", OwnConfig: "zz-router",
		OnChange: func(_, next *State) { changes <- next }})
	if err := w.Ready(); err == nil {
		t.Fatal("ready before the first list")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	next := func(what string, ok func(*State) bool) *State {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-changes:
				if ok(s) {
					return s
				}
			case <-deadline:
				t.Fatalf("no State with %s", what)
			}
		}
	}
	s := next("the first lists", func(*State) bool { return true })
	if err := w.Ready(); err != nil {
		t.Fatalf("not ready after the first State: %v", err)
	}
	if st := s.Target("prod"); !st.Available() || st.Revision != "stable" || !st.Tag {
		t.Errorf("prod = %+v, want an available tag on stable", st)
	}
	if st := s.Target("canary"); st.Cause != CauseNotFound {
		t.Errorf("canary = %+v, want not-found", st)
	}
	if len(s.Misordered()) != 2 {
		t.Errorf("misordered %v, want both injector configs", s.Misordered())
	}

	// The canary revision appears, then its istiod turns ready.
	if _, err := mwcs.Create(ctx, mwc("istio-sidecar-injector-canary", map[string]string{LabelRev: "canary"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	next("canary not ready", func(s *State) bool { return s.Target("canary").Cause == CauseNotReady })
	if _, err := kube.DiscoveryV1().EndpointSlices("istio-system").Update(ctx, slice("istiod-canary", nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	next("canary ready (a nil condition means ready)", func(s *State) bool { return s.Target("canary").Available() })

	// The tag moves to canary: delete and re-create, as istioctl tag set does.
	if err := mwcs.Delete(ctx, "istio-revision-tag-prod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	next("prod gone", func(s *State) bool { return s.Target("prod").Cause == CauseNotFound })
	if _, err := mwcs.Create(ctx, mwc("istio-revision-tag-prod", map[string]string{LabelRev: "canary", LabelTag: "prod"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s = next("prod on canary", func(s *State) bool { return s.Target("prod").Revision == "canary" })
	pod := labels.Set{LabelRev: "prod"}
	if v := s.InjectedBy(labels.Set{}, pod); !v.Injected() || v.Revision != "canary" || v.Webhook != "istio-revision-tag-prod/rev.object.sidecar-injector.istio.io" {
		t.Errorf("a pod labelled with the moved tag: %+v, want injected by canary through the tag's webhook", v)
	}

	// An unrelated update does not produce a new State.
	if _, err := kube.DiscoveryV1().EndpointSlices("istio-system").Update(ctx, slice("istiod-canary", ptr(true), ptr(true)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case s := <-changes:
		t.Errorf("a State that answers alike was published: %+v", s)
	default:
	}
}

func TestTrimIsIdempotent(t *testing.T) {
	s := slice("istiod-x", ptr(false), nil)
	once, _ := trimEndpointSlice(s)
	twice, _ := trimEndpointSlice(once)
	if got := twice.(*discoveryv1.EndpointSlice); len(got.Endpoints) != 1 || got.Labels[discoveryv1.LabelServiceName] != "istiod-x" {
		t.Errorf("trimmed twice: %+v", got)
	}
	m := mwc("istio-revision-tag-prod", map[string]string{LabelRev: "a", LabelTag: "prod", "app": "sidecar-injector"})
	once, _ = trimConfig(m)
	twice, _ = trimConfig(once)
	got := twice.(*admissionregv1.MutatingWebhookConfiguration)
	if got.Name != m.Name || len(got.Labels) != 2 || got.Labels[LabelTag] != "prod" || len(got.Webhooks) != 1 ||
		got.Webhooks[0].ObjectSelector == nil || string(got.Webhooks[0].ClientConfig.CABundle) != "ca" || got.Webhooks[0].SideEffects != nil {
		t.Errorf("trimmed twice: %+v", got)
	}
	other := mwc("cert-manager-webhook", nil)
	if got, _ := trimConfig(other); len(got.(*admissionregv1.MutatingWebhookConfiguration).Webhooks) != 0 {
		t.Errorf("a config that is not Istio's kept its webhooks: %+v", got)
	}
}
