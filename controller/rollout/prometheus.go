package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/canary-router/canary-router/policy"
)

// maxPromBody bounds a query answer: a gate reads one sample, so a larger
// answer is a query that forgot to aggregate.
const maxPromBody = 1 << 20

// Querier evaluates an instant PromQL query: the I/O seam of the
// Prometheus gates, so tests need no Prometheus.
type Querier interface {
	Query(ctx context.Context, baseURL, query string) (float64, error)
}

// HTTPQuerier queries Prometheus' HTTP API (GET /api/v1/query).
type HTTPQuerier struct {
	Client *http.Client
}

var _ Querier = (*HTTPQuerier)(nil)

// promAnswer is the part of /api/v1/query's answer a gate reads.
type promAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Query implements Querier. A query must answer one sample (a vector of
// one, or a scalar); none, several, NaN, ±Inf or an error is no value,
// and the gate is unknown: an absent series is not a passing one.
//
// Redirects are not followed (the URL is one the router's flags allow,
// and a redirect would take the query elsewhere), and text from the
// answer is shortened and stripped of control characters before it can
// reach the status object or an Event.
func (q *HTTPQuerier) Query(ctx context.Context, baseURL, query string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return 0, err
	}
	client := http.Client{}
	if q.Client != nil {
		client = *q.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("prometheus unreachable: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return 0, fmt.Errorf("prometheus answered a redirect (HTTP %d), which is not followed: allow and use the final URL", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromBody+1))
	if err != nil {
		return 0, fmt.Errorf("reading prometheus' answer: %w", err)
	}
	if len(body) > maxPromBody {
		return 0, fmt.Errorf("prometheus answered more than %d bytes; aggregate the query to one sample", maxPromBody)
	}
	var a promAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("prometheus answered HTTP %d, not its API's JSON", resp.StatusCode)
	}
	if a.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s: %s", Clip(a.ErrorType), Clip(a.Error))
	}
	return sampleOf(a.Data.ResultType, a.Data.Result)
}

// sampleOf reads the one value of a vector or scalar result.
func sampleOf(typ string, raw json.RawMessage) (float64, error) {
	var pair []any
	switch typ {
	case "scalar":
		if err := json.Unmarshal(raw, &pair); err != nil {
			return 0, fmt.Errorf("unreadable scalar: %w", err)
		}
	case "vector":
		var v []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, fmt.Errorf("unreadable vector: %w", err)
		}
		if len(v) != 1 {
			return 0, fmt.Errorf("the query returned %d samples, want exactly 1 (aggregate with sum(); an absent series is unknown)", len(v))
		}
		pair = v[0].Value
	default:
		return 0, fmt.Errorf("the query returned a %s, want a vector of one sample or a scalar", typ)
	}
	if len(pair) != 2 {
		return 0, fmt.Errorf("unreadable sample %v", pair)
	}
	s, _ := pair[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("sample %q is not a finite number", Clip(s))
	}
	return f, nil
}

// maxEchoed bounds text taken from a Prometheus answer.
const maxEchoed = 200

// Clip makes text from outside the router safe to record: at most
// maxEchoed bytes, control characters replaced, so a target cannot write
// pages or forged lines into the status object, Events or logs.
func Clip(s string) string {
	out := make([]rune, 0, min(len(s), maxEchoed))
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		n += utf8.RuneLen(r)
		if n > maxEchoed {
			return string(out) + "..."
		}
		out = append(out, r)
	}
	return string(out)
}

// Queries measures the plan's Prometheus gates, each within the plan's
// timeout. A query that cannot be measured is unknown, never passing. The
// first result is the istiod scrape check (ScrapeCheck): while it does
// not pass, no query is sent and every one is unknown, so nothing is
// judged on the data of a target nobody scrapes. allowed is the router's
// allowlist of Prometheus URLs; a URL not on it is never queried.
func Queries(ctx context.Context, q Querier, p *policy.Prometheus, vars policy.QueryVars, allowed []string) []GateResult {
	if p == nil {
		return nil
	}
	out := make([]GateResult, 0, len(p.Queries)+1)
	var blocked string
	if !policy.PrometheusURLAllowed(p.URL, allowed) {
		blocked = policy.PrometheusNotAllowed(p.URL, allowed)
		out = append(out, GateResult{Name: policy.GateIstiodScraped, Verdict: VerdictUnknown, Message: blocked})
	} else {
		sc := ScrapeCheck(ctx, q, p, vars)
		out = append(out, sc)
		if sc.Verdict != VerdictPass {
			blocked = "not measured: " + sc.Message
		}
	}
	for i := range p.Queries {
		pq := &p.Queries[i]
		g := GateResult{Name: pq.Name, FailureLimit: pq.FailureLimit}
		if blocked != "" {
			g.Verdict, g.Message = VerdictUnknown, blocked
			out = append(out, g)
			continue
		}
		text, err := pq.Render(vars)
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, p.Timeout)
			g.Value, err = q.Query(qctx, p.URL, text)
			cancel()
		}
		if err == nil && (math.IsNaN(g.Value) || math.IsInf(g.Value, 0)) {
			g.Value, err = 0, fmt.Errorf("the query answered %g, not a finite number", g.Value)
		}
		if err != nil {
			g.Verdict, g.Message = VerdictUnknown, err.Error()
			out = append(out, g)
			continue
		}
		g.Verdict, g.Message = judge(g.Value, pq.Min, pq.Max)
		out = append(out, g)
	}
	return out
}

// judge checks a value against a query's thresholds.
func judge(v float64, lo, hi *float64) (Verdict, string) {
	switch {
	case lo != nil && v < *lo:
		return VerdictFail, fmt.Sprintf("%.4g is below min %g", v, *lo)
	case hi != nil && v > *hi:
		return VerdictFail, fmt.Sprintf("%.4g is above max %g", v, *hi)
	}
	return VerdictPass, fmt.Sprintf("%g within bounds", v)
}
