package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/wiretest"
)

// The properties every admission answer must have, whatever the request:
// shared by FuzzAdmissionHTTP and the property tests in security_test.go.

// admissionResult is one request served through a real handler.
type admissionResult struct {
	code int
	resp *admissionv1.AdmissionResponse
}

// serveAdmission posts body to h as kube-apiserver does and checks the
// answer is a well-formed AdmissionReview: JSON, the right kind, a
// response, HTTP 200 or 4xx (a 5xx here is a panic), a refusal with a
// code and a message, and the UID the request carried.
func serveAdmission(t *testing.T, h http.Handler, path string, body []byte) admissionResult {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Body.Len() == 0 {
		t.Fatalf("HTTP %d with an empty body for request %q", rec.Code, body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON (%v): %q", err, rec.Body.String())
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("response is not an AdmissionReview: %s", rec.Body.String())
	}
	resp := out.Response
	switch {
	case rec.Code == http.StatusOK:
		if !resp.Allowed && (resp.Result == nil || resp.Result.Code < 400 || resp.Result.Message == "") {
			t.Fatalf("refusal without a code and a message: %s", rec.Body.String())
		}
	case rec.Code >= 400 && rec.Code < 500:
		if resp.Allowed || resp.Result == nil || int(resp.Result.Code) != rec.Code || resp.Result.Message == "" {
			t.Fatalf("HTTP %d without a matching refusal: %s", rec.Code, rec.Body.String())
		}
	default:
		t.Fatalf("HTTP %d for request %q: %s", rec.Code, body, rec.Body.String())
	}
	if want, ok := expectedUID(body); ok && string(resp.UID) != want {
		t.Fatalf("uid %q, want %q (request %q)", resp.UID, want, body)
	}
	if _, ok, err := wiretest.DecodeKube(body); ok && err != nil && rec.Code != http.StatusBadRequest {
		t.Fatalf("HTTP %d for a body a typed decode rejects (%v)", rec.Code, err)
	}
	if len(resp.Patch) > 0 {
		if !resp.Allowed {
			t.Fatalf("a refusal carries a patch: %s", rec.Body.String())
		}
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
		}
		checkPatchPaths(t, resp.Patch)
	}
	return admissionResult{code: rec.Code, resp: resp}
}

// expectedUID is the request UID as a typed decode reads it: what the
// response must echo, "" when none could be read; ok is false when the
// typed decode fails on a field the router does not read.
func expectedUID(body []byte) (uid string, ok bool) {
	r, ok, err := wiretest.DecodeKube(body)
	if err == nil {
		return r.UID, ok
	}
	var de *wiretest.DecodeError
	if errors.As(err, &de) {
		return de.UID, ok
	}
	return "", ok
}

// checkPatchPaths fails unless every operation adds or removes a label or
// an annotation, or adds the whole map when the object has none.
func checkPatchPaths(t *testing.T, patch []byte) {
	t.Helper()
	var ops []struct {
		Op   string `json:"op"`
		Path string `json:"path"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil || len(ops) == 0 {
		t.Fatalf("patch %s is not a non-empty list of operations: %v", patch, err)
	}
	if _, err := jsonpatch.DecodePatch(patch); err != nil {
		t.Fatalf("patch %s does not decode: %v", patch, err)
	}
	for _, op := range ops {
		if op.Op != "add" && op.Op != "remove" {
			t.Fatalf("patch %s: operation %q", patch, op.Op)
		}
		if !metadataMapPath(op.Path) {
			t.Fatalf("patch %s touches %s", patch, op.Path)
		}
	}
}

// metadataMapPath reports whether p is /metadata/labels or
// /metadata/annotations, or one member of either.
func metadataMapPath(p string) bool {
	for _, m := range []string{"/metadata/labels", "/metadata/annotations"} {
		if p == m {
			return true
		}
		if token, ok := strings.CutPrefix(p, m+"/"); ok {
			return !strings.Contains(token, "/") && validPointerEscapes(token)
		}
	}
	return false
}

func validPointerEscapes(token string) bool {
	for i := 0; i < len(token); i++ {
		if token[i] == '~' && (i+1 == len(token) || (token[i+1] != '0' && token[i+1] != '1')) {
			return false
		}
	}
	return true
}

// checkCanonical re-sends body with its object as kube-apiserver would
// serialise it (decoded into the typed object and encoded again), then
// applies the patch the way the apiserver does and checks that nothing
// but the router's own labels and annotation changed. Bodies whose
// object is not a valid typed object are skipped: no apiserver sends one.
func checkCanonical(t *testing.T, h http.Handler, path, resource string, body []byte) {
	t.Helper()
	var env admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &env); err != nil || env.Request == nil || len(env.Request.Object.Raw) == 0 {
		return
	}
	var obj any = &corev1.Pod{}
	if resource == resourceNamespaces {
		obj = &corev1.Namespace{}
	}
	if json.Unmarshal(env.Request.Object.Raw, obj) != nil {
		return
	}
	canonical, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	env.Request.Object.Raw = canonical
	env.Request.Object.Object = nil
	cbody, err := json.Marshal(&env)
	if err != nil {
		return // e.g. invalid JSON kept raw in another field
	}
	res := serveAdmission(t, h, path, cbody)
	if len(res.resp.Patch) == 0 {
		return
	}
	p, _ := jsonpatch.DecodePatch(res.resp.Patch)
	patched, err := p.Apply(canonical)
	if err != nil {
		t.Fatalf("patch %s does not apply to %s: %v", res.resp.Patch, canonical, err)
	}
	checkOnlyRouterKeysChanged(t, canonical, patched, res.resp.Patch)
}

// routerLabels and routerAnnotations are the keys the router may set or
// remove; every other label and annotation must come through unchanged.
var (
	routerLabels      = map[string]bool{policy.LabelIstioRev: true, policy.LabelIstioInjection: true, policy.LabelOptIn: true}
	routerAnnotations = map[string]bool{policy.AnnotationDecision: true}
)

func checkOnlyRouterKeysChanged(t *testing.T, before, after, patch []byte) {
	t.Helper()
	var b, a map[string]any
	if err := json.Unmarshal(before, &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(after, &a); err != nil {
		t.Fatalf("patched object is not JSON: %v", err)
	}
	bl, ba := takeMetadataMap(b, "labels"), takeMetadataMap(b, "annotations")
	al, aa := takeMetadataMap(a, "labels"), takeMetadataMap(a, "annotations")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("patch %s changed more than labels and annotations:\n before %s\n after  %s", patch, before, after)
	}
	changedOnly(t, "label", bl, al, routerLabels, patch)
	changedOnly(t, "annotation", ba, aa, routerAnnotations, patch)
	if al[policy.LabelIstioRev] == nil && al[policy.LabelOptIn] == nil {
		t.Fatalf("patch %s routes nothing", patch)
	}
}

// takeMetadataMap removes and returns metadata[name].
func takeMetadataMap(obj map[string]any, name string) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		return nil
	}
	m, _ := md[name].(map[string]any)
	delete(md, name)
	return m
}

func changedOnly(t *testing.T, what string, before, after map[string]any, owned map[string]bool, patch []byte) {
	t.Helper()
	for k, v := range before {
		if owned[k] {
			continue
		}
		if av, ok := after[k]; !ok || av != v {
			t.Fatalf("patch %s changed %s %q from %v to %v", patch, what, k, v, av)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && !owned[k] {
			t.Fatalf("patch %s added %s %q", patch, what, k)
		}
	}
}
