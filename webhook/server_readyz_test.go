package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadyzAdvisoryDoesNotFail(t *testing.T) {
	f := newFixture(t, testPolicy)
	read := func(checks map[string]Check) (int, string) {
		s := NewServer(ServerOptions{}, f.admitter, checks)
		delete(s.checks, "webhook-server") // not started in a unit test
		rec := httptest.NewRecorder()
		s.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	order := func() error { return Advisory(errors.New("zz-canary-router sorts after istio-sidecar-injector")) }
	code, body := read(map[string]Check{"webhook-order": order, "istio": func() error { return nil }})
	if code != http.StatusOK || !strings.HasPrefix(body, "ok\n") || !strings.Contains(body, "warning: webhook-order: zz-canary-router") {
		t.Errorf("advisory only: HTTP %d %q, want 200 with the warning", code, body)
	}
	code, body = read(map[string]Check{"webhook-order": order, "istio": func() error { return errors.New("not synced") }})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "istio: not synced") || !strings.Contains(body, "warning: webhook-order") {
		t.Errorf("failing check: HTTP %d %q, want 503 listing both", code, body)
	}
	if Advisory(nil) != nil {
		t.Error("Advisory(nil) is not nil")
	}
}
