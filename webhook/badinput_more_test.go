package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/webhook/wire"
)

// TestBadInputMore completes TestBadInput with the rest of issue 9's list.
// Each request either gets a well-formed refusal (4xx, a message, the UID
// when the body is valid JSON that carries one) or, where the input is
// something kube-apiserver does send or the router has no business
// refusing, a well-formed 200 with the UID; docs/reliability.md gives the
// reason for each of those choices.
func TestBadInputMore(t *testing.T) {
	pod := deploymentPod("shop", "web", "1", nil)
	valid := string(reviewBody(t, "pods", "CREATE", "shop", pod, false))
	// edit is valid with old replaced once; old must be there.
	edit := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("fixture review lacks %q", old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	withOp := func(op string) string { return edit(`"operation":"CREATE"`, `"operation":"`+op+`"`) }
	nested := func(levels int) string {
		return edit(`"spec":{`, `"spec":{"x":`+strings.Repeat("[", levels)+strings.Repeat("]", levels)+`,`)
	}
	cases := []struct {
		name        string
		path        string // default PathPods
		contentType string // default application/json
		body        string
		wantCode    int
		wantUID     string
		wantMsg     string // refusals only
		wantRouted  bool   // 200s: the pod gets istio.io/rev
	}{
		// Refused: no kube-apiserver sends these.
		{name: "unknown operation", body: withOp("FROB"), wantCode: 400, wantUID: "uid-1", wantMsg: "unknown operation"},
		{name: "empty operation", body: withOp(""), wantCode: 400, wantUID: "uid-1", wantMsg: "unknown operation"},
		{name: "lower-case operation", body: withOp("create"), wantCode: 400, wantUID: "uid-1", wantMsg: "unknown operation"},
		{name: "object of another kind than the resource", body: edit(`"kind":"Pod"`, `"kind":"Namespace"`),
			wantCode: 400, wantUID: "uid-1", wantMsg: "request object is"},
		{name: "object of another API version", body: edit(`"object":{"kind":"Pod","apiVersion":"v1"`, `"object":{"kind":"Pod","apiVersion":"apps/v1"`),
			wantCode: 400, wantUID: "uid-1", wantMsg: "request object is"},
		{name: "pod object sent as a namespace", path: PathNamespaces, body: string(reviewBody(t, "namespaces", "CREATE", "", pod, false)),
			wantCode: 400, wantUID: "uid-1", wantMsg: "request object is"},
		{name: "nesting beyond encoding/json's limit", body: nested(wire.MaxDepth), wantCode: 400, wantMsg: "exceeded max depth"},
		{name: "nesting beyond the limit in the envelope", body: `{"a":` + strings.Repeat(`{"a":`, wire.MaxDepth) + `1` + strings.Repeat("}", wire.MaxDepth+1),
			wantCode: 400, wantMsg: "exceeded max depth"},
		{name: "huge label map over the body limit", body: reviewWithLabels(t, 400_000, 16), wantCode: 413, wantMsg: "limit"},
		{name: "non-UTF-8 byte outside a string", body: edit(`"uid":"uid-1",`, "\"uid\":\"uid-1\",\xff"),
			wantCode: 400, wantMsg: "invalid character"},
		{name: "byte order mark", body: "\ufeff" + valid, wantCode: 400, wantMsg: "invalid character"},
		{name: "trailing data after the review", body: valid + `{}`, wantCode: 400, wantMsg: "after top-level value"},
		{name: "request of the wrong type", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"pod"}`,
			wantCode: 400, wantMsg: "request"},
		{name: "uid of the wrong type", body: edit(`"uid":"uid-1"`, `"uid":7`), wantCode: 400, wantMsg: "request.uid"},
		{name: "JSON null", body: `null`, wantCode: 400, wantMsg: "expected apiVersion"},
		{name: "YAML content type", contentType: "application/yaml", body: valid, wantCode: 415, wantMsg: "content type"},
		{name: "malformed content type", contentType: "application/json; charset", body: valid, wantCode: 415, wantMsg: "content type"},

		// Allowed: well-formed 200s with the UID.
		{name: "known operation the endpoint does not act on (UPDATE)", body: withOp("UPDATE"), wantCode: 200, wantUID: "uid-1"},
		{name: "known operation the endpoint does not act on (CONNECT)", body: withOp("CONNECT"), wantCode: 200, wantUID: "uid-1"},
		{name: "DELETE without an object", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d1","resource":{"version":"v1","resource":"pods"},"operation":"DELETE","object":null}}`,
			wantCode: 200, wantUID: "d1"},
		{name: "subresource with its own type (pods/eviction)", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"e1","resource":{"version":"v1","resource":"pods"},"subResource":"eviction","operation":"CREATE","object":{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-1","namespace":"shop"}}}}`,
			wantCode: 200, wantUID: "e1"},
		{name: "object without type fields", body: edit(`"object":{"kind":"Pod","apiVersion":"v1",`, `"object":{`), wantCode: 200, wantUID: "uid-1", wantRouted: true},
		{name: "non-UTF-8 bytes inside strings (read as U+FFFD, like encoding/json)", body: edit(`"app":"web"`, "\"app\xff\":\"w\xfe\xffb\""),
			wantCode: 200, wantUID: "uid-1", wantRouted: true},
		{name: "deep nesting within the limit in a field the router skips", body: nested(wire.MaxDepth - 10), wantCode: 200, wantUID: "uid-1", wantRouted: true},
		{name: "huge label map within the body limit", body: reviewWithLabels(t, 100_000, 16), wantCode: 200, wantUID: "uid-big", wantRouted: true},
		{name: "content type with parameters", contentType: "application/json; charset=utf-8", body: valid, wantCode: 200, wantUID: "uid-1", wantRouted: true},
	}
	f := newFixture(t, testPolicy)
	handlers := map[string]http.Handler{PathPods: f.admitter.PodHandler(), PathNamespaces: f.admitter.NamespaceHandler()}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, ct := c.path, c.contentType
			if path == "" {
				path = PathPods
			}
			if ct == "" {
				ct = "application/json"
			}
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(c.body)))
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			began := time.Now()
			handlers[path].ServeHTTP(rec, req)
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			code, resp := post(t, replay(rec), nil, "")
			if code != c.wantCode || string(resp.UID) != c.wantUID {
				t.Fatalf("HTTP %d uid %q (%+v); want %d uid %q", code, resp.UID, resp.Result, c.wantCode, c.wantUID)
			}
			if c.wantCode != http.StatusOK {
				if resp.Allowed || resp.Result == nil || int(resp.Result.Code) != c.wantCode || !strings.Contains(resp.Result.Message, c.wantMsg) {
					t.Fatalf("refusal %+v; want code %d and a message mentioning %q", resp.Result, c.wantCode, c.wantMsg)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			if routed := len(resp.Patch) > 0; routed != c.wantRouted {
				t.Fatalf("patched %v (%s), want %v", routed, resp.Patch, c.wantRouted)
			}
			if c.wantRouted {
				checkPatchPaths(t, resp.Patch)
			}
		})
	}
}

// reviewWithLabels is a pod review (UID uid-big) whose pod has n labels
// with values of valueLen bytes.
func reviewWithLabels(t testing.TB, n, valueLen int) string {
	t.Helper()
	labels := make(map[string]string, n)
	v := strings.Repeat("v", valueLen)
	for i := range n {
		labels[fmt.Sprintf("label-%07d", i)] = v
	}
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "big-", Namespace: "shop", Labels: labels}}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-big", Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "shop", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
