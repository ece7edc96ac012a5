package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// maxBackdate bounds how far NotBefore is set before the issuing time.
// Backdating lets a verifier whose clock is a little behind ours accept a
// certificate at once; it is capped at a tenth of the validity so that very
// short test lifetimes still leave the renewal point in the future.
const maxBackdate = 5 * time.Minute

// KeyPair is a certificate with its private key, parsed and in PEM form.
type KeyPair struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is the private key matching Cert.
	Key crypto.Signer
	// CertPEM and KeyPEM are Cert and Key encoded as PEM.
	CertPEM, KeyPEM []byte
}

// NewCA creates a self-signed CA valid from now for validity.
func NewCA(commonName string, now time.Time, validity time.Duration) (*KeyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaf certificates only.
		MaxPathLenZero: true,
	}
	setValidity(tmpl, now, now.Add(validity))
	return sign(tmpl, nil, key)
}

// IssueServing issues a TLS server certificate for dnsNames and ips, valid
// from now for validity but never beyond the CA's own expiry (a leaf that
// outlives its CA is not trusted anyway, and the cap keeps its renewal
// point honest).
func (ca *KeyPair) IssueServing(dnsNames []string, ips []net.IP, now time.Time, validity time.Duration) (*KeyPair, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("a serving certificate needs at least one DNS name or IP address")
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	notAfter := now.Add(validity)
	if ca.Cert.NotAfter.Before(notAfter) {
		notAfter = ca.Cert.NotAfter
	}
	setValidity(tmpl, now, notAfter)
	return sign(tmpl, ca, key)
}

// TLSCertificate returns kp ready to serve, with Leaf set so handshakes do
// not parse it again.
func (kp *KeyPair) TLSCertificate() *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
}

// ParseKeyPair parses a PEM certificate and its PEM private key and checks
// that they belong together.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", pair.PrivateKey)
	}
	return &KeyPair{Cert: pair.Leaf, Key: signer, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseCert parses the first certificate of a PEM block sequence.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func setValidity(tmpl *x509.Certificate, now, notAfter time.Time) {
	tmpl.NotBefore = now.Add(-min(maxBackdate, notAfter.Sub(now)/10))
	tmpl.NotAfter = notAfter
}

// sign signs tmpl with issuer, or self-signs it when issuer is nil.
func sign(tmpl *x509.Certificate, issuer *KeyPair, key crypto.Signer) (*KeyPair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	parent, parentKey := tmpl, key
	if issuer != nil {
		parent, parentKey = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// P-256 keys: generated in microseconds (an RSA key can take a second on a
// busy node, on the admission path's critical start-up) and accepted by
// every kube-apiserver.
func newKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
