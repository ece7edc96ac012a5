package istio

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// Defaults of the active check. With them a revision whose injector stops
// answering is taken out within Interval + Recheck + 2 x Timeout = 2.25 s
// of its death when connections hang, and within about Interval + Recheck
// = 1.25 s when they are refused or reset (docs/routing.md, "Health gate").
// The timeout is generous for what is checked: a TLS handshake and a
// request istiod answers in milliseconds.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 500 * time.Millisecond
	DefaultProbeRecheck  = 250 * time.Millisecond
	// DefaultProbeReviewEvery is how often a healthy revision gets a full
	// review instead of the quiet check: each costs istiod two info log
	// lines, so 2 replicas cost each istiod 4 lines a minute.
	DefaultProbeReviewEvery = time.Minute
)

// IstiodReadyPath is what the quiet check asks for. istiod's webhook
// server registers it on the same TLS listener and mux as /inject
// (pilot/pkg/bootstrap/webhook.go, polled by istiod's own readiness
// check) and answers 200 without a log line or a counter, whereas every
// request to /inject logs at info ("Process sidecar injection request")
// or at error (an empty or malformed body) and counts in
// sidecar_injection_requests_total. An injector that does not serve it
// answers 404, which is still an answer.
const IstiodReadyPath = "/httpsReady"

// ProbeFailureThreshold is how many failed checks in a row take a revision
// out. Two, with the second sent after Recheck rather than a full
// Interval: one dropped connection or one slow answer on a loaded node
// does not move pods, and a dead injector is still out within 3 s. One
// answered check brings a revision back.
const ProbeFailureThreshold = 2

// probeResponseLimit caps how much of an answer is read: the status code
// is the verdict, the body only has to be drained.
const probeResponseLimit = 64 << 10

// probeReview is the body of the full review: a dry-run CREATE of a pod that
// opted out of injection, in kube-system. Istio's injector decodes it and
// answers "allowed, no patch" (it skips kube-system and opted-out pods),
// so a review runs the same HTTP path as a real injection without
// injecting anything, and without the error log line and failed-injection
// count an empty body would cost istiod.
var probeReview = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` +
	`"uid":"canary-router-injector-probe","kind":{"group":"","version":"v1","kind":"Pod"},` +
	`"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},` +
	`"requestResource":{"group":"","version":"v1","resource":"pods"},"name":"canary-router-injector-probe",` +
	`"namespace":"kube-system","operation":"CREATE","userInfo":{"username":"system:serviceaccount:canary-router-system:canary-router"},` +
	`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"canary-router-injector-probe","namespace":"kube-system",` +
	`"annotations":{"sidecar.istio.io/inject":"false"}},"spec":{"containers":[{"name":"probe","image":"none"}]}},` +
	`"oldObject":null,"dryRun":true,"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}`)

// ProbeResult is one check of one revision's injector.
type ProbeResult struct {
	Revision string
	// URL is the address checked.
	URL string
	// Err is nil when the injector answered: any HTTP response below 500.
	Err     error
	Latency time.Duration
	// Down is the verdict after this check: ProbeFailureThreshold failures
	// in a row, and no answer since.
	Down bool
}

// ProbeObserver receives each round of checks, one call per round, from
// the Prober's goroutine (metrics).
type ProbeObserver interface {
	ObserveProbes(results []ProbeResult)
}

// ProberOptions configures a Prober.
type ProberOptions struct {
	// State returns the State in force (Watcher.Current): the revisions to
	// check and where their injectors are served. nil skips a round.
	State func() *State
	// Report receives the revisions whose injector does not answer, each
	// with what the check saw, whenever that set or its members change
	// (Watcher.SetNotAnswering). The map is the callee's.
	Report func(notAnswering map[string]string)
	// Interval between rounds, Timeout of one check (connect, TLS, answer),
	// and Recheck, the shorter wait before confirming a first failure.
	// ReviewEvery is how often a revision that answers gets the full
	// review rather than the quiet check. Zero takes the defaults.
	Interval, Timeout, Recheck, ReviewEvery time.Duration
	// Clock schedules the rounds; nil is the real clock.
	Clock    clock.Clock
	Observer ProbeObserver
	Log      *zap.Logger
}

