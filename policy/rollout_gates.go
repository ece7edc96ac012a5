package policy

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Gate defaults. The pod-health ratios tolerate the noise of a few pods:
// a canary a little less ready than stable is normal while it rolls.
const (
	DefaultMinReadyRatio     = 0.9
	DefaultMaxRestartRatio   = 2.0
	DefaultHealthMinPods     = 1
	DefaultPrometheusTimeout = 5 * time.Second
	// DefaultMaxUnknown is how long gates may read no data before a
	// rollout stops for an operator (Gates.MaxUnknown).
	DefaultMaxUnknown = 10 * time.Minute
	maxQueries        = 20
)

var (
	gatesFields      = []string{"maxMismatches", "podHealth", "failureLimit", "maxUnknown", "prometheus"}
	podHealthFields  = []string{"minReadyRatio", "maxRestartRatio", "minPods"}
	prometheusFields = []string{"url", "timeout", "istiod", "queries"}
	queryFields      = []string{"name", "query", "min", "max", "failureLimit"}
)

// Gates are the checks a rollout step must pass. Two built-in checks are
// always on and have no settings: the canary's istiod answers the
// injector check, and the step's migration succeeded.
type Gates struct {
	// MaxMismatches is the most routed-vs-injected mismatches (pods the
	// router routed to one revision but another injected) allowed.
	MaxMismatches int `json:"maxMismatches"`
	// PodHealth compares the istio-proxy containers of canary-injected
	// pods with stable-injected ones.
	PodHealth PodHealth `json:"podHealth"`
	// FailureLimit is how many failed measurements in a row a built-in
	// gate tolerates before it fails the step.
	FailureLimit int `json:"failureLimit"`
	// MaxUnknown is how long the gates may stay unknown (no data) before
	// the rollout stops for an operator. Shorter gaps pause it only until
	// every gate is measured again; either way it never advances, and a
	// hold counts only time with every gate measured and passing.
	MaxUnknown time.Duration `json:"maxUnknown"`
	// Prometheus, when set, adds operator-written PromQL gates.
	Prometheus *Prometheus `json:"prometheus,omitempty"`
}

// PodHealth are the pod-health gate's thresholds. Ratios are canary over
// stable, so the gate follows the cluster's own baseline; with no stable
// pods (the last step at 100 percent) the canary is judged on its own,
// against a baseline of every proxy ready and none restarted.
type PodHealth struct {
	// MinReadyRatio: the canary's share of ready istio-proxy containers
	// divided by stable's share must be at least this.
	MinReadyRatio float64 `json:"minReadyRatio"`
	// MaxRestartRatio: the canary's istio-proxy restarts per pod divided
	// by stable's (each plus one, so zero restarts compare) must be at
	// most this.
	MaxRestartRatio float64 `json:"maxRestartRatio"`
	// MinPods is the fewest canary pods worth judging; with fewer the
	// gate is unknown (never passing), so no step completes on zero
	// observations. At least 1 is always required.
	MinPods int `json:"minPods"`
}

// Prometheus is where Query gates are evaluated. The URL must be one the
// router allows (serve --prometheus-allowed-url); the policy only picks.
type Prometheus struct {
	URL     string        `json:"url"`
	Timeout time.Duration `json:"timeout"`
	// Istiod finds the canary istiod's scrape target; the queries are
	// trusted only while it is scraped.
	Istiod  IstiodScrape `json:"istiod"`
	Queries []Query      `json:"queries"`
}

