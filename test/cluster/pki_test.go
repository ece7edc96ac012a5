package cluster_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/canary-router/canary-router/test/cluster"
)

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIssueServingChainsToCA(t *testing.T) {
	ca, err := cluster.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServing("webhook.system.svc", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("cert and key do not pair: %v", err)
	}
	cert := parseCert(t, certPEM)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM not parseable")
	}
	for _, host := range []string{"localhost", "127.0.0.1", "webhook.system.svc"} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("verify for %q: %v", host, err)
		}
	}
	if err := cert.VerifyHostname("other.example"); err == nil {
		t.Error("cert unexpectedly valid for other.example")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("serving cert unexpectedly valid for client auth")
	}

	other, err := cluster.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: otherRoots, DNSName: "localhost"}); err == nil {
		t.Error("cert unexpectedly chains to an unrelated CA")
	}
}

func TestIssueClientCarriesGroups(t *testing.T) {
	ca, err := cluster.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueClient("alice", []string{"system:masters", "devs"})
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, certPEM)
	// DER sorts a SET OF, so the groups come back in byte order.
	groups := slices.Sorted(slices.Values(cert.Subject.Organization))
	if cert.Subject.CommonName != "alice" || !slices.Equal(groups, []string{"devs", "system:masters"}) {
		t.Errorf("subject = %v, want CN alice and O [system:masters devs]", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not verify: %v", err)
	}
}

func TestWriteServingPair(t *testing.T) {
	ca, err := cluster.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServing("localhost", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	if err := cluster.WriteServingPair(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Errorf("written pair does not load: %v", err)
	}
}
