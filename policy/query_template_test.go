package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestQueryTemplate(t *testing.T) {
	vars := QueryVars{Revision: "1-25-1", Canary: "canary", Stable: "1-24"}
	for _, c := range []struct {
		name, query string
		want        string // the rendered query, when valid
		why         string // a part of the refusal, when not
	}{
		{name: "no placeholder", query: "up", want: "up"},
		{name: "all three", query: `a{r="{{ .Revision }}",c="{{.Canary}}",s="{{	.Stable	}}"}`,
			want: `a{r="1-25-1",c="canary",s="1-24"}`},
		{name: "trim markers", query: "x{r=\"\n  {{- .Revision -}}\n\"}", want: `x{r="1-25-1"}`},
		{name: "braces of PromQL", query: `sum(x{a="b"}) by (le)}`, want: `sum(x{a="b"}) by (le)}`},
		{name: "unknown field", query: "{{ .Revison }}", why: "unknown placeholder {{ .Revison }}"},
		{name: "define", query: `{{define "a"}}x{{end}}`, why: "{{ define }} is not allowed"},
		{name: "template", query: `{{template "a" .}}`, why: "{{ template }} is not allowed"},
		{name: "block", query: `{{block "a" .}}x{{end}}`, why: "{{ block }} is not allowed"},
		{name: "function", query: `{{ printf "%s" .Revision }}`, why: "is not a placeholder"},
		{name: "pipeline", query: `{{ .Revision | len }}`, why: "is not a placeholder"},
		{name: "range", query: `{{ range . }}x{{ end }}`, why: "is not a placeholder"},
		{name: "comment", query: `{{/* c */}}up`, why: "is not a placeholder"},
		{name: "unclosed", query: "up{{ .Revision", why: `"{{" at byte 2 is never closed`},
		{name: "too long", query: strings.Repeat("x", MaxQueryBytes+1), why: "larger than the 4096-byte limit"},
		{name: "at the size limit", query: strings.Repeat("x", MaxQueryBytes), want: strings.Repeat("x", MaxQueryBytes)},
		{name: "over the render budget", query: strings.Repeat("{{.Canary}}", 300), why: "more than the 16384-byte budget"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmpl, why := parseQueryTemplate(c.query)
			if c.why != "" {
				if tmpl != nil || !strings.Contains(why, c.why) {
					t.Fatalf("parse = %v, %q; want a refusal containing %q", tmpl, why, c.why)
				}
				return
			}
			if why != "" {
				t.Fatalf("parse refused a valid query: %s", why)
			}
			got, err := tmpl.render(vars)
			if err != nil || got != c.want {
				t.Fatalf("render = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestQueryRenderBudget(t *testing.T) {
	q := Query{Name: "q"}
	if _, err := q.Render(QueryVars{}); err == nil {
		t.Error("Render of a query that was not parsed succeeded")
	}
	tmpl, why := parseQueryTemplate("{{ .Canary }}")
	if why != "" {
		t.Fatal(why)
	}
	q.tmpl = tmpl
	if _, err := q.Render(QueryVars{Canary: strings.Repeat("x", MaxRenderedQueryBytes+1)}); err == nil {
		t.Error("Render past the budget succeeded")
	}
}

// hostilePolicy is the policy that wedged the router when gate queries
// were Go templates: depth templates, each calling the one below twice,
// so checking it made 2^depth calls.
func hostilePolicy(depth int) string {
	var q strings.Builder
	q.WriteString(`{{define "t0"}}x{{end}}`)
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&q, `{{define "t%d"}}{{template "t%d" .}}{{template "t%d" .}}{{end}}`, i, i-1, i-1)
	}
	fmt.Fprintf(&q, `{{template "t%d" .}}`, depth-1)
	return `granularity: namespace
targets: [{revision: "1-24", weight: 100}, {revision: "1-25", weight: 0}]
rollout:
  steps: [{canary: 10}]
  gates:
    prometheus:
      url: http://prometheus.monitoring:9090
      queries:
        - name: bomb
          max: 0
          query: '` + q.String() + "'\n"
}

func TestHostileNestedTemplateRefusedQuickly(t *testing.T) {
	doc := hostilePolicy(40)
	start := time.Now()
	_, err := Parse([]byte(doc))
	took := time.Since(start)
	var verr ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse of the %d-byte nested-template policy = %v, want a ValidationError", len(doc), err)
	}
	want := FieldError{Field: "rollout.gates.prometheus.queries[0].query",
		Reason: `gate "bomb": {{ define }} is not allowed: a gate query may hold only the placeholders {{ .Revision }}, {{ .Canary }} and {{ .Stable }}`}
	if len(verr) != 1 || verr[0] != want {
		t.Errorf("Parse = %v, want only %v", verr, want)
	}
	if took > time.Second {
		t.Errorf("Parse took %v, want well under a second", took)
	}
}