// Query is one PromQL gate. Its text may hold three placeholders and no
// other template syntax (query_template.go): {{ .Revision }} is the
// canary's revision (a tag resolved to the revision it points to),
// {{ .Canary }} the canary target as written, {{ .Stable }} the first
// other target's revision. A query must return one sample; the value
// must be within Min and Max (either may be absent).
type Query struct {
	Name  string   `json:"name"`
	Query string   `json:"query"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	// FailureLimit is how many failed measurements in a row are tolerated.
	FailureLimit int `json:"failureLimit"`
	// tmpl is Query parsed once, at policy parse.
	tmpl *queryTemplate
}

// QueryVars fill a Query's placeholders.
type QueryVars struct {
	Revision, Canary, Stable string
}

// Render fills the query's placeholders. It fails for a Query that did
// not come from Parse, and for one whose result would be larger than
// MaxRenderedQueryBytes.
func (q *Query) Render(v QueryVars) (string, error) {
	if q.tmpl == nil {
		return "", renderError("query " + strconv.Quote(q.Name) + " was not parsed")
	}
	return q.tmpl.render(v)
}

func defaultGates() Gates {
	return Gates{MaxUnknown: DefaultMaxUnknown, PodHealth: PodHealth{MinReadyRatio: DefaultMinReadyRatio,
		MaxRestartRatio: DefaultMaxRestartRatio, MinPods: DefaultHealthMinPods}}
}

func decodeGates(errs *ValidationError, path string, v any) Gates {
	out := defaultGates()
	m, ok := asMapping(errs, path, v)
	if !ok {
		return out
	}
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, gatesFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "maxMismatches":
			out.MaxMismatches, _ = asCount(errs, fpath, it.Value)
		case "failureLimit":
			out.FailureLimit, _ = asCount(errs, fpath, it.Value)
		case "maxUnknown":
			if d, ok := asDuration(errs, fpath, it.Value, 0); ok {
				out.MaxUnknown = d
			}
		case "podHealth":
			out.PodHealth = decodePodHealth(errs, fpath, it.Value)
		case "prometheus":
			out.Prometheus = decodePrometheus(errs, fpath, it.Value)
		}
	}
	return out
}

func decodePodHealth(errs *ValidationError, path string, v any) PodHealth {
	out := defaultGates().PodHealth
	m, ok := asMapping(errs, path, v)
	if !ok {
		return out
	}
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, podHealthFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "minReadyRatio":
			if n, ok := asNumber(errs, fpath, it.Value); ok {
				if n < 0 || n > 1 {
					errs.add(fpath, "must be from 0 to 1")
				}
				out.MinReadyRatio = n
			}
		case "maxRestartRatio":
			if n, ok := asNumber(errs, fpath, it.Value); ok {
				if n < 1 {
					errs.add(fpath, "must be at least 1 (1: no more restarts than stable)")
				}
				out.MaxRestartRatio = n
			}
		case "minPods":
			if n, ok := asCount(errs, fpath, it.Value); ok {
				if n < 1 {
					errs.add(fpath, "must be at least 1: a gate never passes on zero observations")
				}
				out.MinPods = n
			}
		}
	}
	return out
}

func decodePrometheus(errs *ValidationError, path string, v any) *Prometheus {
	m, ok := asMapping(errs, path, v)
	if !ok {
		return nil
	}
	out := &Prometheus{Timeout: DefaultPrometheusTimeout}
	var haveURL, haveIstiod bool
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, prometheusFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "url":
			haveURL = true
			if s, ok := asString(errs, fpath, it.Value); ok {
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					errs.add(fpath, `must be an http or https URL such as "http://prometheus.monitoring:9090"`)
				}
				out.URL = strings.TrimSuffix(s, "/")
			}
		case "timeout":
			if d, ok := asDuration(errs, fpath, it.Value, 100*time.Millisecond); ok {
				out.Timeout = d
			}
		case "istiod":
			haveIstiod = true
			out.Istiod = decodeIstiodScrape(errs, fpath, it.Value)
		case "queries":
			out.Queries = decodeQueries(errs, fpath, it.Value)
		}
	}
	if !haveIstiod {
		out.Istiod = defaultIstiodScrape(errs, path+".istiod")
	}
	if !haveURL {
		errs.add(path+".url", "required")
	}
	return out
}

func decodeQueries(errs *ValidationError, path string, v any) []Query {
	list, ok := asList(errs, path, v)
	if !ok {
		return nil
	}
	if len(list) > maxQueries {
		errs.add(path, "at most "+strconv.Itoa(maxQueries)+" queries, not "+strconv.Itoa(len(list)))
		return nil
	}
	out := make([]Query, 0, len(list))
	names := make(map[string]int, len(list))
	for i, item := range list {
		qpath := path + "[" + strconv.Itoa(i) + "]"
		m, ok := asMapping(errs, qpath, item)
		if !ok {
			continue
		}
		var q Query
		var queryPath string
		seen := make(map[string]bool, len(m))
		for _, it := range m {
			key, fpath, ok := fieldKey(errs, qpath, it.Key, queryFields, seen)
			if !ok || it.Value == nil {
				continue
			}
			switch key {
			case "name":
				if s, ok := asString(errs, fpath, it.Value); ok {
					if why := queryNameReason(s); why != "" {
						errs.add(fpath, why)
					} else if s == GateIstiodScraped {
						errs.add(fpath, "is the name of the built-in istiod scrape check")
					} else if j, dup := names[s]; dup {
						errs.add(fpath, "duplicate of "+path+"["+strconv.Itoa(j)+"].name")
					} else {
						names[s] = i
					}
					q.Name = s
				}
			case "query":
				if s, ok := asString(errs, fpath, it.Value); ok {
					q.Query, queryPath = s, fpath
				}
			case "min", "max":
				if n, ok := asNumber(errs, fpath, it.Value); ok {
					if key == "min" {
						q.Min = &n
					} else {
						q.Max = &n
					}
				}
			case "failureLimit":
				q.FailureLimit, _ = asCount(errs, fpath, it.Value)
			}
		}
		if queryPath != "" {
			// After the loop, so the message names the gate whatever the
			// order of its fields.
			q.tmpl = checkQuery(errs, queryPath, q.Name, q.Query)
		}
		if q.Name == "" && !seen["name"] {
			errs.add(qpath+".name", "required")
		}
		if q.Query == "" && !seen["query"] {
			errs.add(qpath+".query", "required")
		}
		if q.Min == nil && q.Max == nil {
			errs.add(qpath, "needs a threshold: min, max or both")
		} else if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
			errs.add(qpath, "min is above max: no value can pass")
		}
		out = append(out, q)
	}
	return out
}

// queryNameReason keeps names usable as a metric label value.
func queryNameReason(s string) string {
	if s == "" || len(s) > 63 {
		return "must be 1 to 63 characters"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "may hold only a-z, 0-9, - and _ (it is a metric label)"
		}
	}
	return ""
}

// checkQuery parses a gate's query, so an unknown placeholder
// ({{ .Revison }}) or a template the language does not have is an error
// at apply time, not a gate that can never be measured.
func checkQuery(errs *ValidationError, path, name, s string) *queryTemplate {
	t, why := parseQueryTemplate(s)
	if why != "" {
		gate := "gate"
		if name != "" {
			gate = "gate " + strconv.Quote(name)
		}
		errs.add(path, gate+": "+why)
		return nil
	}
	return t
}

// asCount reads a whole number from 0 to a million.
func asCount(errs *ValidationError, path string, v any) (int, bool) {
	n, ok := asNumber(errs, path, v)
	if !ok {
		return 0, false
	}
	if n != float64(int(n)) || n < 0 || n > 1e6 {
		errs.add(path, "must be a whole number from 0 to 1000000")
		return 0, false
	}
	return int(n), true
}
