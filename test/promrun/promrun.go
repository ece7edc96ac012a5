// Package promrun holds what the suites and the demo that run a real
// Prometheus share: stopping its process group and reading one value of
// an instant query.
package promrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Stop ends a process started in its own group: SIGTERM, then SIGKILL
// after 10 seconds, and waits until it is reaped. A nil or unstarted cmd
// is a no-op.
func Stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Scalar returns the single value of an instant query against the
// Prometheus at baseURL (http://host:port); no sample, or several, is an
// error.
func Scalar(ctx context.Context, baseURL, expr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("no single sample (%v)", err)
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(s, &v)
	return v, err
}

// IstiodScrapeConfig is the Prometheus configuration of the suites and
// the demo: one job per stand-in istiod revision, each scraping its own
// path of target every second, with the target labels Istio's own
// Prometheus configuration gives istiod's pods (app=istiod and the pod
// label istio.io/rev as istio_io_rev). The router's scrape check finds
// the canary's target by exactly those labels (policy
// prometheus.istiod.up, default up{app="istiod",istio_io_rev="<rev>"}).
func IstiodScrapeConfig(target string, revisions ...string) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
	for _, rev := range revisions {
		fmt.Fprintf(&b, "  - job_name: istiod-%s\n    honor_labels: true\n    metrics_path: /metrics/%s\n    static_configs:\n"+
			"      - targets: [%q]\n        labels: {app: istiod, istio_io_rev: %s}\n", rev, rev, target, rev)
	}
	return b.String()
}

// IstiodMetrics serves a stand-in istiod's pilot_total_xds_rejects for
// the revision named by the request's path (/metrics/<revision>):
// rejects for canary, 0 for any other.
func IstiodMetrics(w http.ResponseWriter, r *http.Request, canaryRejects int64) {
	rev := strings.TrimPrefix(r.URL.Path, "/metrics/")
	v := int64(0)
	if rev == "canary" {
		v = canaryRejects
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE pilot_total_xds_rejects counter\npilot_total_xds_rejects{app=\"istiod\",istio_io_rev=%q,type=\"cds\"} %d\n", rev, v)
}
