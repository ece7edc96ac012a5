package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/harness"
)

// TestRealRouterTLSAndPorts checks the shipped binary: TLS 1.2 at least
// (1.3 for a default client), no admission answer over plain HTTP, and
// health and metrics on their own plain-HTTP port, apart from admission.
func TestRealRouterTLSAndPorts(t *testing.T) {
	r := rotatingRouter(t)
	useRouter(t, r)
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	for _, c := range []struct {
		name     string
		min, max uint16
		want     uint16 // 0: refused
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, 0},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, 0},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12},
		{"default", 0, 0, tls.VersionTLS13},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: c.min, MaxVersion: c.max})
		got := uint16(0)
		if err == nil {
			got = conn.ConnectionState().Version
			conn.Close()
		}
		t.Logf("RESULT %s client: negotiated %s", c.name, versionName(got))
		if got != c.want {
			t.Errorf("%s client: negotiated %s, want %s", c.name, versionName(got), versionName(c.want))
		}
	}

	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","namespace":"probe","object":{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"x-"}}}}`)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, c := range []struct {
		name   string
		client *http.Client
		method string
		url    string
		ok     func(code int, body string) bool
	}{
		{"admission over TLS", tlsClient, http.MethodPost, r.url("/mutate-pods"), func(code int, b string) bool { return code == 200 && strings.Contains(b, `"allowed":true`) }},
		{"admission over plain HTTP", plain, http.MethodPost, "http://" + addr + "/mutate-pods", noAdmission},
		{"admission on the health port", plain, http.MethodPost, "http://" + r.healthAddr() + "/mutate-pods", notFound},
		{"policy validation on the health port", plain, http.MethodPost, "http://" + r.healthAddr() + "/validate-policy", notFound},
		{"metrics on the admission port", tlsClient, http.MethodGet, r.url("/metrics"), notFound},
		{"metrics on the health port", plain, http.MethodGet, "http://" + r.healthAddr() + "/metrics", func(code int, b string) bool {
			return code == 200 && strings.Contains(b, "canary_router_")
		}},
	} {
		code, out := send(c.client, c.method, c.url, body)
		t.Logf("RESULT %s: HTTP %d", c.name, code)
		if !c.ok(code, out) {
			t.Errorf("%s: HTTP %d %.200s", c.name, code, out)
		}
	}
}

// TestNoSecretsInLogs runs the routers at debug level through
// certificate and CA rotations, policy loads and admissions, then scans
// every line they logged for PEM blocks, private key markers, the
// ServiceAccount token, and the CA and serving keys in any encoding a
// log could carry them.
func TestNoSecretsInLogs(t *testing.T) {
	r := rotatingRouter(t)
	useRouter(t, r)
	applyPolicy(t, podPolicy("secrets-1", 60, 40))
	applyPolicy(t, podPolicy("secrets-2", 40, 60))
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return r.scrape(t)[`canary_router_cert_rotations_total{cert="serving"}`] >= 1, nil
	})
	if err != nil {
		t.Fatal("no serving certificate rotation within 30s")
	}

	needles := map[string]string{"PEM block": "-----BEGIN", "private key marker": "PRIVATE KEY", "ServiceAccount token": env.token}
	if i := strings.LastIndexByte(env.token, '.'); i > 0 {
		needles["token signature"] = env.token[i+1:]
	}
	secret, err := env.Cluster.Client.CoreV1().Secrets(routerNamespace).Get(harness.Context(t, 10*time.Second), "canary-router-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range secret.Data {
		if strings.Contains(k, "key") {
			addKeyNeedles(needles, "CA Secret "+k, v)
		}
	}
	if key, err := os.ReadFile(filepath.Join(env.Dir, "certs", "tls.key")); err == nil {
		addKeyNeedles(needles, "external serving key", key)
	}

	var logs []string
	for _, rr := range []*router{routers.external, routers.rotating} {
		if rr != nil {
			logs = append(logs, rr.logPaths...)
		}
	}
	var scanned, lines, issued, caSteps, policies int
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scanned += len(data)
		lines += bytes.Count(data, []byte("\n"))
		issued += bytes.Count(data, []byte("serving certificate issued"))
		caSteps += bytes.Count(data, []byte("CA rollover step"))
		policies += bytes.Count(data, []byte("policy applied"))
		for what, needle := range needles {
			if needle != "" && bytes.Contains(data, []byte(needle)) {
				t.Errorf("%s: the log holds the %s", filepath.Base(path), what)
			}
		}
	}
	t.Logf("RESULT secret scan: %d log files, %d lines, %d bytes at debug level, logging %d serving certificates issued, %d CA rollover steps and %d policy loads; %d needles (PEM, key markers, the token, %d key encodings) found: none unless reported above",
		len(logs), lines, scanned, issued, caSteps, policies, len(needles), len(needles)-3)
	if issued < 2 || policies < 2 {
		t.Errorf("the logs show %d certificates issued and %d policy loads: the scan covers too little", issued, policies)
	}
}

// addKeyNeedles adds the ways pem could show up in a log: its base64
// (a Secret's data in JSON), and each base64 line of its body.
func addKeyNeedles(needles map[string]string, what string, pem []byte) {
	enc := base64.StdEncoding.EncodeToString(pem)
	needles[what+" (base64)"] = enc[:min(len(enc), 64)]
	for i, line := range strings.Split(string(pem), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			needles[fmt.Sprintf("%s (PEM line %d)", what, i)] = line
		}
	}
}

func send(c *http.Client, method, url string, body []byte) (int, string) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func noAdmission(code int, body string) bool {
	return (code == 0 || code >= 400) && !strings.Contains(body, "AdmissionReview")
}

func notFound(code int, body string) bool {
	return code == http.StatusNotFound && !strings.Contains(body, "AdmissionReview")
}

func versionName(v uint16) string {
	if v == 0 {
		return "none (refused)"
	}
	return tls.VersionName(v)
}
