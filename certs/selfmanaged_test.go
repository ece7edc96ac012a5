package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

const testNS = "canary-router-system"

func routerMWC() *admissionregv1.MutatingWebhookConfiguration {
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-router"},
		Webhooks:   []admissionregv1.MutatingWebhook{{Name: "pods.canary-router.io"}, {Name: "namespaces.canary-router.io"}},
	}
}

func newManager(t *testing.T, client kubernetes.Interface, clk *clocktesting.FakeClock, o Options) *SelfManaged {
	t.Helper()
	o.Client, o.Clock, o.Log, o.Metrics = client, clk, zap.NewNop(), NewMetrics(prometheus.NewRegistry())
	o.Namespace, o.SecretName, o.ServiceName, o.ClusterDomain, o.WebhookConfigName = testNS, "canary-router-ca", "canary-router", "cluster.local", "canary-router"
	o.ExtraSANs = append(o.ExtraSANs, "127.0.0.1")
	if o.CertValidity == 0 {
		o.CertValidity, o.CAValidity, o.CheckInterval, o.CAOverlap = 7*24*time.Hour, 365*24*time.Hour, time.Minute, 10*time.Minute
	}
	m, err := NewSelfManaged(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// servedLeaf is the certificate a TLS client would get from m.
func servedLeaf(t *testing.T, m *SelfManaged) *x509.Certificate {
	t.Helper()
	c, err := m.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

// trustedByWebhooks reports whether every webhook of the router's MWC
// trusts leaf at now, the way kube-apiserver checks it.
func trustedByWebhooks(t *testing.T, client kubernetes.Interface, leaf *x509.Certificate, now time.Time) error {
	t.Helper()
	mwc, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "canary-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, wh := range mwc.Webhooks {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(wh.ClientConfig.CABundle) {
			return errors.New(wh.Name + ": empty caBundle")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, DNSName: "canary-router.canary-router-system.svc"}); err != nil {
			return err
		}
	}
	return nil
}

func TestBootstrapCreatesCAAndPatches(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(routerMWC())
	m := newManager(t, client, clk, Options{})
	if err := m.Ready(); err == nil {
		t.Fatal("ready before the first pass")
	}
	if _, err := m.GetCertificate(nil); err == nil {
		t.Fatal("served a certificate before the first pass")
	}
	if err := m.reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("not ready after the first pass: %v", err)
	}
	s, err := client.CoreV1().Secrets(testNS).Get(t.Context(), "canary-router-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CA Secret: %v", err)
	}
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q", s.Type)
	}
	leaf := servedLeaf(t, m)
	if err := trustedByWebhooks(t, client, leaf, t0); err != nil {
		t.Errorf("served certificate not trusted by the patched MWC: %v", err)
	}
	want := []string{"canary-router", "canary-router.canary-router-system", "canary-router.canary-router-system.svc", "canary-router.canary-router-system.svc.cluster.local"}
	for _, n := range want {
		if leaf.VerifyHostname(n) != nil {
			t.Errorf("serving certificate does not name %s: %v", n, leaf.DNSNames)
		}
	}
	if leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("extra SAN 127.0.0.1 missing: %v", leaf.IPAddresses)
	}
	// A second pass with nothing due writes nothing.
	before := len(client.Actions())
	if err := m.reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions()[before:] {
		if a.GetVerb() != "get" {
			t.Errorf("idle pass made a %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if got := servedLeaf(t, m); !got.Equal(leaf) {
		t.Error("idle pass replaced the serving certificate")
	}
}

func TestCreateRaceUsesWinnersCA(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(routerMWC())
	winner, err := NewCA("winner", t0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The other replica's create lands between our get and our create.
	client.PrependReactor("create", "secrets", func(action k8stesting.Action) (bool, runtime.Object, error) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-ca", Namespace: testNS}, Type: corev1.SecretTypeTLS}
		writeAuthority(s, &Authority{Current: winner})
		if err := client.Tracker().Add(s); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "canary-router-ca")
	})
	m := newManager(t, client, clk, Options{})
	if err := m.reconcile(t.Context()); err != nil {
		t.Fatalf("a lost create race must not fail the pass: %v", err)
	}
	if leaf := servedLeaf(t, m); leaf.CheckSignatureFrom(winner.Cert) != nil {
		t.Errorf("serving certificate issued by %q, want the winner's CA", leaf.Issuer.CommonName)
	}
}

