package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"strconv"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Resources of the webhook configurations whose caBundle is patched.
const (
	resourceMWC = "mutatingwebhookconfigurations"
	resourceVWC = "validatingwebhookconfigurations"
)

// webhookState is one webhook of a configuration, as far as caBundle
// patching cares.
type webhookState struct {
	Name     string
	CABundle []byte
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// caBundlePatch returns the JSON Patch that sets every webhook's caBundle
// to bundle, or nil when every webhook already carries exactly these bytes
// (so an unchanged bundle never writes, never bumps resourceVersion, and
// never wakes up the other replicas' watches). Each replace is preceded by
// a test of the webhook's name at that index, so a concurrent edit that
// reorders the webhooks makes the patch fail instead of landing on the
// wrong one.
func caBundlePatch(webhooks []webhookState, bundle []byte) []byte {
	var ops []jsonPatchOp
	for i, wh := range webhooks {
		if bytes.Equal(wh.CABundle, bundle) {
			continue
		}
		base := "/webhooks/" + strconv.Itoa(i)
		ops = append(ops,
			jsonPatchOp{Op: "test", Path: base + "/name", Value: wh.Name},
			// "add" sets the member whether or not it exists; a []byte
			// value encodes as base64, as the API expects.
			jsonPatchOp{Op: "add", Path: base + "/clientConfig/caBundle", Value: bundle})
	}
	if len(ops) == 0 {
		return nil
	}
	out, _ := json.Marshal(ops) // plain structs: cannot fail
	return out
}

// bundlePatcher keeps the caBundle of the router's own webhook
// configurations, found by name, equal to the trust bundle. It never
// touches another configuration, so Istio's and other webhooks are safe.
type bundlePatcher struct {
	client kubernetes.Interface
	// name of both the MutatingWebhookConfiguration and the
	// ValidatingWebhookConfiguration.
	name string
}

// configState is what the patcher saw of one configuration.
type configState struct {
	Resource string
	// Found is false when the configuration does not exist.
	Found    bool
	Webhooks []webhookState
}

// trusts reports whether every webhook of a found configuration trusts
// cert; a missing configuration calls nobody, so it trusts vacuously.
func (s configState) trusts(cert *x509.Certificate) bool {
	for _, wh := range s.Webhooks {
		if !bundleTrusts(wh.CABundle, cert) {
			return false
		}
	}
	return true
}

// read fetches the state of both configurations.
func (p *bundlePatcher) read(ctx context.Context) ([]configState, error) {
	mwc, err := p.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, p.name, metav1.GetOptions{})
	ms := configState{Resource: resourceMWC, Found: err == nil}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, p.wrap("get", resourceMWC, err)
	}
	if err == nil {
		ms.Webhooks = mutatingStates(mwc.Webhooks)
	}
	vwc, err := p.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, p.name, metav1.GetOptions{})
	vs := configState{Resource: resourceVWC, Found: err == nil}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, p.wrap("get", resourceVWC, err)
	}
	if err == nil {
		vs.Webhooks = validatingStates(vwc.Webhooks)
	}
	return []configState{ms, vs}, nil
}

// sync patches every configuration in states whose webhooks do not carry
// bundle, and returns how many it patched.
func (p *bundlePatcher) sync(ctx context.Context, states []configState, bundle []byte) (int, error) {
	patched := 0
	for _, s := range states {
		patch := caBundlePatch(s.Webhooks, bundle)
		if !s.Found || patch == nil {
			continue
		}
		var err error
		switch s.Resource {
		case resourceMWC:
			_, err = p.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, p.name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		case resourceVWC:
			_, err = p.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, p.name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		}
		if err != nil {
			return patched, p.wrap("patch", s.Resource, err)
		}
		patched++
	}
	return patched, nil
}

func (p *bundlePatcher) wrap(verb, resource string, err error) error {
	return &APIError{Verb: verb, Resource: resource + ".admissionregistration.k8s.io", Name: p.name, Err: err}
}

func mutatingStates(whs []admissionregv1.MutatingWebhook) []webhookState {
	out := make([]webhookState, len(whs))
	for i, wh := range whs {
		out[i] = webhookState{Name: wh.Name, CABundle: wh.ClientConfig.CABundle}
	}
	return out
}

func validatingStates(whs []admissionregv1.ValidatingWebhook) []webhookState {
	out := make([]webhookState, len(whs))
	for i, wh := range whs {
		out[i] = webhookState{Name: wh.Name, CABundle: wh.ClientConfig.CABundle}
	}
	return out
}

// fieldManager names the router in managedFields, so `kubectl get -o yaml
// --show-managed-fields` shows who last wrote caBundle.
const fieldManager = "canary-router"
