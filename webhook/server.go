package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Paths the apiserver calls.
const (
	PathPods       = "/mutate-pods"
	PathNamespaces = "/mutate-namespaces"
)

// ServerOptions configures the admission server and the health server.
type ServerOptions struct {
	// Host and Port are where the TLS admission server listens.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, reloaded when they change. It is
	// ignored when GetCertificate is set.
	CertDir string
	// GetCertificate, when set, supplies the serving certificate (the
	// self-managed certificate held in memory).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// HealthAddr serves /healthz, /readyz and /metrics over plain HTTP. It
	// is a separate port so no admission endpoint is ever plaintext.
	HealthAddr string
	// Gatherer is read by /metrics.
	Gatherer prometheus.Gatherer
	// PolicyValidator, when set, is served at PathPolicy.
	PolicyValidator *PolicyValidator
}

// Check is one readiness condition; a nil error means ready.
type Check func() error

// Advisory marks a check's finding that /readyz reports without failing:
// a problem an operator must see, but one that taking the router out of
// service would only make worse. Advisory(nil) is nil.
func Advisory(err error) error {
	if err == nil {
		return nil
	}
	return advisoryError{err}
}

type advisoryError struct{ error }

func (e advisoryError) Unwrap() error { return e.error }

// Server runs the admission endpoints behind controller-runtime's webhook
// server, and the health and metrics endpoints beside it.
type Server struct {
	opts    ServerOptions
	webhook crwebhook.Server
	checks  map[string]Check
	health  *http.Server
	workers *workerProbe
}

// NewServer registers a's handlers. checks are added to /readyz, together
// with a check that the TLS server accepts connections (which also needs a
// serving certificate to be loaded) and one that the admission workers
// answer in time (workers_health.go), which /healthz also reads.
func NewServer(o ServerOptions, a *Admitter, checks map[string]Check) *Server {
	wh := crwebhook.NewServer(crwebhook.Options{
		Host:    o.Host,
		Port:    o.Port,
		CertDir: o.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			// kube-apiserver speaks TLS 1.2 and 1.3; Go prefers 1.3 when
			// both ends offer it.
			c.MinVersion = tls.VersionTLS12
			if o.GetCertificate != nil {
				c.GetCertificate = o.GetCertificate
			}
		}},
	})
	wh.Register(PathPods, a.PodHandler())
	wh.Register(PathNamespaces, a.NamespaceHandler())
	if o.PolicyValidator != nil {
		wh.Register(PathPolicy, a.PolicyHandler(o.PolicyValidator))
	}
	all := map[string]Check{}
	for k, v := range checks {
		all[k] = v
	}
	started := wh.StartedChecker()
	all["webhook-server"] = func() error {
		req, _ := http.NewRequest(http.MethodGet, "/readyz", nil)
		return started(req)
	}
	workers := newWorkerProbe(a, time.Now)
	all["admission-workers"] = workers.ready
	s := &Server{opts: o, webhook: wh, checks: all, workers: workers}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	s.health = &http.Server{Addr: o.HealthAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// readyz reports every failing check by name, so `kubectl describe pod`
// and a curl show what is missing.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var failed, advisories []string
	for _, n := range names {
		err := s.checks[n]()
		var adv advisoryError
		switch {
		case err == nil:
		case errors.As(err, &adv):
			advisories = append(advisories, fmt.Sprintf("warning: %s: %v", n, err))
		default:
			failed = append(failed, fmt.Sprintf("%s: %v", n, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n" + strings.Join(append(failed, advisories...), "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n" + strings.Join(append(advisories, ""), "\n")))
}

// healthz fails only for a wedged replica, one a restart would cure:
// anything else is readiness's business.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := s.workers.live(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("wedged\nadmission-workers: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run serves until ctx ends or a server fails, then waits for both
// servers to drain.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.HealthAddr)
	if err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go s.workers.Run(ctx)
	go func() { errs <- s.webhook.Start(ctx) }()
	go func() {
		if err := s.health.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("health server: %w", err)
			return
		}
		errs <- nil
	}()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.health.Shutdown(sctx)
	}()
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
