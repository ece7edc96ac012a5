package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of the istiod scrape check. The selector follows the labels
// Istio's own Prometheus configuration (and most kubernetes-pods jobs with
// a labelmap of pod labels) puts on istiod's targets: `app=istiod` and
// the pod label `istio.io/rev` as `istio_io_rev`.
const (
	DefaultIstiodUp             = `up{app="istiod",istio_io_rev="{{ .Revision }}"}`
	DefaultIstiodScrapeInterval = 30 * time.Second
)

// GateIstiodScraped names the scrape check's result among the gates.
const GateIstiodScraped = "istiod-scraped"

var istiodFields = []string{"up", "scrapeInterval"}

// IstiodScrape says how the router finds the `up` series of the canary's
// istiod in Prometheus. A PromQL gate is trusted only while that target
// is scraped: at least one of its `up` series reads 1, with a sample no
// older than two scrape intervals. Otherwise every PromQL gate is
// unknown, so a dead or unscraped istiod cannot make `sum(rate(...))`
// read a passing zero.
type IstiodScrape struct {
	// Up is a series selector for the istiod's `up` series, a template
	// with the same placeholders as a query; {{ .Revision }} is the
	// canary's revision.
	Up string `json:"up"`
	// ScrapeInterval is the scrape interval of that target; a sample
	// older than twice this is stale.
	ScrapeInterval time.Duration `json:"scrapeInterval"`
	tmpl           *queryTemplate
}

// Render fills the selector's placeholders.
func (s *IstiodScrape) Render(v QueryVars) (string, error) {
	if s.tmpl == nil {
		return "", errNoTemplate
	}
	return s.tmpl.render(v)
}

var errNoTemplate = errors.New("the istiod up selector did not parse")

func defaultIstiodScrape(errs *ValidationError, path string) IstiodScrape {
	return IstiodScrape{Up: DefaultIstiodUp, ScrapeInterval: DefaultIstiodScrapeInterval,
		tmpl: checkQuery(errs, path+".up", "", DefaultIstiodUp)}
}

func decodeIstiodScrape(errs *ValidationError, path string, v any) IstiodScrape {
	out := defaultIstiodScrape(errs, path)
	m, ok := asMapping(errs, path, v)
	if !ok {
		return out
	}
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, istiodFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "up":
			if s, ok := asString(errs, fpath, it.Value); ok {
				if why := selectorReason(s); why != "" {
					errs.add(fpath, why)
					continue
				}
				out.Up = s
				out.tmpl = checkQuery(errs, fpath, "", s)
			}
		case "scrapeInterval":
			if d, ok := asDuration(errs, fpath, it.Value, time.Second); ok {
				out.ScrapeInterval = d
			}
		}
	}
	return out
}

// selectorReason keeps the selector a plain series selector: the router
// wraps it in timestamp(), which reads a sample's own time only when
// given a selector (on any other expression it reads the query's time,
// and a stale target would look fresh).
func selectorReason(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || strings.ContainsAny(t, "()[]") || !strings.HasPrefix(t, "up") && !strings.HasPrefix(t, "{") {
		return `must be a series selector of the up metric, such as up{app="istiod",istio_io_rev="{{ .Revision }}"}`
	}
	return ""
}

// PrometheusURLAllowed reports whether the router's allowlist holds a Prometheus
// URL (trailing slashes aside). An empty allowlist allows none: the
// router queries only endpoints its own flags name, so a policy edit
// cannot point it at an arbitrary address.
func PrometheusURLAllowed(u string, allowed []string) bool {
	u = strings.TrimSuffix(u, "/")
	for _, a := range allowed {
		if strings.TrimSuffix(a, "/") == u {
			return true
		}
	}
	return false
}

// PrometheusNotAllowed says why a Prometheus URL is refused.
func PrometheusNotAllowed(u string, allowed []string) string {
	if len(allowed) == 0 {
		return fmt.Sprintf("prometheus URL %q is not allowed: this router allows no Prometheus endpoint (start it with --prometheus-allowed-url, Helm value prometheus.allowedURLs)", u)
	}
	return fmt.Sprintf("prometheus URL %q is not allowed: the router allows only %s (--prometheus-allowed-url, Helm value prometheus.allowedURLs)",
		u, strings.Join(allowed, ", "))
}
