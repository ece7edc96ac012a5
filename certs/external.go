package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// External serves tls.crt and tls.key from a folder, written by
// cert-manager or any other issuer, and reloads them when they change
// (controller-runtime's certwatcher: a file watch, plus a poll every
// interval because a Secret volume update is a symlink swap that some
// file systems report late). The CA bundle in the webhook configurations
// is the issuer's business in this mode (cert-manager's cainjector).
type External struct {
	dir      string
	interval time.Duration
	clock    clock.Clock
	log      *zap.Logger
	metrics  *Metrics
	watcher  atomic.Pointer[certwatcher.CertWatcher]
	loaded   atomic.Int64 // certificates loaded so far, for the rotation count
}

// NewExternal returns a source for dir/tls.crt and dir/tls.key, polled
// every interval. metrics may be nil; clk nil means the real clock.
func NewExternal(dir string, interval time.Duration, clk clock.Clock, log *zap.Logger, metrics *Metrics) *External {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &External{dir: dir, interval: interval, clock: clk, log: log, metrics: metrics}
}

// GetCertificate serves the certificate last loaded from the folder.
func (e *External) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	w := e.watcher.Load()
	if w == nil {
		return nil, fmt.Errorf("no serving certificate loaded from %s yet", e.dir)
	}
	c, err := w.GetCertificate(hello)
	if err == nil && c == nil {
		err = fmt.Errorf("no serving certificate loaded from %s yet", e.dir)
	}
	return c, err
}

// Ready returns nil while a certificate is loaded and within its validity
// period. Names and issuer are the issuer's contract with the webhook
// configuration, which this mode does not know.
func (e *External) Ready() error {
	c, err := e.GetCertificate(nil)
	if err != nil {
		return err
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return err
		}
	}
	return checkPeriod(leaf, e.clock.Now())
}

// Run waits until the files can be read (a Secret volume may be filled
// after the container starts; readiness stays false meanwhile), then
// watches them until ctx ends.
func (e *External) Run(ctx context.Context) error {
	certPath, keyPath := filepath.Join(e.dir, "tls.crt"), filepath.Join(e.dir, "tls.key")
	var w *certwatcher.CertWatcher
	for logged := false; ; logged = true {
		var err error
		if w, err = certwatcher.New(certPath, keyPath); err == nil {
			break
		}
		if !logged {
			e.log.Warn("cannot load the serving certificate yet; retrying", zap.String("dir", e.dir), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.clock.After(time.Second):
		}
	}
	w = w.WithWatchInterval(e.interval)
	w.RegisterCallback(e.loadedCert)
	e.watcher.Store(w)
	err := w.Start(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// loadedCert records a certificate certwatcher has just loaded.
func (e *External) loadedCert(c tls.Certificate) {
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			e.log.Error("loaded serving certificate does not parse", zap.Error(err))
			return
		}
	}
	if e.loaded.Add(1) > 1 {
		e.metrics.rotated(certServing)
	}
	e.metrics.setExpiry(certServing, leaf.NotAfter)
	// cert-manager writes the issuing CA next to the pair; other issuers
	// may not, and then there is no CA expiry to report.
	if data, err := os.ReadFile(filepath.Join(e.dir, "ca.crt")); err == nil {
		if ca, err := ParseCert(data); err == nil {
			e.metrics.setExpiry(certCA, ca.NotAfter)
		}
	}
	e.log.Info("serving certificate loaded", zap.String("dir", e.dir), zap.String("serial", leaf.SerialNumber.Text(16)),
		zap.String("issuer", leaf.Issuer.CommonName), zap.Time("notAfter", leaf.NotAfter))
}
