package certse2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/certs"
	"github.com/canary-router/canary-router/test/harness"
)

// TestSelfManagedBootstrap starts two routers at once with no CA Secret and
// webhook configurations whose caBundle is empty. They must agree on one
// CA, publish it, and serve certificates the apiserver accepts.
func TestSelfManagedBootstrap(t *testing.T) {
	deleteCASecret(t)
	a, b := newRouter(t, "a"), newRouter(t, "b")
	installWebhooks(t, a, b)
	var wg sync.WaitGroup
	began := time.Now()
	for _, r := range []*router{a, b} {
		wg.Go(func() { r.start(t, r.selfManagedArgs(env.Cluster.Kubeconfig)...) })
	}
	wg.Wait()
	for _, r := range []*router{a, b} {
		r.waitReady(t, 30*time.Second)
	}
	t.Logf("both routers ready %s after start", time.Since(began).Round(time.Millisecond))

	ca := currentCA(t)
	t.Run("one CA for both replicas", func(t *testing.T) {
		for _, r := range []*router{a, b} {
			leaf, err := r.servedCert()
			if err != nil {
				t.Fatal(err)
			}
			if err := leaf.CheckSignatureFrom(ca); err != nil {
				t.Errorf("%s serves a certificate from %q, not from the Secret's CA %q", r.name, leaf.Issuer.CommonName, ca.Subject.CommonName)
			}
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
		}
		for _, r := range []*router{a, b} {
			if strings.Contains(r.logTail(1<<20), "another replica changed the CA Secret first") {
				t.Logf("%s lost the create race and adopted the winner's CA", r.name)
			}
		}
	})

	t.Run("caBundle published", func(t *testing.T) {
		waitBundlesTrust(t, ca, 10*time.Second)
	})

	t.Run("apiserver calls succeed", func(t *testing.T) {
		for i := range 10 {
			pod := createPod(t, fmt.Sprintf("boot-%d", i))
			checkRouted(t, pod)
		}
	})

	t.Run("expiry metrics", func(t *testing.T) {
		leaf, err := a.servedCert()
		if err != nil {
			t.Fatal(err)
		}
		m := a.metrics(t)
		if got := m[`canary_router_cert_expiry_timestamp_seconds{cert="serving"}`]; got != float64(leaf.NotAfter.Unix()) {
			t.Errorf("serving expiry %g, want %d (%s)", got, leaf.NotAfter.Unix(), leaf.NotAfter)
		}
		if got := m[`canary_router_cert_expiry_timestamp_seconds{cert="ca"}`]; got != float64(ca.NotAfter.Unix()) {
			t.Errorf("ca expiry %g, want %d (%s)", got, ca.NotAfter.Unix(), ca.NotAfter)
		}
	})

	t.Run("wiped caBundle restored", func(t *testing.T) {
		adm := env.Cluster.Client.AdmissionregistrationV1()
		ctx := harness.Context(t, time.Minute)
		// A JSON patch that empties every webhook's caBundle, as a
		// careless `kubectl patch` would.
		mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ops []map[string]any
		for i := range mwc.Webhooks {
			ops = append(ops, map[string]any{"op": "remove", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i)})
		}
		patch, _ := json.Marshal(ops)
		began := time.Now()
		if _, err := adm.MutatingWebhookConfigurations().Patch(ctx, configName, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitBundlesTrust(t, ca, 10*time.Second)
		t.Logf("RESULT MutatingWebhookConfiguration caBundle wiped by patch: restored after %s", time.Since(began).Round(time.Millisecond))

		// A re-apply of the manifests: a full update without caBundle.
		vwc, err := adm.ValidatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.CABundle = nil
		}
		began = time.Now()
		if _, err := adm.ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitBundlesTrust(t, ca, 10*time.Second)
		t.Logf("RESULT ValidatingWebhookConfiguration caBundle reset by update: restored after %s", time.Since(began).Round(time.Millisecond))
		// And the apiserver can call the routers again.
		checkRouted(t, createPod(t, "after-restore"))
	})
}

// currentCA reads the signing CA from the CA Secret.
func currentCA(t *testing.T) *x509.Certificate {
	t.Helper()
	s, err := env.Cluster.Client.CoreV1().Secrets(routerNamespace).Get(harness.Context(t, 10*time.Second), secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CA Secret: %v", err)
	}
	ca, err := certs.ParseCert(s.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// waitBundlesTrust waits until every webhook of both configurations has a
// caBundle that trusts ca.
func waitBundlesTrust(t *testing.T, ca *x509.Certificate, timeout time.Duration) {
	t.Helper()
	var last map[string][]byte
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		if last, err = webhookBundles(ctx); err != nil {
			return false, nil
		}
		for _, b := range last {
			if !bundleHas(b, ca) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("caBundle does not trust CA %q after %s: %d webhooks, bundles %q", ca.Subject.CommonName, timeout, len(last), last)
	}
}

func bundleHas(bundle []byte, ca *x509.Certificate) bool {
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return false
		}
		if bytes.Equal(block.Bytes, ca.Raw) {
			return true
		}
	}
}

// createPod creates a pod in the routed namespace and fails the test on
// any error.
func createPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	return env.CreatePod(t, routedNamespace, harness.Pod(name))
}

// checkRouted asserts the router labelled the pod for one of the policy's
// revisions and recorded why.
func checkRouted(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if rev := pod.Labels["istio.io/rev"]; rev != "stable" && rev != "canary" {
		t.Errorf("pod %s: istio.io/rev=%q, want stable or canary (labels %v)", pod.Name, rev, pod.Labels)
	}
	if pod.Annotations["canary-router.io/decision"] == "" {
		t.Errorf("pod %s has no decision annotation", pod.Name)
	}
}
