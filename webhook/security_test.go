package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	testcluster "github.com/canary-router/canary-router/test/cluster"

	"github.com/canary-router/canary-router/test/wiretest"
)

// TestPatchTouchesOnlyLabelsAndAnnotations is the property test behind
// the router's promise that it only routes: for random pods and
// namespaces (router, Istio and odd keys in their labels and
// annotations, every operation, every policy) and random review-shaped
// bytes, every patch adds or removes only labels and annotations, applies
// cleanly to the object as kube-apiserver serialises it, and leaves every
// key but the router's own unchanged.
func TestPatchTouchesOnlyLabelsAndAnnotations(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	endpoints := fuzzEndpoints(t)
	rng := rand.New(rand.NewPCG(9, 9))
	gen := wiretest.NewGen(9)
	patched := 0
	for i := range n {
		e := endpoints[rng.IntN(len(endpoints))]
		var body []byte
		if i%4 == 3 {
			body = gen.Review()
		} else {
			body = randomReview(t, rng, e.resource)
		}
		if serveAdmission(t, e.h, e.path, body).resp.Patch != nil {
			patched++
		}
		checkCanonical(t, e.h, e.path, e.resource, body)
	}
	if patched < n/10 {
		t.Fatalf("only %d of %d requests were patched: the generator misses the routed cases", patched, n)
	}
	t.Logf("%d requests, %d patched", n, patched)
}

var (
	propKeys = []string{"istio.io/rev", "istio-injection", "sidecar.istio.io/inject", "canary-router.io/injection",
		"canary-router.io/decision", "inject.istio.io/templates", "app", "a/b", "~0~1/", "x~", "ünï/cödé", "", "pod-template-hash"}
	propValues = []string{"", "enabled", "disabled", "false", "true", "gateway", "stable", "canary", "old",
		`{"revision":"canary"}`, "\u2028<&>\"\\", strings.Repeat("v", 70)}
	propPlainKeys  = []string{"app", "team", "a/b", "~0~1/", "x~", "ünï/cödé", "", "pod-template-hash", "version"}
	propNamespaces = []string{"shop", "shop", "shop", "shop", "skip", "kube-system", "canary-router-system", ""}
	propOps        = []string{"CREATE", "CREATE", "CREATE", "CREATE", "CREATE", "UPDATE", "DELETE", "CONNECT"}
)

// randomReview is a review of a random pod or namespace for resource.
func randomReview(t *testing.T, rng *rand.Rand, resource string) []byte {
	t.Helper()
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	randomMap := func() map[string]string {
		if rng.IntN(4) == 0 {
			return nil
		}
		m := map[string]string{"app": "web"}
		for range rng.IntN(4) {
			if rng.IntN(3) == 0 {
				m[pick(propKeys)] = pick(propValues)
			} else {
				m[pick(propPlainKeys)] = pick(propValues)
			}
		}
		if resource == resourceNamespaces && rng.IntN(2) == 0 {
			m["istio-injection"] = "enabled"
		}
		return m
	}
	ns := pick(propNamespaces)
	meta := metav1.ObjectMeta{Namespace: ns, Labels: randomMap(), Annotations: randomMap()}
	if rng.IntN(2) == 0 {
		meta.Name = fmt.Sprintf("p-%d", rng.IntN(100))
	} else {
		meta.GenerateName = "web-5d8f-"
	}
	if rng.IntN(3) > 0 {
		ctrl := rng.IntN(4) > 0
		kind := pick([]string{"ReplicaSet", "StatefulSet", "DaemonSet", "Job", ""})
		meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: "web-5d8f", UID: "u", Controller: &ctrl}}
	}
	op := pick(propOps)
	if resource == resourceNamespaces {
		meta.Name, meta.Namespace = ns, ""
		return reviewBody(t, resource, op, "", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: meta}, rng.IntN(8) == 0)
	}
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta,
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	return reviewBody(t, resource, op, ns, pod, rng.IntN(8) == 0)
}

// tlsRouter serves a fixture's handlers through the real Server on
// loopback: TLS admission port and plain-HTTP health port.
type tlsRouter struct {
	admission, health string // host:port
	roots             *x509.CertPool
}

