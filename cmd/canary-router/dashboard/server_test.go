package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeBackend records the commands and returns a fixed document.
type fakeBackend struct {
	doc     any
	err     error
	actErr  error
	actions []string
}

func (f *fakeBackend) State(context.Context) (any, error) { return f.doc, f.err }

func (f *fakeBackend) Act(_ context.Context, action, reason string) error {
	f.actions = append(f.actions, action+":"+reason)
	return f.actErr
}

func serve(t *testing.T, h http.Handler, method, path string, header map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:3100"+path, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "canary-router-status", nil)
	ok := map[string]string{RequestHeader: "1", "Content-Type": "application/json"}
	withOrigin := func(o string) map[string]string {
		return map[string]string{RequestHeader: "1", "Origin": o}
	}
	tests := []struct {
		name         string
		backend      *fakeBackend
		method, path string
		header       map[string]string
		body         string
		wantCode     int
		wantBody     string
		wantActions  []string
	}{
		{name: "page", method: "GET", path: "/", wantCode: 200, wantBody: `<script src="app.js"`},
		{name: "script", method: "GET", path: "/app.js", wantCode: 200, wantBody: "api/state"},
		{name: "style", method: "GET", path: "/style.css", wantCode: 200, wantBody: ".phase"},
		{name: "state", backend: &fakeBackend{doc: map[string]int{"step": 2}}, method: "GET", path: "/api/state", wantCode: 200, wantBody: `{"step":2}`},
		{name: "state forbidden", backend: &fakeBackend{err: forbidden}, method: "GET", path: "/api/state", wantCode: 403, wantBody: "forbidden"},
		{name: "pause with reason", method: "POST", path: "/api/actions/pause", header: ok, body: `{"reason":"freeze"}`,
			wantCode: 200, wantBody: "pause requested", wantActions: []string{"pause:freeze"}},
		{name: "promote, no body", method: "POST", path: "/api/actions/promote", header: ok, wantCode: 200, wantActions: []string{"promote:"}},
		{name: "same origin", method: "POST", path: "/api/actions/abort", header: withOrigin("http://127.0.0.1:3100"), wantCode: 200, wantActions: []string{"abort:"}},
		{name: "unknown action", method: "POST", path: "/api/actions/delete", header: ok, wantCode: 404},
		{name: "no header: a cross-site form", method: "POST", path: "/api/actions/abort", wantCode: 403, wantBody: RequestHeader},
		{name: "foreign origin", method: "POST", path: "/api/actions/abort", header: withOrigin("http://evil.example"), wantCode: 403, wantBody: "origin"},
		{name: "bad body", method: "POST", path: "/api/actions/pause", header: ok, body: `{`, wantCode: 400},
		{name: "RBAC refusal passed on", backend: &fakeBackend{actErr: forbidden}, method: "POST", path: "/api/actions/pause", header: ok,
			wantCode: 403, wantBody: "forbidden", wantActions: []string{"pause:"}},
		{name: "GET on an action acts not", method: "GET", path: "/api/actions/pause", wantCode: 404},
		{name: "foreign host: DNS rebinding", method: "GET", path: "/api/state", header: map[string]string{"Host": "evil.example:3100"}, wantCode: 421},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backend
			if b == nil {
				b = &fakeBackend{doc: map[string]any{}}
			}
			h := Handler(ServerOptions{Backend: b, Actions: []string{"pause", "resume", "promote", "abort", "retry"},
				Hosts: []string{"127.0.0.1:3100", "localhost:3100"}})
			r := httptest.NewRequest(tt.method, "http://127.0.0.1:3100"+tt.path, strings.NewReader(tt.body))
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if host := tt.header["Host"]; host != "" {
				r.Host = host
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body %q, want it to contain %q", w.Body, tt.wantBody)
			}
			if strings.Join(b.actions, ",") != strings.Join(tt.wantActions, ",") {
				t.Errorf("backend acted %v, want %v", b.actions, tt.wantActions)
			}
			if csp := w.Header().Get("Content-Security-Policy"); tt.wantCode != 421 && !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q: the page must load nothing from elsewhere", csp)
			}
		})
	}
}

// TestPageLoadsNothingFromElsewhere: clusters are often air-gapped, so the
// embedded page names no other host.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	for _, name := range []string{"assets/index.html", "assets/app.js", "assets/style.css"} {
		b, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestStateIsJSON(t *testing.T) {
	h := Handler(ServerOptions{Backend: &fakeBackend{doc: struct {
		Phase string `json:"phase"`
	}{"Holding"}}})
	w := serve(t, h, "GET", "/api/state", nil, "")
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got["phase"] != "Holding" {
		t.Fatalf("%v %v", got, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q: a cached state would show an old phase", cc)
	}
}