// Prober is the active half of the health gate. EndpointSlices say an
// istiod is ready until the kubelet notices it is not, which takes
// seconds; meanwhile Istio's fail-closed webhook refuses every pod routed
// to it. The Prober closes that window by asking each revision's injector
// webhook itself, the way the API server will.
type Prober struct {
	o ProberOptions
	// tracks and reported are touched only by the goroutine running rounds.
	tracks   map[string]*probeTrack
	reported map[string]string
	// dial replaces the network dialer in tests, which serve a Service
	// reference's <name>.<namespace>.svc name on loopback.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// probeTrack is what the Prober remembers of one revision between rounds.
type probeTrack struct {
	target ProbeTarget
	client *http.Client
	// readyURL is the quiet check's address: the webhook's scheme, host
	// and port with IstiodReadyPath; "" when the URL does not parse, and
	// every check is then a full review.
	readyURL string
	// reviewed is when the injector last answered a full review.
	reviewed time.Time
	failures int
	// why is the report of a revision taken out, fixed at the moment it was
	// taken out so a changing error text does not rebuild the State every
	// round.
	why string
}

// NewProber returns a Prober; Run starts it.
func NewProber(o ProberOptions) *Prober {
	if o.Interval <= 0 {
		o.Interval = DefaultProbeInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultProbeTimeout
	}
	if o.Recheck <= 0 {
		o.Recheck = DefaultProbeRecheck
	}
	if o.ReviewEvery <= 0 {
		o.ReviewEvery = DefaultProbeReviewEvery
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &Prober{o: o, tracks: map[string]*probeTrack{}, reported: map[string]string{}}
}

// Run checks every revision each Interval until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	for {
		next := p.round(ctx)
		t := p.o.Clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// round checks every revision of the current State once, in parallel so
// one hung injector does not delay the others, reports a changed verdict,
// and returns the wait before the next round.
func (p *Prober) round(ctx context.Context) time.Duration {
	var targets map[string]ProbeTarget
	if s := p.o.State(); s != nil {
		targets = s.probes
	}
	for rev := range p.tracks {
		if _, ok := targets[rev]; !ok {
			delete(p.tracks, rev)
		}
	}
	revs := slices.Sorted(maps.Keys(targets))
	results := make([]ProbeResult, len(revs))
	now := p.o.Clock.Now()
	var wg sync.WaitGroup
	for i, rev := range revs {
		tr := p.track(targets[rev])
		review := p.reviewDue(tr, now)
		wg.Go(func() {
			results[i] = p.check(ctx, tr, review)
			if review && results[i].Err == nil {
				tr.reviewed = now
			}
		})
	}
	wg.Wait()

	next := p.o.Interval
	down := map[string]string{}
	for i := range results {
		r := &results[i]
		tr := p.tracks[r.Revision]
		if r.Err == nil {
			if tr.failures >= ProbeFailureThreshold {
				p.o.Log.Info("istio injector answers again", zap.String("revision", r.Revision), zap.String("url", r.URL))
			}
			tr.failures, tr.why = 0, ""
			continue
		}
		tr.failures++
		if tr.failures < ProbeFailureThreshold {
			next = min(next, p.o.Recheck)
			continue
		}
		if tr.why == "" {
			tr.why = describeFailure(tr.target, r.Err)
			p.o.Log.Warn("istio injector does not answer: routing around its revision",
				zap.String("revision", r.Revision), zap.String("url", r.URL), zap.Error(r.Err))
		}
		r.Down = true
		down[r.Revision] = tr.why
	}
	if p.o.Observer != nil {
		p.o.Observer.ObserveProbes(results)
	}
	if !maps.Equal(down, p.reported) {
		p.reported = down
		if p.o.Report != nil {
			p.o.Report(maps.Clone(down))
		}
	}
	return next
}

// track returns the revision's track, with a new client when its
// injector's address or caBundle changed. The failures carry over: a
// revision taken out comes back only once it answers, wherever it is.
func (p *Prober) track(t ProbeTarget) *probeTrack {
	tr := p.tracks[t.Revision]
	if tr == nil || !sameProbeTarget(tr.target, t) {
		next := &probeTrack{target: t, client: probeClient(t, p.dial), readyURL: readyURL(t.URL)}
		if tr != nil {
			next.failures, next.why = tr.failures, tr.why
		}
		tr = next
		p.tracks[t.Revision] = tr
	}
	return tr
}

// reviewDue reports whether a revision's next check is the full review:
// its first check, every ReviewEvery, and every check after a failure,
// so a failing revision is judged on the path the API server calls and
// comes back only once that path answers. Otherwise the check is the
// quiet one, which costs istiod no log line: the same TLS handshake on
// the same listener, hence the same verdict for a dead, unreachable or
// hung istiod (docs/routing.md, "The injector check").
func (p *Prober) reviewDue(tr *probeTrack, now time.Time) bool {
	return tr.readyURL == "" || tr.failures > 0 || tr.reviewed.IsZero() || now.Sub(tr.reviewed) >= p.o.ReviewEvery
}

// readyURL is the quiet check's address for a webhook URL.
func readyURL(webhook string) string {
	u, err := url.Parse(webhook)
	if err != nil || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: IstiodReadyPath}).String()
}

