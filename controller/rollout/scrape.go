package rollout

import (
	"context"
	"fmt"

	"github.com/canary-router/canary-router/policy"
)

// ScrapeCheck measures whether Prometheus is scraping the canary's
// istiod, the condition for trusting any PromQL gate: a query such as
// `sum(rate(pilot_xds_push_errors[1m]))` reads the same with the istiod
// healthy and with it dead and gone from Prometheus, so the router checks
// the target itself rather than relying on every query to do so.
//
// Two instant queries on the policy's `up` selector: max(up) must be 1
// (at least one istiod target scraped successfully), and the freshest
// `up` sample, by Prometheus' own clock, must be at most two scrape
// intervals old. timestamp() is applied to the bare selector because
// only there does it read the sample's time rather than the query's.
func ScrapeCheck(ctx context.Context, q Querier, p *policy.Prometheus, vars policy.QueryVars) GateResult {
	g := GateResult{Name: policy.GateIstiodScraped, Verdict: VerdictUnknown}
	sel, err := p.Istiod.Render(vars)
	if err != nil {
		g.Message = "the istiod up selector: " + err.Error()
		return g
	}
	up, err := timed(ctx, q, p, "max("+sel+")")
	if err != nil {
		g.Message = fmt.Sprintf("the canary istiod is not scraped by Prometheus (%s: %v)", sel, err)
		return g
	}
	if up < 1 {
		g.Message = fmt.Sprintf("Prometheus fails to scrape the canary istiod (%s = %g)", sel, up)
		return g
	}
	age, err := timed(ctx, q, p, "time() - max(timestamp("+sel+"))")
	if err != nil {
		g.Message = fmt.Sprintf("the age of %s: %v", sel, err)
		return g
	}
	g.Value = age
	limit := 2 * p.Istiod.ScrapeInterval.Seconds()
	if age > limit {
		g.Message = fmt.Sprintf("the last scrape of the canary istiod (%s) is %.0fs old, more than two scrape intervals (%gs)", sel, age, limit)
		return g
	}
	g.Verdict = VerdictPass
	g.Message = fmt.Sprintf("canary istiod scraped %.1fs ago (%s)", age, sel)
	return g
}

// timed runs one query within the plan's timeout.
func timed(ctx context.Context, q Querier, p *policy.Prometheus, query string) (float64, error) {
	qctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	return q.Query(qctx, p.URL, query)
}
