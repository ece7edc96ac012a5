package certse2e

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
)

// TestExternalModeReloads serves a pair from a folder, as cert-manager
// mounts it, swaps the pair while the apiserver keeps calling, and checks
// the router picks up the new one without a restart and leaves caBundle
// and Secrets alone.
func TestExternalModeReloads(t *testing.T) {
	deleteCASecret(t)
	dir := filepath.Join(t.TempDir(), "certs")
	issue := func() []byte {
		t.Helper()
		certPEM, keyPEM, err := env.Cluster.CA.IssueServing("canary-router",
			[]string{"canary-router.canary-router-system.svc"}, []net.IP{net.ParseIP("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		if err := cluster.WriteServingPair(dir, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		return certPEM
	}
	issue()
	r := newRouter(t, "external")
	installWebhooks(t, r)
	// Play cert-manager's cainjector: caBundle is the issuing CA.
	ctx := harness.Context(t, time.Minute)
	adm := env.Cluster.Client.AdmissionregistrationV1()
	mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = env.Cluster.CA.CertPEM
	}
	mwc, err = adm.MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.start(t, "--cert-mode", "external", "--cert-dir", dir, "--cert-check-interval", "1s", "--kubeconfig", env.Cluster.Kubeconfig)
	r.waitReady(t, 30*time.Second)
	first, err := r.servedCert()
	if err != nil {
		t.Fatal(err)
	}
	checkRouted(t, createPod(t, "external-before"))

	issue()
	began := time.Now()
	for {
		leaf, err := r.servedCert()
		if err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			break
		}
		if time.Since(began) > 15*time.Second {
			t.Fatalf("still serving serial %s 15s after the files changed", first.SerialNumber)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("RESULT external mode: new pair served %s after the files changed", time.Since(began).Round(time.Millisecond))
	checkRouted(t, createPod(t, "external-after"))
	if got := r.metrics(t)[`canary_router_cert_rotations_total{cert="serving"}`]; got != 1 {
		t.Errorf("serving rotations metric %g, want 1", got)
	}

	after, err := adm.MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != mwc.ResourceVersion {
		t.Errorf("external mode changed the MutatingWebhookConfiguration (resourceVersion %s -> %s)", mwc.ResourceVersion, after.ResourceVersion)
	}
	if _, err := env.Cluster.Client.CoreV1().Secrets(routerNamespace).Get(ctx, secretName, metav1.GetOptions{}); err == nil {
		t.Error("external mode created the CA Secret")
	}
}
