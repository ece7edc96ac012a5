// Package fakeistio stands in for Istio's control plane in tests and the
// demo: sidecar injectors registered with the exact webhook selectors
// Istio's charts render (docs/istio.md), which mark each pod the way
// Istio records an injection, and istiod Services whose EndpointSlices
// say whether a revision is healthy.
package fakeistio

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

// Injectors serves one stand-in injector per revision at /inject/<rev>.
type Injectors struct {
	// URL is the shared listener's base URL (https://127.0.0.1:port): it
	// serves every revision's inject path. RevisionURL gives a revision a
	// listener of its own, as each revision's istiod has.
	URL string
	// CABundle verifies the server's certificate.
	CABundle []byte
	srv      *http.Server
	cert     tls.Certificate
	mu       sync.Mutex
	calls    map[string]int
	// reviews counts the requests to a revision's inject path, each of
	// which real istiod logs at info; ready counts the GETs of
	// /httpsReady on its own listener, which it does not log.
	reviews, ready map[string]int
	// revURLs maps a revision to its own listener's base URL, and addrs
	// that listener's address back to the revision.
	revURLs, addrs map[string]string
	// down maps a killed revision to how it fails (Kill, Freeze).
	down map[string]failure
}

// revKey carries, in a request's context, the revision whose own listener
// accepted the connection ("" on the shared one).
type revKey struct{}

// readyPath is what istiod's webhook server answers on its TLS port
// without logging (its own readiness check polls it); canary-router's
// injector check sends it between full reviews.
const readyPath = "/httpsReady"

// failure is how a killed injector treats a request.
type failure int

const (
	// dropConn closes the connection without an answer.
	dropConn failure = iota + 1
	// hang never answers, until the caller gives up.
	hang
)

// Start serves the injectors over TLS on loopback, with a certificate
// from ca.
func Start(ca *cluster.CA) (*Injectors, error) {
	certPEM, keyPEM, err := ca.IssueServing("istiod", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	in := &Injectors{CABundle: ca.CertPEM, cert: pair, calls: map[string]int{}, reviews: map[string]int{}, ready: map[string]int{},
		revURLs: map[string]string{}, addrs: map[string]string{}, down: map[string]failure{}}
	in.srv = &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		in.mu.Lock()
		defer in.mu.Unlock()
		return context.WithValue(ctx, revKey{}, in.addrs[c.LocalAddr().String()])
	}}
	if in.URL, err = in.listen(""); err != nil {
		return nil, err
	}
	return in, nil
}

// listen serves a new loopback TLS listener for rev ("" is the shared
// one) and returns its base URL.
func (in *Injectors) listen(rev string) (string, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{in.cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	in.mu.Lock()
	in.addrs[ln.Addr().String()] = rev
	in.mu.Unlock()
	go func() { _ = in.srv.Serve(ln) }()
	return "https://" + ln.Addr().String(), nil
}

// RevisionURL returns the base URL of rev's own listener, started on
// first use: like a revision's istiod, it serves /inject/<rev> and
// /httpsReady, and a killed or frozen revision fails on both.
func (in *Injectors) RevisionURL(rev string) (string, error) {
	in.mu.Lock()
	u, ok := in.revURLs[rev]
	in.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := in.listen(rev)
	if err != nil {
		return "", err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if prev, ok := in.revURLs[rev]; ok {
		return prev, nil // a concurrent caller won; its listener serves rev
	}
	in.revURLs[rev] = u
	return u, nil
}

// Requests counts what revision rev's istiod was asked: reviews, every
// request to its inject path (each one real istiod logs at info, and
// counts in sidecar_injection_requests_total), and ready, the quiet
// checks of /httpsReady on its own listener (none logged).
func (in *Injectors) Requests(rev string) (reviews, ready int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.reviews[rev], in.ready[rev]
}

// Close stops the server.
func (in *Injectors) Close() { _ = in.srv.Close() }

// Injected counts the pods revision rev injected.
func (in *Injectors) Injected(rev string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[rev]
}

// Kill makes revision rev's injector drop every request, as a dead istiod
// does while its EndpointSlice still says ready: the connection is closed
// without an answer, so the API server's call fails and Istio's
// fail-closed webhook refuses the pod. Revive undoes it.
func (in *Injectors) Kill(rev string) { in.setDown(rev, dropConn) }

// Freeze makes revision rev's injector accept requests and never answer,
// as an istiod whose node vanished or whose process is stuck: each call
// lasts until the caller's timeout. Revive undoes it.
func (in *Injectors) Freeze(rev string) { in.setDown(rev, hang) }

// Revive makes revision rev's injector answer again.
func (in *Injectors) Revive(rev string) { in.setDown(rev, 0) }

func (in *Injectors) setDown(rev string, f failure) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if f == 0 {
		delete(in.down, rev)
	} else {
		in.down[rev] = f
	}
}

func (in *Injectors) failure(rev string) failure {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.down[rev]
}

// ServeHTTP injects a pod: it adds what Istio's injector adds that a
// router test reads (the status annotation with the revision, annotation
// istio.io/rev, a proxy container).
func (in *Injectors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rev := strings.TrimPrefix(r.URL.Path, "/inject/")
	own, _ := r.Context().Value(revKey{}).(string)
	quiet := r.URL.Path == readyPath
	if quiet {
		rev = own
	}
	f := in.failure(rev)
	if own != "" && f == 0 {
		f = in.failure(own) // a dead istiod fails on every path
	}
	if f == 0 {
		in.mu.Lock()
		if quiet {
			in.ready[rev]++
		} else {
			in.reviews[rev]++
		}
		in.mu.Unlock()
	}
	switch f {
	case dropConn:
		// The body is read first so the close is a clean FIN: with unread
		// data the kernel sends a reset, which the API server retries for
		// seconds before it refuses the pod.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 8<<20))
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	case hang:
		// Reading the body lets the server notice the caller hanging up,
		// which ends the request's context.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 8<<20))
		<-r.Context().Done()
		return
	}
	if quiet {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(w, "bad pod", http.StatusBadRequest)
		return
	}
	// Istio's injector allows, unchanged, a pod that opts out by annotation
	// or lives in kube-system; canary-router's injector check sends such a
	// pod, and it must not count as an injection.
	if pod.Metadata.Annotations["sidecar.istio.io/inject"] == "false" || review.Request.Namespace == "kube-system" {
		writeReview(w, review, &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true})
		return
	}
	in.mu.Lock()
	in.calls[rev]++
	in.mu.Unlock()

	status := fmt.Sprintf(`{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":%q}`, rev)
	var ops []map[string]any
	if pod.Metadata.Annotations == nil {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
	}
	ops = append(ops,
		map[string]any{"op": "add", "path": "/metadata/annotations/sidecar.istio.io~1status", "value": status},
		map[string]any{"op": "add", "path": "/metadata/annotations/istio.io~1rev", "value": rev},
		map[string]any{"op": "add", "path": "/spec/containers/-",
			"value": map[string]string{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:" + rev}},
	)
	patch, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	writeReview(w, review, &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt})
}

func writeReview(w http.ResponseWriter, review admissionv1.AdmissionReview, resp *admissionv1.AdmissionResponse) {
	review.Response, review.Request = resp, nil
	out, _ := json.Marshal(review)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}
