package rollout

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/promrun"
)

// fakeIstiod stands in for the canary and stable istiods' monitoring
// port: pilot_total_xds_rejects per revision, which a test raises to
// play a canary whose config proxies reject.
type fakeIstiod struct {
	srv     *httptest.Server
	rejects atomic.Int64 // the canary's
}

func startFakeIstiod() *fakeIstiod {
	f := &fakeIstiod{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promrun.IstiodMetrics(w, r, f.rejects.Load())
	}))
	return f
}

func (f *fakeIstiod) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }
func (f *fakeIstiod) close()       { f.srv.Close() }

// prometheus is a real Prometheus on loopback scraping the stand-in
// istiods every second.
type prometheus struct {
	cmd       *exec.Cmd
	addr      string
	args      []string
	logPath   string
	scrapeInt time.Duration
}

func startPrometheus(ctx context.Context, dir, target string) (*prometheus, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := promrun.IstiodScrapeConfig(target, "stable", "canary")
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p := &prometheus{addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, "prometheus.log"), scrapeInt: time.Second,
		args: []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
			"--web.listen-address=" + fmt.Sprintf("127.0.0.1:%d", port), "--query.lookback-delta=1m"}}
	return p, p.start(ctx)
}

// start (re)starts Prometheus on the same address and data, and waits
// until it has scraped the stand-in istiods.
func (p *prometheus) start(ctx context.Context) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	p.cmd = exec.Command("prometheus", p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting prometheus: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if v, err := p.query(ctx, `sum(up{app="istiod"})`); err == nil && v == 2 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
	return fmt.Errorf("prometheus never scraped the stand-in istiod; log:\n%s", harness.TailFile(p.logPath, 3000))
}

func (p *prometheus) url() string { return "http://" + p.addr }

func (p *prometheus) stop() {
	promrun.Stop(p.cmd)
	p.cmd = nil
}

// query returns the single value of an instant query.
func (p *prometheus) query(ctx context.Context, expr string) (float64, error) {
	return promrun.Scalar(ctx, p.url(), expr)
}