// check sends one request: the full review, or the quiet GET of
// IstiodReadyPath. Any HTTP answer below 500 proves the injector process
// is up and reachable, as the API server would reach it: a 4xx means it
// read the request. Refused or reset connections, a TLS failure, no
// answer within Timeout, and 5xx (the process, or a proxy before it,
// cannot serve) are failures.
func (p *Prober) check(ctx context.Context, tr *probeTrack, review bool) ProbeResult {
	r := ProbeResult{Revision: tr.target.Revision, URL: tr.target.URL}
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	start := p.o.Clock.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tr.readyURL, nil)
	if review {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, tr.target.URL, bytes.NewReader(probeReview))
	}
	if err != nil {
		r.Err = err
		return r
	}
	if review {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := tr.client.Do(req)
	r.Latency = p.o.Clock.Since(start)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.Err = fmt.Errorf("no answer within %s: %w", p.o.Timeout, err)
	case err != nil:
		r.Err = err
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, probeResponseLimit))
		_ = resp.Body.Close()
		if resp.StatusCode >= http.StatusInternalServerError {
			r.Err = fmt.Errorf("HTTP %s", resp.Status)
		}
	}
	return r
}

// probeClient is an HTTP client that trusts only the webhook's caBundle
// (or the system roots when it has none, as the API server does) and
// opens a new connection for every check: a kept-alive connection could
// outlive a listener that no longer accepts new ones, and the API server
// would need a new one.
func probeClient(t ProbeTarget, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(t.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CABundle) {
			// Verification then fails against an empty pool, as it does in
			// the API server: the webhook cannot be called.
			pool = x509.NewCertPool()
		}
		cfg.RootCAs = pool
	}
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, Proxy: nil, DialContext: dial},
		// A redirect is an answer; the API server does not follow it either.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// describeFailure is the Detail of a revision taken out by the check.
func describeFailure(t ProbeTarget, err error) string {
	return fmt.Sprintf("the injector webhook of revision %s (%s/%s at %s) failed %d checks in a row (last: %v), though istiod's EndpointSlices still say ready",
		t.Revision, t.Config, t.Webhook, t.URL, ProbeFailureThreshold, err)
}
