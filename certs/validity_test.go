package certs

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, validity time.Duration) *KeyPair {
	t.Helper()
	ca, err := NewCA("test-ca", now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *KeyPair, names []string, ips []net.IP, now time.Time, validity time.Duration) *KeyPair {
	t.Helper()
	kp, err := ca.IssueServing(names, ips, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestNeedsRenewal(t *testing.T) {
	ca := mustCA(t, t0, 300*24*time.Hour)
	// 30 days issued at t0: backdated 5 minutes, so the renewal point is
	// two thirds of (30d + 5m) after NotBefore.
	leaf := mustLeaf(t, ca, []string{"svc"}, nil, t0, 30*24*time.Hour).Cert
	renewAt := RenewAt(leaf)
	if want := leaf.NotBefore.Add(2 * leaf.NotAfter.Sub(leaf.NotBefore) / 3); renewAt.Sub(want).Abs() > time.Second {
		t.Fatalf("RenewAt = %s, want two thirds of the lifetime, %s", renewAt, want)
	}
	cases := []struct {
		name     string
		cert     *x509.Certificate
		now      time.Time
		want     bool
		inReason string
	}{
		{"missing", nil, t0, true, "no certificate"},
		{"fresh", leaf, t0, false, ""},
		{"just before two thirds", leaf, renewAt.Add(-time.Second), false, ""},
		{"at two thirds", leaf, renewAt, true, "two thirds"},
		{"last day", leaf, leaf.NotAfter.Add(-24 * time.Hour), true, "two thirds"},
		{"expired", leaf, leaf.NotAfter, true, "expired"},
		{"long expired", leaf, leaf.NotAfter.Add(1000 * time.Hour), true, "expired"},
		{"not yet valid (clock went back)", leaf, leaf.NotBefore.Add(-time.Second), true, "not valid until"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := NeedsRenewal(c.cert, c.now)
			if got != c.want || !strings.Contains(why, c.inReason) {
				t.Errorf("NeedsRenewal = %v, %q; want %v with %q", got, why, c.want, c.inReason)
			}
		})
	}
}

func TestIssueServingCapsAtCAExpiry(t *testing.T) {
	ca := mustCA(t, t0, time.Hour)
	leaf := mustLeaf(t, ca, []string{"svc"}, nil, t0.Add(50*time.Minute), 24*time.Hour).Cert
	if !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %s, want the CA's %s", leaf.NotAfter, ca.Cert.NotAfter)
	}
	if due, why := NeedsRenewal(leaf, t0.Add(50*time.Minute)); due {
		t.Errorf("a capped leaf is due at once: %s", why)
	}
}

func TestShortLifetimesLeaveRenewalAhead(t *testing.T) {
	// The integration tests run with 20 s serving certs: the backdate must
	// not eat the lifetime.
	ca := mustCA(t, t0, 40*time.Second)
	leaf := mustLeaf(t, ca, []string{"svc"}, nil, t0, 20*time.Second).Cert
	if got := RenewAt(leaf).Sub(t0); got < 12*time.Second || got > 14*time.Second {
		t.Errorf("20s leaf renews %s after issue, want about 12.7s", got)
	}
}

func TestCheckServing(t *testing.T) {
	id := ServingIdentity{DNSNames: []string{"canary-router.ns.svc", "canary-router"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	ca := mustCA(t, t0, 365*24*time.Hour)
	other := mustCA(t, t0, 365*24*time.Hour)
	good := mustLeaf(t, ca, id.DNSNames, id.IPs, t0, 7*24*time.Hour).Cert
	cases := []struct {
		name    string
		leaf    *x509.Certificate
		roots   []*x509.Certificate
		id      ServingIdentity
		now     time.Time
		wantErr string
	}{
		{"valid", good, []*x509.Certificate{ca.Cert}, id, t0.Add(time.Hour), ""},
		{"valid with two trusted CAs", good, []*x509.Certificate{other.Cert, ca.Cert}, id, t0.Add(time.Hour), ""},
		{"valid when renewal is due", good, []*x509.Certificate{ca.Cert}, id, t0.Add(6 * 24 * time.Hour), ""},
		{"none loaded", nil, []*x509.Certificate{ca.Cert}, id, t0, "no serving certificate"},
		{"expired", good, []*x509.Certificate{ca.Cert}, id, good.NotAfter, "expired"},
		{"not yet valid", good, []*x509.Certificate{ca.Cert}, id, good.NotBefore.Add(-time.Minute), "not valid until"},
		{"wrong DNS SAN", mustLeaf(t, ca, []string{"canary-router.other.svc", "canary-router"}, id.IPs, t0, time.Hour).Cert,
			[]*x509.Certificate{ca.Cert}, id, t0, `does not name "canary-router.ns.svc"`},
		{"missing IP SAN", mustLeaf(t, ca, id.DNSNames, nil, t0, time.Hour).Cert,
			[]*x509.Certificate{ca.Cert}, id, t0, "does not name IP 127.0.0.1"},
		{"wrong CA", mustLeaf(t, other, id.DNSNames, id.IPs, t0, time.Hour).Cert,
			[]*x509.Certificate{ca.Cert}, id, t0, "does not chain"},
		{"no CA at all", good, nil, id, t0, "no CA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckServing(c.leaf, c.roots, c.id, c.now)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("CheckServing: %v, want nil", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("CheckServing: %v, want an error with %q", err, c.wantErr)
			}
		})
	}
}

func TestServingDue(t *testing.T) {
	id := ServingIdentity{DNSNames: []string{"svc"}}
	ca := mustCA(t, t0, 365*24*time.Hour)
	next := mustCA(t, t0, 365*24*time.Hour)
	leaf := mustLeaf(t, ca, id.DNSNames, nil, t0, 7*24*time.Hour).Cert
	cases := []struct {
		name   string
		leaf   *x509.Certificate
		signer *x509.Certificate
		id     ServingIdentity
		now    time.Time
		want   string
	}{
		{"current", leaf, ca.Cert, id, t0, ""},
		{"none", nil, ca.Cert, id, t0, "no certificate"},
		{"renewal due", leaf, ca.Cert, id, t0.Add(5 * 24 * time.Hour), "two thirds"},
		{"signing CA promoted", leaf, next.Cert, id, t0, "the signing CA is now"},
		{"names changed", leaf, ca.Cert, ServingIdentity{DNSNames: []string{"svc", "svc.ns"}}, t0, "does not name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			due, why := servingDue(c.leaf, c.signer, c.id, c.now)
			if due != (c.want != "") || !strings.Contains(why, c.want) {
				t.Errorf("servingDue = %v, %q; want due=%v with %q", due, why, c.want != "", c.want)
			}
		})
	}
}
