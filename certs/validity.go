package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// RenewAt is when a certificate is due for renewal: two thirds into its
// lifetime. The last third is the margin for a renewal that fails and must
// be retried, for the rollover of a CA, and for clocks that disagree.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-life / 3)
}

// NeedsRenewal reports whether cert should be replaced at now, and why:
// it is missing, expired, not yet valid (the clock moved back, or it was
// issued by a host whose clock is ahead), or past RenewAt.
func NeedsRenewal(cert *x509.Certificate, now time.Time) (bool, string) {
	switch {
	case cert == nil:
		return true, "no certificate"
	case !now.Before(cert.NotAfter):
		return true, fmt.Sprintf("expired at %s", stamp(cert.NotAfter))
	case now.Before(cert.NotBefore):
		return true, fmt.Sprintf("not valid until %s", stamp(cert.NotBefore))
	case !now.Before(RenewAt(cert)):
		return true, fmt.Sprintf("two thirds of its lifetime passed at %s (expires %s)", stamp(RenewAt(cert)), stamp(cert.NotAfter))
	}
	return false, ""
}

// ServingIdentity is what a serving certificate must name.
type ServingIdentity struct {
	// DNSNames must each appear among the certificate's DNS SANs.
	DNSNames []string
	// IPs must each appear among the certificate's IP SANs.
	IPs []net.IP
}

// CheckServing reports why leaf cannot serve at now, or nil when it can:
// it must be within its validity period, name every DNS name and IP of id,
// be a server certificate, and chain to one of roots (the CAs the webhook
// configurations trust). Renewal being due is not a problem here: the
// certificate still works.
func CheckServing(leaf *x509.Certificate, roots []*x509.Certificate, id ServingIdentity, now time.Time) error {
	if err := checkPeriod(leaf, now); err != nil {
		return err
	}
	for _, name := range id.DNSNames {
		if err := leaf.VerifyHostname(name); err != nil {
			return fmt.Errorf("serving certificate does not name %q (DNS names %v)", name, leaf.DNSNames)
		}
	}
	for _, ip := range id.IPs {
		if err := leaf.VerifyHostname(ip.String()); err != nil {
			return fmt.Errorf("serving certificate does not name IP %s (IPs %v)", ip, leaf.IPAddresses)
		}
	}
	if len(roots) == 0 {
		return errors.New("no CA to check the serving certificate against")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("serving certificate (issuer %q) does not chain to the trusted CA: %w", leaf.Issuer.CommonName, err)
	}
	return nil
}

// signedBy reports whether ca issued leaf.
func signedBy(leaf, ca *x509.Certificate) bool {
	return leaf != nil && ca != nil && leaf.CheckSignatureFrom(ca) == nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkPeriod reports a certificate outside its validity period at now.
func checkPeriod(leaf *x509.Certificate, now time.Time) error {
	if leaf == nil {
		return errors.New("no serving certificate loaded")
	}
	if !now.Before(leaf.NotAfter) {
		return fmt.Errorf("serving certificate expired at %s", stamp(leaf.NotAfter))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("serving certificate not valid until %s", stamp(leaf.NotBefore))
	}
	return nil
}
