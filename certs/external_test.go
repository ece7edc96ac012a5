package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	clocktesting "k8s.io/utils/clock/testing"
)

func writePair(t *testing.T, dir string, kp *KeyPair) {
	t.Helper()
	// Write then rename, as the kubelet's atomic writer swaps a Secret
	// volume's files: the watcher must never see half a pair.
	for name, data := range map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExternalServesAndReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for file events; skipped with -short")
	}
	dir := t.TempDir()
	now := time.Now()
	ca := mustCA(t, now, time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := NewExternal(dir, time.Second, nil, zap.NewNop(), NewMetrics(reg))
	go func() { _ = e.Run(t.Context()) }()

	if err := e.Ready(); err == nil || !strings.Contains(err.Error(), "no serving certificate") {
		t.Fatalf("Ready before any file: %v, want not ready", err)
	}
	first := mustLeaf(t, ca, []string{"canary-router.canary-router-system.svc"}, nil, now, 30*time.Minute)
	// The files arrive after the router started, as a Secret volume may.
	writePair(t, dir, first)
	waitServing(t, e, first, 5*time.Second)
	if err := e.Ready(); err != nil {
		t.Fatalf("not ready with a valid certificate: %v", err)
	}

	second := mustLeaf(t, ca, []string{"canary-router.canary-router-system.svc"}, nil, now, 30*time.Minute)
	began := time.Now()
	writePair(t, dir, second)
	waitServing(t, e, second, 5*time.Second)
	t.Logf("reloaded a rotated pair in %s", time.Since(began).Round(time.Millisecond))

	// The callback that records metrics runs on its own goroutine.
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(e.metrics.rotations.WithLabelValues(certServing)) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.metrics.rotations.WithLabelValues(certServing)); got != 1 {
		t.Errorf("serving rotations = %g, want 1", got)
	}
	if got := testutil.ToFloat64(e.metrics.expiry.WithLabelValues(certServing)); got != float64(second.Cert.NotAfter.Unix()) {
		t.Errorf("serving expiry gauge = %g, want %d", got, second.Cert.NotAfter.Unix())
	}
	if got := testutil.ToFloat64(e.metrics.expiry.WithLabelValues(certCA)); got != float64(ca.Cert.NotAfter.Unix()) {
		t.Errorf("ca expiry gauge = %g, want %d", got, ca.Cert.NotAfter.Unix())
	}
}

func TestExternalNotReadyWhenExpired(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, t0, time.Hour)
	writePair(t, dir, mustLeaf(t, ca, []string{"svc"}, nil, t0, time.Minute))
	clk := clocktesting.NewFakeClock(t0.Add(30 * time.Second))
	e := NewExternal(dir, time.Second, clk, zap.NewNop(), nil)
	go func() { _ = e.Run(t.Context()) }()
	waitReady := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for e.Ready() != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := e.Ready(); err != nil {
			t.Fatalf("not ready within its validity: %v", err)
		}
	}
	waitReady()
	clk.Step(time.Minute)
	if err := e.Ready(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Ready after expiry: %v, want expired", err)
	}
}

func waitServing(t *testing.T, e *External, want *KeyPair, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := e.GetCertificate(nil); err == nil && c.Leaf != nil && c.Leaf.Equal(want.Cert) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serving certificate %s not loaded within %s", want.Cert.SerialNumber.Text(16), timeout)
}
