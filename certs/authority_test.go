package certs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestPlan(t *testing.T) {
	const (
		life    = 300 * time.Hour
		overlap = 10 * time.Hour
	)
	cur := mustCA(t, t0, life)
	renew := RenewAt(cur.Cert)
	next := mustCA(t, renew, life)
	cases := []struct {
		name      string
		a         *Authority
		now       time.Time
		published bool
		want      Step
		inReason  string
	}{
		{"no secret", nil, t0, false, StepCreate, "no CA"},
		{"fresh CA", &Authority{Current: cur}, t0.Add(time.Hour), false, StepNone, ""},
		{"before renewal", &Authority{Current: cur}, renew.Add(-time.Second), false, StepNone, ""},
		{"renewal due: stage", &Authority{Current: cur}, renew, false, StepStage, "two thirds"},
		{"CA not yet valid: stage", &Authority{Current: cur}, cur.Cert.NotBefore.Add(-time.Hour), false, StepStage, "not valid until"},
		{"staged, overlap running", &Authority{Current: cur, Next: next, StagedAt: renew}, renew.Add(overlap - time.Second), true, StepNone, ""},
		{"staged, overlap over, bundle not patched yet", &Authority{Current: cur, Next: next, StagedAt: renew}, renew.Add(overlap), false, StepNone, "not yet in every"},
		{"staged, overlap over: promote", &Authority{Current: cur, Next: next, StagedAt: renew}, renew.Add(overlap), true, StepPromote, "overlap"},
		{"current expired while staged: promote at once", &Authority{Current: cur, Next: next, StagedAt: renew}, cur.Cert.NotAfter, false, StepPromote, "at once"},
		{"promoted, overlap running", &Authority{Current: next, Previous: cur.Cert, PromotedAt: renew.Add(overlap)}, renew.Add(2*overlap - time.Second), false, StepNone, ""},
		{"promoted, overlap over: retire", &Authority{Current: next, Previous: cur.Cert, PromotedAt: renew.Add(overlap)}, renew.Add(2 * overlap), false, StepRetire, "overlap"},
		{"previous expired: retire", &Authority{Current: next, Previous: cur.Cert, PromotedAt: cur.Cert.NotAfter.Add(-time.Minute)}, cur.Cert.NotAfter, false, StepRetire, "expired"},
		{"expired, nothing staged: create", &Authority{Current: cur}, cur.Cert.NotAfter, false, StepCreate, "expired"},
		{"expired, staged expired too: create", &Authority{Current: cur, Next: cur, StagedAt: t0}, cur.Cert.NotAfter, false, StepCreate, "no usable CA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := Plan(c.a, c.now, overlap, c.published)
			if got != c.want || !strings.Contains(why, c.inReason) {
				t.Errorf("Plan = %q, %q; want %q with %q", got, why, c.want, c.inReason)
			}
		})
	}
}

// TestRolloverBundles walks one rotation and checks the property the
// rollover exists for: the bundles of two adjacent steps both trust the CA
// that signs in either step, and are the same bytes where the set of CAs
// is the same, so replicas one step apart never undo each other's patch.
func TestRolloverBundles(t *testing.T) {
	cur := mustCA(t, t0, 300*time.Hour)
	next := mustCA(t, t0.Add(200*time.Hour), 300*time.Hour)
	mk := func() (*KeyPair, error) { return next, nil }
	steps := []Step{StepStage, StepPromote, StepRetire}
	states := []*Authority{{Current: cur}}
	for i, s := range steps {
		a, err := states[i].Advance(s, t0.Add(time.Duration(200+i)*time.Hour), mk)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, a)
	}
	for i := 0; i+1 < len(states); i++ {
		older, newer := states[i], states[i+1]
		for _, signer := range []*KeyPair{older.Current, newer.Current} {
			for _, a := range []*Authority{older, newer} {
				// Stage and retire change what is trusted, but never what a
				// replica one step behind or ahead may be signing with.
				if steps[i] == StepRetire && a == newer && signer == older.Current {
					continue
				}
				if !bundleTrusts(a.Bundle(), signer.Cert) {
					t.Errorf("after %q: bundle of %d CAs does not trust signer %s", steps[i], len(a.CAs()), signer.Cert.Subject.CommonName)
				}
			}
		}
	}
	if staged, promoted := states[1].Bundle(), states[2].Bundle(); !bytes.Equal(staged, promoted) {
		t.Error("the staged and promoted bundles hold the same two CAs but differ in bytes")
	}
	if n := len(states[3].CAs()); n != 1 || !states[3].Current.Cert.Equal(next.Cert) {
		t.Errorf("after retire: %d CAs, current %s; want only the new CA", n, states[3].Current.Cert.Subject.CommonName)
	}
}

func TestSecretRoundTrip(t *testing.T) {
	cur := mustCA(t, t0, 300*time.Hour)
	next := mustCA(t, t0.Add(200*time.Hour), 300*time.Hour)
	for _, a := range []*Authority{
		{Current: cur},
		{Current: cur, Next: next, StagedAt: t0.Add(200 * time.Hour)},
		{Current: next, Previous: cur.Cert, PromotedAt: t0.Add(201 * time.Hour)},
	} {
		s := &corev1.Secret{}
		writeAuthority(s, a)
		got, err := authorityFromSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bundle(), a.Bundle()) || !got.StagedAt.Equal(a.StagedAt) || !got.PromotedAt.Equal(a.PromotedAt) ||
			!got.Current.Cert.Equal(a.Current.Cert) {
			t.Errorf("round trip of %d CAs changed the authority", len(a.CAs()))
		}
	}
}

func TestUnusableSecret(t *testing.T) {
	cur := mustCA(t, t0, time.Hour)
	leaf := mustLeaf(t, cur, []string{"svc"}, nil, t0, time.Hour)
	cases := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"empty", nil, "tls.crt"},
		{"garbage", map[string][]byte{"tls.crt": []byte("x"), "tls.key": []byte("y")}, "tls.crt"},
		{"key of another cert", map[string][]byte{"tls.crt": cur.CertPEM, "tls.key": leaf.KeyPEM}, "tls.crt"},
		{"not a CA", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}, "not a CA"},
		{"broken staged CA", map[string][]byte{"tls.crt": cur.CertPEM, "tls.key": cur.KeyPEM, "next.crt": []byte("x")}, "next.crt"},
		{"broken previous CA", map[string][]byte{"tls.crt": cur.CertPEM, "tls.key": cur.KeyPEM, "previous.crt": []byte("x")}, "previous.crt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := authorityFromSecret(&corev1.Secret{Data: c.data})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("authorityFromSecret: %v, want an error naming %q", err, c.want)
			}
		})
	}
}
