package main

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
	"github.com/canary-router/canary-router/test/promrun"
)

// monitoring is the demo's bad-canary signal, as test/rollout plays it: a
// stand-in for the istiods' monitoring port exporting
// pilot_total_xds_rejects per revision, scraped every second by a real
// Prometheus that the rollout's PromQL gate queries.
type monitoring struct {
	istiod  *httptest.Server
	rejects atomic.Int64 // the canary's; the demo raises it to play a bad push
	cmd     *exec.Cmd
	addr    string
	logPath string
}

// startMonitoring starts the stand-in istiod and Prometheus, and returns
// once Prometheus has scraped it.
func startMonitoring(ctx context.Context, dir, addr string) (*monitoring, error) {
	m := &monitoring{logPath: filepath.Join(dir, "logs", "prometheus.log")}
	m.istiod = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promrun.IstiodMetrics(w, r, m.rejects.Load())
	}))
	m.addr = addr
	cfg := promrun.IstiodScrapeConfig(strings.TrimPrefix(m.istiod.URL, "http://"), "stable", "canary")
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		m.stop()
		return nil, err
	}
	logFile, err := os.Create(m.logPath)
	if err != nil {
		m.stop()
		return nil, err
	}
	defer logFile.Close()
	m.cmd = exec.Command("prometheus", "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+m.addr, "--query.lookback-delta=1m")
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	// Its own process group, so stop reaches it and a Ctrl-C meant for the
	// demo does not kill it before the demo's deferred cleanup runs.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		m.cmd = nil
		m.stop()
		return nil, fmt.Errorf("starting prometheus: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if v, err := m.query(ctx, `sum(up{app="istiod"})`); err == nil && v == 2 {
			return m, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.stop()
	return nil, fmt.Errorf("prometheus never scraped the stand-in istiod (log: %s)", m.logPath)
}

func (m *monitoring) url() string { return "http://" + m.addr }

func (m *monitoring) stop() {
	promrun.Stop(m.cmd)
	m.cmd = nil
	m.istiod.Close()
}

// query returns the single value of an instant query.
func (m *monitoring) query(ctx context.Context, expr string) (float64, error) {
	return promrun.Scalar(ctx, m.url(), expr)
}

// monitoringStart is Prometheus starting in the background, so its start
// overlaps the first part of the demo; mon stays nil without Prometheus
// on PATH.
type monitoringStart struct {
	done chan struct{}
	mon  *monitoring
	err  error
	// url is where Prometheus will listen, known before it starts so
	// the router's allowlist (--prometheus-allowed-url) can name it; ""
	// without Prometheus.
	url string
}

func startMonitoringBackground(ctx context.Context, dir string) *monitoringStart {
	s := &monitoringStart{done: make(chan struct{})}
	port, err := cluster.FreePort()
	if _, lookErr := exec.LookPath("prometheus"); lookErr != nil || err != nil {
		s.err = err
		close(s.done)
		return s
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.url = "http://" + addr
	go func() {
		defer close(s.done)
		s.mon, s.err = startMonitoring(ctx, dir, addr)
	}()
	return s
}

func (s *monitoringStart) wait() (*monitoring, error) {
	<-s.done
	return s.mon, s.err
}

func (s *monitoringStart) stop() {
	if m, _ := s.wait(); m != nil {
		m.stop()
	}
}
