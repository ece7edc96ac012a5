package observability

import (
	"context"
	"fmt"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

// installIstio installs the stand-in Istio: revisions stable and canary
// with ready istiods, the default tag on stable, and tag prod on canary.
func installIstio(ctx context.Context, e *harness.Env) error {
	inj, err := e.StartIstio(ctx, "stable", "stable", "canary")
	if err != nil {
		return err
	}
	prod := fakeistio.InjectorConfig(inj.URL, inj.CABundle, "canary", "prod")
	if _, err := e.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, prod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering %s: %w", prod.Name, err)
	}
	return nil
}