func TestUpdateConflictRereads(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(routerMWC())
	o := Options{CertValidity: 20 * time.Second, CAValidity: 40 * time.Second, CheckInterval: time.Second, CAOverlap: 5 * time.Second}
	a := newManager(t, client, clk, o)
	if err := a.reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Step(30 * time.Second) // CA renewal due: both want to stage.
	conflicts := 0
	client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Another replica stages first. The fake holds its lock while a
		// reactor runs, so write through the tracker.
		gvr := corev1.SchemeGroupVersion.WithResource("secrets")
		obj, err := client.Tracker().Get(gvr, testNS, "canary-router-ca")
		if err != nil {
			t.Fatal(err)
		}
		s := obj.(*corev1.Secret).DeepCopy()
		cur, err := authorityFromSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		staged, err := cur.Advance(StepStage, clk.Now(), func() (*KeyPair, error) { return NewCA("other", clk.Now(), 40*time.Second) })
		if err != nil {
			t.Fatal(err)
		}
		writeAuthority(s, staged)
		if err := client.Tracker().Update(gvr, s, testNS); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "canary-router-ca", errors.New("changed"))
	})
	if err := a.reconcile(t.Context()); err != nil {
		t.Fatalf("a lost update race must not fail the pass: %v", err)
	}
	s, _ := client.CoreV1().Secrets(testNS).Get(t.Context(), "canary-router-ca", metav1.GetOptions{})
	got, err := authorityFromSecret(s)
	if err != nil || got.Next == nil || got.Next.Cert.Subject.CommonName != "other" || conflicts != 1 {
		t.Fatalf("after the race: %v, conflicts %d; want the other replica's staged CA kept", err, conflicts)
	}
}

// TestRolloverKeepsEveryReplicaTrusted runs two replicas on a fake clock
// through several serving and CA rotations and checks, at every step, that
// the certificate each serves is trusted by the caBundle in the MWC. One
// replica makes a pass every second; the other lags by `lag` seconds,
// standing in for a slow watch. The rollover holds while the lag is below
// the overlap, and the second case shows the bound is real.
func TestRolloverKeepsEveryReplicaTrusted(t *testing.T) {
	for _, c := range []struct {
		name      string
		lag       int
		wantBreak bool
	}{
		{"lag below overlap", 4, false},
		{"lag beyond overlap", 7, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			client := fake.NewClientset(routerMWC())
			o := Options{CertValidity: 20 * time.Second, CAValidity: 40 * time.Second, CheckInterval: time.Second, CAOverlap: 5 * time.Second}
			fast, slow := newManager(t, client, clk, o), newManager(t, client, clk, o)
			cas, leaves := map[string]bool{}, map[string]bool{}
			broke := false
			for sec := 0; sec < 200; sec++ {
				if err := fast.reconcile(t.Context()); err != nil {
					t.Fatal(err)
				}
				if sec%c.lag == 0 {
					if err := slow.reconcile(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				for name, m := range map[string]*SelfManaged{"fast": fast, "slow": slow} {
					leaf := servedLeaf(t, m)
					leaves[leaf.SerialNumber.String()] = true
					cas[string(leaf.AuthorityKeyId)] = true
					if err := trustedByWebhooks(t, client, leaf, clk.Now()); err != nil {
						if !broke {
							t.Logf("t=%ds: %s replica's certificate from %q is not trusted: %v", sec, name, leaf.Issuer.CommonName, err)
						}
						broke = true
						if !c.wantBreak {
							t.Fatalf("t=%ds: %s replica serves a certificate the MWC does not trust: %v", sec, name, err)
						}
					}
				}
				clk.Step(time.Second)
			}
			if broke != c.wantBreak {
				t.Errorf("trust broke = %v, want %v", broke, c.wantBreak)
			}
			if c.wantBreak {
				return
			}
			if len(cas) < 4 || len(leaves) < 20 {
				t.Errorf("200 s saw %d CAs and %d serving certificates; want several rotations of each", len(cas), len(leaves))
			}
			caRot, servingRot := testutil.ToFloat64(fast.o.Metrics.rotations.WithLabelValues(certCA)), testutil.ToFloat64(fast.o.Metrics.rotations.WithLabelValues(certServing))
			t.Logf("fast replica: %g CA rotations, %g serving rotations; %d CAs and %d serving certificates seen", caRot, servingRot, len(cas), len(leaves))
			if int(caRot) != len(cas)-1 {
				t.Errorf("CA rotations metric %g, but %d CAs served", caRot, len(cas))
			}
			leaf := servedLeaf(t, fast)
			if got := testutil.ToFloat64(fast.o.Metrics.expiry.WithLabelValues(certServing)); got != float64(leaf.NotAfter.Unix()) {
				t.Errorf("serving expiry gauge %g, want %d", got, leaf.NotAfter.Unix())
			}
		})
	}
}
