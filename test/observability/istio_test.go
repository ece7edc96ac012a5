package observability

import (
	"context"
	"fmt"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

// installIstio installs the stand-in Istio: revisions stable and canary
// with ready istiods, the default tag on stable, and tag prod on canary.
func installIstio(ctx context.Context, c *cluster.Cluster) (func(), error) {
	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		return nil, err
	}
	if err := inj.Install(ctx, c.Client, "stable", "stable", "canary"); err != nil {
		inj.Close()
		return nil, err
	}
	prod := fakeistio.InjectorConfig(inj.URL, inj.CABundle, "canary", "prod")
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, prod, metav1.CreateOptions{}); err != nil {
		inj.Close()
		return nil, fmt.Errorf("registering %s: %w", prod.Name, err)
	}
	return inj.Close, nil
}
