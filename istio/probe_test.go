package istio

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// testCA issues serving certificates for the probe tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) serving(t *testing.T, dnsNames ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "istiod"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dnsNames, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// injectorServer is a stand-in injector whose behaviour a test switches.
type injectorServer struct {
	*httptest.Server
	// mode: "" answers the review, "close" drops the connection,
	// "hang" never answers, else an HTTP status code to answer with.
	mode  atomic.Value
	calls atomic.Int32
	// reviews counts POSTs to the inject path (what istiod logs), ready
	// the quiet GETs of IstiodReadyPath (what it does not).
	reviews, ready atomic.Int32
}

func newInjectorServer(t *testing.T, cert tls.Certificate) *injectorServer {
	t.Helper()
	s := &injectorServer{}
	s.mode.Store("")
	hang := make(chan struct{})
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		quiet := r.Method == http.MethodGet && r.URL.Path == IstiodReadyPath
		if quiet {
			s.ready.Add(1)
		} else {
			s.reviews.Add(1)
		}
		mode := s.mode.Load().(string)
		if mode == "hang-inject" {
			// istiod answers its ready path while the inject handler is stuck.
			mode = map[bool]string{true: "", false: "hang"}[quiet]
		}
		switch mode {
		case "":
			if quiet {
				w.WriteHeader(http.StatusOK)
				return
			}
			var review admissionv1.AdmissionReview
			if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&review) != nil ||
				review.Request == nil || review.Request.DryRun == nil || !*review.Request.DryRun {
				http.Error(w, "not a dry-run review", http.StatusBadRequest)
				return
			}
			review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
			review.Request = nil
			_ = json.NewEncoder(w).Encode(review)
		case "close":
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		case "hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			code := map[string]int{"400": 400, "503": 503, "302": 302}[mode]
			if code == 302 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(code)
		}
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// The failures are the point of these tests; keep their log out.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(func() { close(hang); s.Close() })
	return s
}

// stateWith is a State whose revision canary's own config has one webhook
// served at url.
func stateWith(url string, ca []byte) *State {
	return NewState([]Config{{Name: "istio-sidecar-injector-canary", Rev: "canary",
		Webhooks: []Webhook{{Name: "rev.namespace.sidecar-injector.istio.io", Client: ClientConfig{URL: url + "/inject/canary", CABundle: ca}}}}},
		[]Endpoints{{Service: "istiod-canary", Ready: true}}, "istio-system", "canary-router")
}

func TestProbeCheck(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "localhost"))
	closed := newInjectorServer(t, ca.serving(t, "localhost"))
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name     string
		mode     string
		url      string
		ca       []byte
		answered bool
		err      string
	}{
		{name: "the review is answered", answered: true},
		{name: "a 4xx proves the injector read the request", mode: "400", answered: true},
		{name: "a redirect is an answer, not followed", mode: "302", answered: true},
		{name: "5xx", mode: "503", err: "HTTP 503"},
		{name: "connection dropped", mode: "close", err: "EOF"},
		{name: "no answer within the timeout", mode: "hang", err: "no answer within 200ms"},
		{name: "connection refused", url: closedURL, err: "connection refused"},
		{name: "certificate from another CA", ca: newTestCA(t).pem, err: "certificate signed by unknown authority"},
		{name: "caBundle without a certificate", ca: []byte("not PEM"), err: "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		// The quiet check and the full review reach the same verdict: they
		// share the listener, the TLS handshake and the server.
		for _, review := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/review=%v", tt.name, review), func(t *testing.T) {
				srv.mode.Store(tt.mode)
				url, bundle := srv.URL, ca.pem
				if tt.url != "" {
					url = tt.url
				}
				if tt.ca != nil {
					bundle = tt.ca
				}
				p := NewProber(ProberOptions{Timeout: 200 * time.Millisecond})
				reviews, ready := srv.reviews.Load(), srv.ready.Load()
				r := p.check(context.Background(), p.track(ProbeTarget{Revision: "canary", URL: url + "/inject/canary", CABundle: bundle}), review)
				if (r.Err == nil) != tt.answered {
					t.Fatalf("answered = %v (err %v), want %v", r.Err == nil, r.Err, tt.answered)
				}
				if tt.err != "" && !strings.Contains(r.Err.Error(), tt.err) {
					t.Errorf("err = %v, want it to mention %q", r.Err, tt.err)
				}
				if r.Latency <= 0 || r.Latency > 2*time.Second {
					t.Errorf("latency %v", r.Latency)
				}
				if tt.url == "" && tt.ca == nil {
					gotReviews, gotReady := srv.reviews.Load()-reviews, srv.ready.Load()-ready
					if review && (gotReviews != 1 || gotReady != 0) || !review && (gotReviews != 0 || gotReady != 1) {
						t.Errorf("review=%v sent %d reviews and %d quiet checks", review, gotReviews, gotReady)
					}
				}
			})
		}
	}
}

func TestReadyURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://istiod-canary.istio-system.svc:443/inject":                        "https://istiod-canary.istio-system.svc:443/httpsReady",
		"https://istiod.istio-system.svc:443/inject/cluster/c1/net/n1?timeout=10s": "https://istiod.istio-system.svc:443/httpsReady",
		"https://127.0.0.1:15017/inject/canary":                                    "https://127.0.0.1:15017/httpsReady",
		"https://[::1]:15017/inject":                                               "https://[::1]:15017/httpsReady",
		"no host":                                                                  "",
		"https://bad host/inject":                                                  "",
	} {
		if got := readyURL(in); got != want {
			t.Errorf("readyURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProberQuietBetweenReviews: a revision that answers gets one full
// review (two istiod log lines) per ReviewEvery, the quiet check in every
// other round; a failure of the quiet check is confirmed by a review, and
// only an answered review brings the revision back.
func TestProberQuietBetweenReviews(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "localhost"))
	s := stateWith(srv.URL, ca.pem)
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var reports []map[string]string
	p := NewProber(ProberOptions{State: func() *State { return s }, Report: func(m map[string]string) { reports = append(reports, m) },
		Timeout: 200 * time.Millisecond, Clock: clk})
	ctx := context.Background()
	// Ten minutes of rounds, one a second.
	for range 600 {
		clk.Step(p.round(ctx))
	}
	if got, ready := srv.reviews.Load(), srv.ready.Load(); got != 10 || ready != 590 {
		t.Fatalf("in 600 rounds: %d reviews and %d quiet checks, want 10 and 590", got, ready)
	}
	t.Logf("RESULT probe-cost rounds=600 reviews=%d quiet=%d reviews_per_minute=%.1f", srv.reviews.Load(), srv.ready.Load(), float64(srv.reviews.Load())/10)
	clk.Step(p.round(ctx)) // the review due at 10 minutes

	// The injector dies: the quiet check fails, the recheck is a review.
	srv.mode.Store("close")
	reviews := srv.reviews.Load()
	if next := p.round(ctx); next != DefaultProbeRecheck || srv.reviews.Load() != reviews {
		t.Fatalf("first failure: next %v, %d reviews sent; want the recheck and no review", next, srv.reviews.Load()-reviews)
	}
	clk.Step(DefaultProbeRecheck)
	p.round(ctx)
	if srv.reviews.Load() != reviews+1 || len(reports) != 1 || reports[0]["canary"] == "" {
		t.Fatalf("confirming check: %d reviews, reports %v; want one review and canary down", srv.reviews.Load()-reviews, reports)
	}
	// Its ready path comes back while the inject handler is stuck: the
	// revision stays out, judged by reviews.
	srv.mode.Store("hang-inject")
	clk.Step(time.Second)
	p.round(ctx)
	if len(reports) != 1 {
		t.Fatalf("a quiet answer brought back a revision whose reviews fail: %v", reports)
	}
	srv.mode.Store("")
	clk.Step(time.Second)
	p.round(ctx)
	if len(reports) != 2 || len(reports[1]) != 0 {
		t.Fatalf("an answered review did not bring canary back: %v", reports)
	}
}

// TestProberHungInjectHandler: an injector whose ready path answers while
// its inject handler hangs is found by the next full review, within
// ReviewEvery + Recheck + 2 x Timeout: the price of the quiet check
// (docs/routing.md).
func TestProberHungInjectHandler(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "localhost"))
	s := stateWith(srv.URL, ca.pem)
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var down bool
	p := NewProber(ProberOptions{State: func() *State { return s }, Report: func(m map[string]string) { down = m["canary"] != "" },
		Timeout: 100 * time.Millisecond, Clock: clk})
	ctx := context.Background()
	clk.Step(p.round(ctx)) // the first review
	srv.mode.Store("hang-inject")
	start := clk.Now()
	for !down && clk.Since(start) < 2*DefaultProbeReviewEvery {
		clk.Step(p.round(ctx))
	}
	if !down || clk.Since(start) > DefaultProbeReviewEvery+DefaultProbeRecheck {
		t.Errorf("down=%v after %v, want it within %v", down, clk.Since(start), DefaultProbeReviewEvery+DefaultProbeRecheck)
	}
}

