package install

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

// revision is the Istio revision the starter policy routes to: `default`,
// which a non-revisioned Istio install serves itself.
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
	return inj.Close, nil
}
