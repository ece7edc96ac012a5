package rollout

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

func TestHTTPQuerier(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    float64
		wantErr string
	}{
		{"one sample", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1733140000.1,"3.5"]}]}}`, 3.5, ""},
		{"scalar", 200, `{"status":"success","data":{"resultType":"scalar","result":[1733140000.1,"0"]}}`, 0, ""},
		{"no sample", 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, "returned 0 samples"},
		{"two samples", 200, `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, 0, "returned 2 samples"},
		{"NaN", 200, `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}`, 0, "not a finite number"},
		{"+Inf", 200, `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"+Inf"]}]}}`, 0, "not a finite number"},
		{"-Inf scalar", 200, `{"status":"success","data":{"resultType":"scalar","result":[1,"-Inf"]}}`, 0, "not a finite number"},
		{"redirect not followed", 302, ``, 0, "redirect (HTTP 302), which is not followed"},
		{"error text clipped", 400, `{"status":"error","errorType":"bad_data","error":"` + strings.Repeat("x", 500) + `\nforged line"}`, 0, "xxx..."},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, "returned a matrix"},
		{"bad query", 400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`, 0, "bad_data: parse error"},
		{"not prometheus", 502, `<html>bad gateway</html>`, 0, "HTTP 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotQuery string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/query" {
					t.Errorf("path %s", r.URL.Path)
				}
				gotQuery = r.URL.Query().Get("query")
				if tc.status == 302 {
					w.Header().Set("Location", "http://169.254.169.254/")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			q := &HTTPQuerier{Client: srv.Client()}
			v, err := q.Query(context.Background(), srv.URL, `sum(x{rev="1-25"})`)
			if gotQuery != `sum(x{rev="1-25"})` {
				t.Errorf("query sent %q", gotQuery)
			}
			switch {
			case tc.wantErr == "" && (err != nil || v != tc.want):
				t.Fatalf("got %g, %v; want %g", v, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			case err != nil && (len(err.Error()) > 2*maxEchoed || strings.Contains(err.Error(), "\n")):
				t.Fatalf("the answer's text reached the error unclipped: %q", err)
			}
		})
	}
}

func TestQueriesGates(t *testing.T) {
	values := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		v, ok := values[q]
		switch {
		case v == "hang":
			time.Sleep(500 * time.Millisecond)
		case !ok:
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"` + v + `"]}]}}`))
	}))
	defer srv.Close()
	doc := head + `rollout:
  steps: [{canary: 100}]
  gates:
    prometheus:
      url: ` + srv.URL + `
      timeout: 100ms
      queries:
        - {name: rejects, query: 'rejects{rev="{{ .Revision }}"}', max: 0, failureLimit: 2}
        - {name: share, query: 'share{canary="{{ .Canary }}",stable="{{ .Stable }}"}', max: 1.5}
        - {name: connected, query: 'connected{rev="{{ .Revision }}"}', min: 1}
        - {name: slow, query: 'slow', max: 1}
`
	p := mustPolicy(t, doc)
	vars := policy.QueryVars{Revision: "1-25-2", Canary: "canary", Stable: "1-24"}
	values[`rejects{rev="1-25-2"}`] = "3"
	values[`share{canary="canary",stable="1-24"}`] = "1.2"
	values["slow"] = "hang"
	values[`max(up{app="istiod",istio_io_rev="1-25-2"})`] = "1"
	values[`time() - max(timestamp(up{app="istiod",istio_io_rev="1-25-2"}))`] = "12"
	allowed := []string{srv.URL + "/"}
	got := Queries(context.Background(), &HTTPQuerier{Client: srv.Client()}, p.Rollout.Gates.Prometheus, vars, allowed)
	if sc := got[0]; sc.Name != policy.GateIstiodScraped || sc.Verdict != VerdictPass || sc.Value != 12 {
		t.Fatalf("scrape check %+v", sc)
	}
	got = got[1:]
	want := []struct {
		name    string
		verdict Verdict
		msg     string
	}{
		{"rejects", VerdictFail, "3 is above max 0"},
		{"share", VerdictPass, "1.2 within bounds"},
		{"connected", VerdictUnknown, "returned 0 samples"},
		{"slow", VerdictUnknown, "prometheus unreachable"},
	}
	for i, w := range want {
		if got[i].Name != w.name || got[i].Verdict != w.verdict || !strings.Contains(got[i].Message, w.msg) {
			t.Errorf("gate %d = %+v, want %+v", i, got[i], w)
		}
	}
	if got[0].FailureLimit != 2 {
		t.Errorf("failure limit %d", got[0].FailureLimit)
	}

	srv.Close() // Prometheus gone: every gate unknown, none passing
	for _, g := range Queries(context.Background(), &HTTPQuerier{Client: srv.Client()}, p.Rollout.Gates.Prometheus, vars, allowed) {
		if g.Verdict != VerdictUnknown || !strings.Contains(g.Message, "prometheus unreachable") {
			t.Errorf("with Prometheus down: %+v", g)
		}
	}
}