// loopbackDialer sends every connection to addr, standing in for the
// cluster DNS that resolves a Service name.
func loopbackDialer(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestProbeServiceReference(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "istiod-canary.istio-system.svc"))
	s := NewState([]Config{{Name: "istio-sidecar-injector-canary", Rev: "canary", Webhooks: []Webhook{{Name: "rev.namespace.sidecar-injector.istio.io",
		Client: ClientConfig{Service: &ServiceRef{Namespace: "istio-system", Name: "istiod-canary", Path: "/inject", Port: 443}, CABundle: ca.pem}}}}},
		nil, "istio-system", "canary-router")
	var dialed string
	p := NewProber(ProberOptions{State: func() *State { return s }, Timeout: time.Second})
	p.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = addr
		return loopbackDialer(srv.Listener.Addr().String())(ctx, network, addr)
	}
	p.round(context.Background())
	if tr := p.tracks["canary"]; tr == nil || tr.failures != 0 {
		t.Fatalf("track %+v, want an answered check", tr)
	}
	if dialed != "istiod-canary.istio-system.svc:443" || srv.calls.Load() != 1 {
		t.Errorf("dialed %q, %d calls; want istiod-canary.istio-system.svc:443 once", dialed, srv.calls.Load())
	}

	// A certificate that does not name the Service fails, as it does in
	// the API server.
	other := newInjectorServer(t, ca.serving(t, "istiod-other.istio-system.svc"))
	p = NewProber(ProberOptions{Timeout: time.Second})
	p.dial = loopbackDialer(other.Listener.Addr().String())
	r := p.check(context.Background(), p.track(s.ProbeTargets()["canary"]), false)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "certificate is valid for istiod-other.istio-system.svc") {
		t.Errorf("err = %v, want a name mismatch", r.Err)
	}
}

// recorder collects what a Prober reports and observes.
type recorder struct {
	reports chan map[string]string
	rounds  chan []ProbeResult
}

func newRecorder() *recorder {
	return &recorder{reports: make(chan map[string]string, 16), rounds: make(chan []ProbeResult, 16)}
}

func (r *recorder) ObserveProbes(res []ProbeResult) { r.rounds <- res }

