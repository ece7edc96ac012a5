package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/promrun"
)

// prometheus is a Prometheus server on loopback scraping the router every
// second and evaluating the PrometheusRule's groups every second.
type prometheus struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
}

// scrapeJob is the job name the alerts and the dashboard expect: the
// ServiceMonitor sets the same through its jobLabel.
const scrapeJob = "canary-router"

// startPrometheus writes a config and starts Prometheus with a temp TSDB,
// then waits until it is ready and has scraped the router once.
func startPrometheus(ctx context.Context, dir, rulesFile, target string) (*prometheus, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, rulesFile, scrapeJob, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p := &prometheus{addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, "prometheus.log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command("prometheus",
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+p.addr,
		// Rules and queries see the last sample within 1 m rather than
		// 5 m, so a series that ends (a pod pair that no longer exists)
		// drops out of queries soon after.
		"--query.lookback-delta=1m")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting prometheus: %w", err)
	}
	version, _ := exec.Command("prometheus", "--version").CombinedOutput()
	fmt.Printf("observability: %s", firstLine(string(version)))
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if v, err := p.query(ctx, fmt.Sprintf(`up{job=%q}`, scrapeJob)); err == nil && len(v) == 1 && v[0].Value == 1 {
			return p, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("prometheus never scraped the router; log:\n%s", harness.TailFile(p.logPath, 3000))
}

func (p *prometheus) stop() { promrun.Stop(p.cmd) }

// sample is one element of an instant vector (or a scalar, with no
// labels).
type sample struct {
	Labels map[string]string
	Value  float64
}

func (s sample) String() string {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, s.Labels[k])
	}
	return fmt.Sprintf("{%s} %g", strings.TrimSuffix(b.String(), ","), s.Value)
}

// query runs an instant query through the HTTP API (/api/v1/query).
func (p *prometheus) query(ctx context.Context, expr string) ([]sample, error) {
	u := "http://" + p.addr + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, body.Error)
	}
	switch body.Data.ResultType {
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parseValue(v[1])
		return []sample{{Value: f}}, err
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, e := range vec {
			f, err := parseValue(e.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Labels: e.Metric, Value: f})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
		return out, nil
	}
	return nil, fmt.Errorf("query %s: result type %s", expr, body.Data.ResultType)
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// eventually polls expr until check accepts its result, and returns that
// result; it fails the test with the last result after timeout.
func (p *prometheus) eventually(t *testing.T, what, expr string, timeout time.Duration, check func([]sample) bool) []sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []sample
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.query(context.Background(), expr)
		if lastErr == nil && check(last) {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: PromQL %s never matched within %s; last result %v (error %v)", what, expr, timeout, last, lastErr)
	return nil
}

// byLabel indexes a result by one label's value.
func byLabel(v []sample, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		out[s.Labels[label]] = s.Value
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// extractRules writes the PrometheusRule's spec.groups as a Prometheus
// rules file: the Operator does the same when it loads the object.
func extractRules(prometheusRule, dir string) (string, error) {
	data, err := os.ReadFile(prometheusRule)
	if err != nil {
		return "", err
	}
	var obj struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return "", fmt.Errorf("%s: %w", prometheusRule, err)
	}
	if obj.Kind != "PrometheusRule" || len(obj.Spec.Groups) == 0 {
		return "", fmt.Errorf("%s: not a PrometheusRule with groups", prometheusRule)
	}
	out, err := yaml.Marshal(map[string]any{"groups": obj.Spec.Groups})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "canary-router.rules.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l + "\n"
}