func startTLSRouter(t *testing.T) *tlsRouter {
	t.Helper()
	ca, err := testcluster.NewCA("security-test")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServing("canary-router", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	port, err := testcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	healthPort, err := testcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testPolicy)
	srv := NewServer(ServerOptions{
		Host: "127.0.0.1", Port: port,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil },
		HealthAddr:     fmt.Sprintf("127.0.0.1:%d", healthPort),
		Gatherer:       f.reg,
	}, f.admitter, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	r := &tlsRouter{admission: fmt.Sprintf("127.0.0.1:%d", port), health: fmt.Sprintf("127.0.0.1:%d", healthPort), roots: x509.NewCertPool()}
	r.roots.AddCert(ca.Cert)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", r.admission, &tls.Config{RootCAs: r.roots})
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission server not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSVersions: TLS 1.2 is the minimum, 1.3 is what a default client
// gets, and no TLS 1.0 or 1.1 client completes a handshake.
func TestTLSVersions(t *testing.T) {
	r := startTLSRouter(t)
	cases := []struct {
		name     string
		min, max uint16
		want     uint16 // 0: refused
	}{
		{"TLS 1.0 client refused", tls.VersionTLS10, tls.VersionTLS10, 0},
		{"TLS 1.1 client refused", tls.VersionTLS10, tls.VersionTLS11, 0},
		{"TLS 1.2 client accepted", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12},
		{"default client negotiates TLS 1.3", 0, 0, tls.VersionTLS13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", r.admission, &tls.Config{RootCAs: r.roots, MinVersion: c.min, MaxVersion: c.max})
			if c.want == 0 {
				if err == nil {
					v := conn.ConnectionState().Version
					conn.Close()
					t.Fatalf("handshake completed with %s", tls.VersionName(v))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != c.want {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(v), tls.VersionName(c.want))
			}
		})
	}
}

// TestNoPlaintextAdmission: plain HTTP to the admission port gets no
// admission answer, and the health port, which is plain HTTP, serves no
// admission endpoint; metrics are on the health port only.
func TestNoPlaintextAdmission(t *testing.T) {
	r := startTLSRouter(t)
	body := reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "1", nil), false)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.roots}}}
	plain := &http.Client{Timeout: 5 * time.Second}

	// The TLS endpoint works, so the refusals below are not an accident.
	if code, out := do(t, tlsClient, http.MethodPost, "https://"+r.admission+PathPods, body); code != 200 || !strings.Contains(out, `"allowed":true`) {
		t.Fatalf("admission over TLS: HTTP %d %s", code, out)
	}
	cases := []struct {
		name   string
		client *http.Client
		method string
		url    string
		want   func(code int, body string) bool
	}{
		{"plain HTTP to the admission port", plain, http.MethodPost, "http://" + r.admission + PathPods, noAdmissionAnswer},
		{"plain HTTP to the namespace endpoint", plain, http.MethodPost, "http://" + r.admission + PathNamespaces, noAdmissionAnswer},
		{"admission on the health port", plain, http.MethodPost, "http://" + r.health + PathPods, notFound},
		{"namespace admission on the health port", plain, http.MethodPost, "http://" + r.health + PathNamespaces, notFound},
		{"metrics on the admission port", tlsClient, http.MethodGet, "https://" + r.admission + "/metrics", notFound},
		{"metrics on the health port", plain, http.MethodGet, "http://" + r.health + "/metrics", func(code int, body string) bool {
			return code == 200 && strings.Contains(body, "canary_router_")
		}},
		{"health on the health port", plain, http.MethodGet, "http://" + r.health + "/healthz", func(code int, _ string) bool { return code == 200 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := do(t, c.client, c.method, c.url, body)
			if !c.want(code, out) {
				t.Fatalf("HTTP %d: %.300s", code, out)
			}
		})
	}
}

// do sends one request; a transport error reads as code 0.
func do(t *testing.T, c *http.Client, method, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// noAdmissionAnswer: the request failed, or got an HTTP error that is
// not an admission response (Go's TLS server answers a plaintext request
// with 400 "Client sent an HTTP request to an HTTPS server").
func noAdmissionAnswer(code int, body string) bool {
	return (code == 0 || code >= 400) && !strings.Contains(body, "AdmissionReview")
}

func notFound(code int, body string) bool {
	return code == http.StatusNotFound && !strings.Contains(body, "AdmissionReview")
}
