package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Authority is the CA state kept in the CA Secret: the CA that signs
// serving certificates now, and during a rollover the CA about to sign
// (Next) or the CA that signed until recently (Previous). Every CA it holds
// is in the trust bundle.
type Authority struct {
	// Current signs serving certificates.
	Current *KeyPair
	// Next, when set, is trusted but does not sign yet; StagedAt is when it
	// was added.
	Next     *KeyPair
	StagedAt time.Time
	// Previous, when set, signed until PromotedAt and is still trusted,
	// because some replica may still serve a certificate it issued.
	Previous   *x509.Certificate
	PromotedAt time.Time
}

// Step is one move of the CA rollover.
type Step string

// The rollover steps, in the order a normal rotation takes them.
const (
	// StepNone: nothing to do.
	StepNone Step = ""
	// StepCreate makes a new CA and drops everything else: there is no CA
	// yet, or the one there has expired, so there is nothing to overlap
	// with.
	StepCreate Step = "create"
	// StepStage adds a new CA to the trust bundle; Current keeps signing.
	StepStage Step = "stage"
	// StepPromote makes Next sign and keeps the old CA trusted as Previous.
	StepPromote Step = "promote"
	// StepRetire drops Previous from the trust bundle.
	StepRetire Step = "retire"
)

// Plan decides the next rollover step at now, and why. overlap is how long
// each of the stage and promote steps lasts before the next one may run:
// the time every replica and every kube-apiserver get to see the change.
// nextPublished says whether every webhook configuration already trusts
// Next; promotion waits for it, since a replica serving from a CA the
// apiserver does not trust yet fails every call routed to it.
//
// A rotation therefore runs: stage at RenewAt(Current), promote at least
// overlap later, retire overlap after that (or when Previous expires).
func Plan(a *Authority, now time.Time, overlap time.Duration, nextPublished bool) (Step, string) {
	if a == nil || a.Current == nil {
		return StepCreate, "no CA yet"
	}
	cur := a.Current.Cert
	if !now.Before(cur.NotAfter) {
		if a.Next != nil && now.Before(a.Next.Cert.NotAfter) {
			return StepPromote, fmt.Sprintf("current CA expired at %s: promoting the staged CA at once", stamp(cur.NotAfter))
		}
		return StepCreate, fmt.Sprintf("current CA expired at %s and no usable CA is staged", stamp(cur.NotAfter))
	}
	if a.Previous != nil {
		switch {
		case !now.Before(a.PromotedAt.Add(overlap)):
			return StepRetire, fmt.Sprintf("the new CA has signed for the overlap %s since %s", overlap, stamp(a.PromotedAt))
		case !now.Before(a.Previous.NotAfter):
			return StepRetire, fmt.Sprintf("previous CA expired at %s", stamp(a.Previous.NotAfter))
		}
		return StepNone, ""
	}
	if a.Next != nil {
		if now.Before(a.StagedAt.Add(overlap)) {
			return StepNone, ""
		}
		if !nextPublished {
			return StepNone, "staged CA not yet in every webhook configuration's caBundle"
		}
		return StepPromote, fmt.Sprintf("staged CA trusted for the overlap %s since %s", overlap, stamp(a.StagedAt))
	}
	if due, why := NeedsRenewal(cur, now); due {
		return StepStage, "current CA: " + why
	}
	return StepNone, ""
}

// Advance returns the authority after step, made at now; newCA makes a
// fresh CA when the step needs one. a itself is not changed.
func (a *Authority) Advance(step Step, now time.Time, newCA func() (*KeyPair, error)) (*Authority, error) {
	switch step {
	case StepNone:
		return a, nil
	case StepCreate:
		ca, err := newCA()
		if err != nil {
			return nil, err
		}
		return &Authority{Current: ca}, nil
	case StepStage:
		ca, err := newCA()
		if err != nil {
			return nil, err
		}
		return &Authority{Current: a.Current, Next: ca, StagedAt: now}, nil
	case StepPromote:
		return &Authority{Current: a.Next, Previous: a.Current.Cert, PromotedAt: now}, nil
	case StepRetire:
		return &Authority{Current: a.Current}, nil
	}
	return nil, fmt.Errorf("unknown rollover step %q", step)
}

// CAs returns every CA the bundle trusts, oldest first. The order depends
// only on the certificates, not on which slot holds them, so the bundle of
// a replica that has seen a promotion and of one that has not yet are the
// same bytes and the two never patch the webhooks back and forth.
func (a *Authority) CAs() []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range []*x509.Certificate{a.Previous, certOf(a.Current), certOf(a.Next)} {
		if c != nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y *x509.Certificate) int {
		if c := x.NotBefore.Compare(y.NotBefore); c != 0 {
			return c
		}
		return x.SerialNumber.Cmp(y.SerialNumber)
	})
	return out
}

// Bundle is the PEM trust bundle for the webhook configurations' caBundle.
func (a *Authority) Bundle() []byte {
	var b bytes.Buffer
	for _, c := range a.CAs() {
		b.Write(encodeCert(c))
	}
	return b.Bytes()
}

// bundleTrusts reports whether the PEM bundle contains cert.
func bundleTrusts(bundle []byte, cert *x509.Certificate) bool {
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" && bytes.Equal(block.Bytes, cert.Raw) {
			return true
		}
	}
}

func certOf(kp *KeyPair) *x509.Certificate {
	if kp == nil {
		return nil
	}
	return kp.Cert
}

// checkCA rejects a certificate that cannot sign serving certificates.
func checkCA(kp *KeyPair) error {
	if !kp.Cert.IsCA || kp.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("certificate is not a CA that may sign certificates")
	}
	return nil
}
