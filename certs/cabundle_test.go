package certs

import (
	"bytes"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestCABundlePatch(t *testing.T) {
	bundle := []byte("-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n")
	old := []byte("old")
	cases := []struct {
		name     string
		webhooks []webhookState
		wantNil  bool
	}{
		{"no webhooks", nil, true},
		{"all current", []webhookState{{"a", bundle}, {"b", bundle}}, true},
		{"empty bundle", []webhookState{{"a", nil}}, false},
		{"one stale", []webhookState{{"a", bundle}, {"b", old}}, false},
		{"all stale", []webhookState{{"a", old}, {"b", nil}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			patch := caBundlePatch(c.webhooks, bundle)
			if (patch == nil) != c.wantNil {
				t.Fatalf("patch = %s, want nil=%v", patch, c.wantNil)
			}
			if patch == nil {
				return
			}
			// Apply the patch to the configuration it was made for and
			// check the result, not the ops.
			mwc := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "canary-router"}}
			for _, wh := range c.webhooks {
				mwc.Webhooks = append(mwc.Webhooks, admissionregv1.MutatingWebhook{Name: wh.Name, ClientConfig: admissionregv1.WebhookClientConfig{CABundle: wh.CABundle}})
			}
			out := applyJSONPatch(t, mwc, patch)
			for _, wh := range out.Webhooks {
				if !bytes.Equal(wh.ClientConfig.CABundle, bundle) {
					t.Errorf("webhook %s caBundle %q after patch", wh.Name, wh.ClientConfig.CABundle)
				}
			}
			// A reordered configuration must make the patch fail, not land
			// on the wrong webhook.
			if len(mwc.Webhooks) == 2 && mwc.Webhooks[0].Name != mwc.Webhooks[1].Name {
				mwc.Webhooks[0], mwc.Webhooks[1] = mwc.Webhooks[1], mwc.Webhooks[0]
				if err := tryJSONPatch(mwc, patch); err == nil {
					t.Error("patch applied to reordered webhooks; want the name test to fail")
				}
			}
		})
	}
}

func applyJSONPatch(t *testing.T, mwc *admissionregv1.MutatingWebhookConfiguration, patch []byte) *admissionregv1.MutatingWebhookConfiguration {
	t.Helper()
	doc, _ := json.Marshal(mwc)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	doc, err = p.Apply(doc)
	if err != nil {
		t.Fatalf("apply %s: %v", patch, err)
	}
	var out admissionregv1.MutatingWebhookConfiguration
	if err := json.Unmarshal(doc, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func tryJSONPatch(mwc *admissionregv1.MutatingWebhookConfiguration, patch []byte) error {
	doc, _ := json.Marshal(mwc)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return err
	}
	_, err = p.Apply(doc)
	return err
}

func TestBundlePatcherWritesOnlyWhenDifferent(t *testing.T) {
	ctx := t.Context()
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-router"},
		Webhooks:   []admissionregv1.MutatingWebhook{{Name: "pods.canary-router.io"}, {Name: "namespaces.canary-router.io"}},
	}
	other := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
		Webhooks:   []admissionregv1.MutatingWebhook{{Name: "sidecar-injector.istio.io", ClientConfig: admissionregv1.WebhookClientConfig{CABundle: []byte("istio")}}},
	}
	client := fake.NewClientset(mwc, other)
	p := &bundlePatcher{client: client, name: "canary-router"}
	bundle := []byte("bundle-1")

	sync := func() int {
		t.Helper()
		states, err := p.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := p.sync(ctx, states, bundle)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	patches := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}

	if n := sync(); n != 1 || patches() != 1 {
		t.Fatalf("first sync patched %d configurations in %d calls, want 1 (the VWC is missing, which is fine)", n, patches())
	}
	if n := sync(); n != 0 || patches() != 1 {
		t.Fatalf("second sync with the same bundle patched %d (%d calls in all), want no write", n, patches())
	}
	got, _ := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "canary-router", metav1.GetOptions{})
	for _, wh := range got.Webhooks {
		if string(wh.ClientConfig.CABundle) != "bundle-1" {
			t.Errorf("%s caBundle %q", wh.Name, wh.ClientConfig.CABundle)
		}
	}
	istio, _ := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{})
	if string(istio.Webhooks[0].ClientConfig.CABundle) != "istio" {
		t.Error("patched a configuration that is not the router's")
	}

	// Someone re-applies the manifests with an empty caBundle.
	got.Webhooks[1].ClientConfig.CABundle = nil
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := sync(); n != 1 || patches() != 2 {
		t.Fatalf("after a reset: patched %d, %d calls; want the configuration patched again", n, patches())
	}
	bundle = []byte("bundle-2")
	if n := sync(); n != 1 || patches() != 3 {
		t.Fatalf("new bundle: patched %d, %d calls; want one patch", n, patches())
	}
}
