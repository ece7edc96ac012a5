package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/webhook/wire"
)

// TestBadInput: every request the router cannot act on gets a well-formed
// AdmissionReview with a 4xx code, a message, and the request UID when
// one could be read; never a panic or an empty 200.
func TestBadInput(t *testing.T) {
	valid := string(reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "1", nil), false))
	nsReview := string(reviewBody(t, "namespaces", "CREATE", "", deploymentPod("shop", "web", "1", nil), false))
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantUID     string
		wantMsg     string
	}{
		{"GET", http.MethodGet, "application/json", valid, 405, "", "must use POST"},
		{"wrong content type", "", "text/plain", valid, 415, "", "content type"},
		{"no content type", "", "", valid, 415, "", "content type"},
		{"empty body", "", "application/json", "", 400, "", "empty"},
		{"not JSON", "", "application/json", "hello", 400, "", "not a valid AdmissionReview"},
		{"truncated JSON", "", "application/json", valid[:len(valid)/2], 400, "", "not a valid AdmissionReview"},
		{"JSON array", "", "application/json", "[1,2]", 400, "", "not a valid AdmissionReview"},
		{"wrong apiVersion", "", "application/json", strings.Replace(valid, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), 400, "uid-1", "expected apiVersion"},
		{"wrong kind", "", "application/json", strings.Replace(valid, `"kind":"AdmissionReview"`, `"kind":"Pod"`, 1), 400, "uid-1", "expected apiVersion"},
		{"no request", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "", "no request"},
		{"null request", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`, 400, "", "no request"},
		{"no uid", "", "application/json", strings.Replace(valid, `"uid":"uid-1"`, `"uid":""`, 1), 400, "", "no uid"},
		{"missing object", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","resource":{"version":"v1","resource":"pods"},"operation":"CREATE"}}`, 400, "u2", "no object"},
		{"null object", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":null}}`, 400, "u3", "no object"},
		{"object is not an object", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u4","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":"pod"}}`, 400, "u4", "not a valid Kubernetes object"},
		{"labels of the wrong type", "", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u5","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":["a"]}}}}`, 400, "u5", "metadata.labels"},
		{"resource for another endpoint", "", "application/json", nsReview, 400, "uid-1", "admits core/v1 pods"},
		{"oversized body", "", "application/json", `{"x":"` + strings.Repeat("a", wire.MaxRequestBytes) + `"}`, 413, "", "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, testPolicy)
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/mutate-pods", bytes.NewReader([]byte(c.body)))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			rec := httptest.NewRecorder()
			f.admitter.PodHandler().ServeHTTP(rec, req)
			code, resp := post(t, replay(rec), nil, "")
			if code != c.wantCode || resp.Allowed || resp.Result == nil || int(resp.Result.Code) != c.wantCode {
				t.Fatalf("HTTP %d, response %+v; want %d", code, resp, c.wantCode)
			}
			if string(resp.UID) != c.wantUID {
				t.Errorf("uid %q, want %q", resp.UID, c.wantUID)
			}
			if !strings.Contains(resp.Result.Message, c.wantMsg) {
				t.Errorf("message %q does not mention %q", resp.Result.Message, c.wantMsg)
			}
		})
	}
}

// replay serves a recorded response again, so post can decode and check it.
func replay(rec *httptest.ResponseRecorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}
