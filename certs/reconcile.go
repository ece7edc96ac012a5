package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// raceAttempts bounds how often one pass re-reads the CA Secret after
// losing a write race; each loss means another replica made progress.
const raceAttempts = 5

// reconcile is one pass: move the CA rollover if due, reissue the serving
// certificate if due, and patch the webhook configurations whose caBundle
// differs. Every input is read afresh, so a pass started by any event
// repairs any drift.
func (m *SelfManaged) reconcile(ctx context.Context) error {
	configs, err := m.patcher.read(ctx)
	if err != nil {
		return err
	}
	m.noteMissing(configs)
	a, err := m.syncAuthority(ctx, configs)
	if err != nil {
		return err
	}
	if err := m.ensureServing(a); err != nil {
		return err
	}
	n, err := m.patcher.sync(ctx, configs, a.Bundle())
	m.o.Metrics.patched(n)
	if n > 0 {
		m.o.Log.Info("patched caBundle", zap.String("name", m.o.WebhookConfigName), zap.Int("configurations", n),
			zap.Int("cas", len(a.CAs())))
	}
	return err
}

// syncAuthority reads the CA Secret, takes the rollover step Plan asks for,
// and returns the authority now in force. A lost race (AlreadyExists on
// create, Conflict on update) is normal with several replicas: re-read and
// use what the winner wrote.
func (m *SelfManaged) syncAuthority(ctx context.Context, configs []configState) (*Authority, error) {
	for range raceAttempts {
		now := m.o.Clock.Now()
		secret, err := m.secrets.get(ctx)
		if err != nil {
			return nil, err
		}
		var a *Authority
		if secret != nil {
			if a, err = authorityFromSecret(secret); err != nil {
				m.o.Log.Warn("CA Secret is unusable; replacing it with a new CA", zap.String("secret", m.o.SecretName), zap.Error(err))
			}
		}
		published := a != nil && a.Next != nil && allTrust(configs, a.Next.Cert)
		step, why := Plan(a, now, m.o.CAOverlap, published)
		if step == StepNone {
			if why != "" {
				m.o.Log.Debug("CA rollover waiting", zap.String("reason", why))
			}
			return a, nil
		}
		next, err := a.Advance(step, now, func() (*KeyPair, error) {
			return NewCA("canary-router-ca@"+strconv.FormatInt(now.Unix(), 10), now, m.o.CAValidity)
		})
		if err != nil {
			return nil, err
		}
		if secret == nil {
			err = m.secrets.create(ctx, next)
		} else {
			err = m.secrets.update(ctx, secret, next)
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			m.o.Log.Info("another replica changed the CA Secret first; using its CA", zap.String("step", string(step)))
			continue
		}
		if err != nil {
			return nil, err
		}
		m.o.Log.Info("CA rollover step", zap.String("step", string(step)), zap.String("reason", why),
			zap.String("signingCA", next.Current.Cert.Subject.CommonName), zap.Time("signingCANotAfter", next.Current.Cert.NotAfter),
			zap.Int("trustedCAs", len(next.CAs())))
		return next, nil
	}
	return nil, fmt.Errorf("CA Secret %s/%s changed %d times during one pass", m.o.Namespace, m.o.SecretName, raceAttempts)
}

// ensureServing issues a new serving certificate when the one in memory is
// due (see servingDue), and records the trust bundle it is checked against.
func (m *SelfManaged) ensureServing(a *Authority) error {
	now := m.o.Clock.Now()
	cur := m.serving.Load()
	var leaf *x509.Certificate
	if cur != nil {
		leaf = cur.cert.Leaf
	}
	due, why := servingDue(leaf, a.Current.Cert, m.id, now)
	if !due {
		m.serving.Store(&servingState{cert: cur.cert, signer: cur.signer, roots: a.CAs()})
		return nil
	}
	kp, err := a.Current.IssueServing(m.id.DNSNames, m.id.IPs, now, m.o.CertValidity)
	if err != nil {
		return err
	}
	m.serving.Store(&servingState{cert: kp.TLSCertificate(), signer: a.Current.Cert, roots: a.CAs()})
	m.o.Metrics.setExpiry(certServing, kp.Cert.NotAfter)
	m.o.Metrics.setExpiry(certCA, a.Current.Cert.NotAfter)
	if cur != nil {
		m.o.Metrics.rotated(certServing)
		if !cur.signer.Equal(a.Current.Cert) {
			m.o.Metrics.rotated(certCA)
		}
	}
	m.o.Log.Info("serving certificate issued", zap.String("reason", why), zap.String("serial", kp.Cert.SerialNumber.Text(16)),
		zap.String("issuer", a.Current.Cert.Subject.CommonName), zap.Time("notAfter", kp.Cert.NotAfter),
		zap.Time("renewAt", RenewAt(kp.Cert)))
	return nil
}

// servingDue reports whether leaf must be replaced at now by one that
// signer issues: it is due for renewal, another CA issued it (a promotion
// happened), or it no longer names what it must.
func servingDue(leaf, signer *x509.Certificate, id ServingIdentity, now time.Time) (bool, string) {
	if due, why := NeedsRenewal(leaf, now); due {
		return true, why
	}
	if !signedBy(leaf, signer) {
		return true, fmt.Sprintf("issued by %q, the signing CA is now %q", leaf.Issuer.CommonName, signer.Subject.CommonName)
	}
	if err := CheckServing(leaf, []*x509.Certificate{signer}, id, now); err != nil {
		return true, err.Error()
	}
	return false, ""
}

// noteMissing logs when one of the router's webhook configurations
// disappears or appears, once per change: a missing one is tolerated (the
// manifests may be applied in any order, and a VWC is optional) but a typo
// in --webhook-config-name would otherwise go unnoticed.
func (m *SelfManaged) noteMissing(configs []configState) {
	for _, c := range configs {
		missing := !c.Found
		if prev, seen := m.missing[c.Resource]; seen && prev == missing {
			continue
		}
		m.missing[c.Resource] = missing
		if missing {
			m.o.Log.Warn("webhook configuration not found; its caBundle will be set when it appears",
				zap.String("resource", c.Resource), zap.String("name", m.o.WebhookConfigName))
		} else {
			m.o.Log.Info("webhook configuration found", zap.String("resource", c.Resource), zap.String("name", m.o.WebhookConfigName))
		}
	}
}

// allTrust reports whether every webhook of every found configuration
// trusts cert.
func allTrust(configs []configState, cert *x509.Certificate) bool {
	for _, c := range configs {
		if !c.trusts(cert) {
			return false
		}
	}
	return true
}
