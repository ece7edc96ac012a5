// Package fakeistio stands in for Istio's control plane in tests and the
// demo: sidecar injectors registered with the exact webhook selectors
// Istio's charts render (docs/istio.md), which mark each pod the way
// Istio records an injection, and istiod Services whose EndpointSlices
// say whether a revision is healthy.
package fakeistio

import (
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
	// URL is the server's base URL (https://127.0.0.1:port).
	URL string
	// CABundle verifies the server's certificate.
	CABundle []byte
	srv      *http.Server
	mu       sync.Mutex
	calls    map[string]int
	// down maps a killed revision to how it fails (Kill, Freeze).
	down map[string]failure
}

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
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	in := &Injectors{URL: "https://" + ln.Addr().String(), CABundle: ca.CertPEM, calls: map[string]int{}, down: map[string]failure{}}
	in.srv = &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = in.srv.Serve(ln) }()
	return in, nil
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
	switch in.failure(rev) {
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
