package install

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

// revision is the Istio revision the first policy routes to: `default`,
// which a non-revisioned Istio install serves itself, so `canary-router
// init` chooses it.
const revision = "default"

// startInjector registers a stand-in for a non-revisioned Istio install:
// config istio-sidecar-injector with Istio's exact selectors for revision
// "default" and the default revision's webhooks, and a ready istiod.
func startInjector(ctx context.Context, c *cluster.Cluster) (stop func(), err error) {
	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		return nil, err
	}
	mwc := fakeistio.InjectorConfig(inj.URL, inj.CABundle, revision, "")
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		inj.Close()
		return nil, fmt.Errorf("registering %s: %w", mwc.Name, err)
	}
	if err := fakeistio.RegisterIstiod(ctx, c.Client, revision); err != nil {
		inj.Close()
		return nil, err
	}
	env.istio = inj
	return inj.Close, nil
}

// swapIstio replaces the stand-in's non-revisioned install with a
// revisioned one without a `default` tag: revision rev only. The
// non-revisioned install is restored when the test ends.
func swapIstio(t *testing.T, ctx context.Context, rev string) {
	t.Helper()
	mwcs := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	def := fakeistio.InjectorConfig(env.istio.URL, env.istio.CABundle, revision, "")
	if err := mwcs.Delete(ctx, def.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := mwcs.Create(ctx, def, metav1.CreateOptions{}); err != nil {
			t.Errorf("restoring %s: %v", def.Name, err)
		}
	})
	registerRevision(t, ctx, rev)
}

// registerRevision adds a stand-in Istio revision (its injector config
// and a ready istiod) until the test ends.
func registerRevision(t *testing.T, ctx context.Context, rev string) {
	t.Helper()
	mwcs := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc := fakeistio.InjectorConfig(env.istio.URL, env.istio.CABundle, rev, "")
	if _, err := mwcs.Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := mwcs.Delete(ctx, mwc.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("removing %s: %v", mwc.Name, err)
		}
	})
	if err := fakeistio.RegisterIstiod(ctx, env.Cluster.Client, rev); err != nil {
		t.Fatal(err)
	}
}