func TestProberThresholdAndRecovery(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "localhost"))
	s := stateWith(srv.URL, ca.pem)
	rec := newRecorder()
	p := NewProber(ProberOptions{State: func() *State { return s }, Report: func(m map[string]string) { rec.reports <- m },
		Interval: time.Second, Timeout: 200 * time.Millisecond, Recheck: 250 * time.Millisecond, Observer: rec})
	ctx := context.Background()

	if next := p.round(ctx); next != time.Second {
		t.Errorf("after an answer the next round is in %v, want the interval", next)
	}
	srv.mode.Store("close")
	if next := p.round(ctx); next != 250*time.Millisecond {
		t.Errorf("after a first failure the next round is in %v, want the recheck delay", next)
	}
	if len(rec.reports) != 0 {
		t.Fatalf("one failure reported: %v", <-rec.reports)
	}
	if next := p.round(ctx); next != time.Second {
		t.Errorf("once down the next round is in %v, want the interval", next)
	}
	got := <-rec.reports
	why := got["canary"]
	for _, want := range []string{"injector webhook of revision canary", "istio-sidecar-injector-canary/rev.namespace.sidecar-injector.istio.io", srv.URL + "/inject/canary", "failed 2 checks in a row", "EOF"} {
		if !strings.Contains(why, want) {
			t.Errorf("report %q does not mention %q", why, want)
		}
	}
	// Still failing, now with another error: no new report.
	srv.mode.Store("503")
	p.round(ctx)
	if len(rec.reports) != 0 {
		t.Errorf("an unchanged verdict was reported again: %v", <-rec.reports)
	}
	// The webhook's caBundle changes while it still fails: the revision
	// stays out, it has not answered.
	srv.mode.Store("")
	s = stateWith(srv.URL, newTestCA(t).pem)
	p.round(ctx)
	if len(rec.reports) != 0 {
		t.Errorf("a new address brought back a revision that never answered: %v", <-rec.reports)
	}
	s = stateWith(srv.URL, ca.pem)
	// One answer brings it back.
	p.round(ctx)
	if got := <-rec.reports; len(got) != 0 {
		t.Errorf("after one answer the report is %v, want none down", got)
	}
	var downs []bool
	for len(rec.rounds) > 0 {
		r := <-rec.rounds
		if len(r) != 1 || r[0].Revision != "canary" {
			t.Fatalf("round %+v, want one result for canary", r)
		}
		downs = append(downs, r[0].Down)
	}
	if want := []bool{false, false, true, true, true, false}; !equalBools(downs, want) {
		t.Errorf("observed verdicts %v, want %v", downs, want)
	}

	// The revision leaves the State: its track goes, and a verdict with it.
	srv.mode.Store("close")
	p.round(ctx)
	p.round(ctx)
	<-rec.reports
	s = NewState(nil, nil, "istio-system", "canary-router")
	p.round(ctx)
	if got := <-rec.reports; len(got) != 0 || len(p.tracks) != 0 {
		t.Errorf("after the revision left: report %v, tracks %v", got, p.tracks)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProberRunWindow drives Run with a fake clock: a dead injector is
// reported one Interval plus one Recheck after its last answer, and a
// recovered one at the next round.
func TestProberRunWindow(t *testing.T) {
	ca := newTestCA(t)
	srv := newInjectorServer(t, ca.serving(t, "localhost"))
	s := stateWith(srv.URL, ca.pem)
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	rec := newRecorder()
	p := NewProber(ProberOptions{State: func() *State { return s }, Report: func(m map[string]string) { rec.reports <- m },
		Timeout: time.Second, Clock: clk, Observer: rec})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()

	waitRound := func(what string) []ProbeResult {
		t.Helper()
		select {
		case r := <-rec.rounds:
			for !clk.HasWaiters() {
				time.Sleep(time.Millisecond)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no round: %s", what)
			return nil
		}
	}
	waitRound("at start")
	srv.mode.Store("close") // the injector dies just after a round
	killed := clk.Now()
	clk.Step(DefaultProbeInterval - time.Millisecond)
	select {
	case <-rec.rounds:
		t.Fatal("a round before the interval")
	case <-time.After(50 * time.Millisecond):
	}
	clk.Step(time.Millisecond)
	if r := waitRound("first failure"); r[0].Err == nil || r[0].Down {
		t.Fatalf("first check after the kill: %+v", r[0])
	}
	clk.Step(DefaultProbeRecheck)
	if r := waitRound("confirming failure"); !r[0].Down {
		t.Fatalf("second check after the kill: %+v", r[0])
	}
	if got := <-rec.reports; got["canary"] == "" {
		t.Fatalf("report %v, want canary down", got)
	}
	window := clk.Since(killed)
	t.Logf("RESULT probe-window fake_clock_kill_to_report=%s (interval %s + recheck %s)", window, DefaultProbeInterval, DefaultProbeRecheck)
	if window > DefaultProbeInterval+DefaultProbeRecheck {
		t.Errorf("window %v", window)
	}

	srv.mode.Store("")
	clk.Step(DefaultProbeInterval)
	waitRound("recovery")
	if got := <-rec.reports; len(got) != 0 {
		t.Errorf("after recovery: %v", got)
	}
	cancel()
	<-done
}

func TestProbeWorstCaseWindowWithinGoal(t *testing.T) {
	// A hung connection costs a full timeout on both failing checks.
	worst := DefaultProbeInterval + DefaultProbeTimeout + DefaultProbeRecheck + DefaultProbeTimeout
	if worst > 3*time.Second {
		t.Errorf("worst-case window %v exceeds the 3 s goal", worst)
	}
}
