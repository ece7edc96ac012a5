package observability

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

const (
	routerNamespace = localrouter.Namespace
	policyConfigMap = harness.PolicyConfigMap
)

// router is the canary-router binary running as a separate process, the
// way it runs in a cluster: it watches the policy ConfigMap and serves
// certificates from a folder (external mode).
type router struct {
	*localrouter.Router
	port, healthPort int
	logPath          string
}

// startRouter starts the router, waits until it is ready, and registers
// its MutatingWebhookConfiguration.
func startRouter(ctx context.Context, c *cluster.Cluster, bin, dir string) (*router, error) {
	certDir := filepath.Join(dir, "router-certs")
	certPEM, keyPEM, err := c.CA.IssueServing("canary-router", []string{"localhost"}, loopback)
	if err != nil {
		return nil, err
	}
	if err := cluster.WriteServingPair(certDir, certPEM, keyPEM); err != nil {
		return nil, err
	}
	r := &router{logPath: filepath.Join(dir, "router.log")}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	r.port, r.healthPort = ports[0], ports[1]
	args := []string{"serve",
		"--cert-mode", "external",
		"--cert-dir", certDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--health-addr", r.metricsAddr(),
		"--namespace", routerNamespace,
		"--kubeconfig", c.Kubeconfig,
		"--policy-configmap", policyConfigMap}
	if r.Router, err = localrouter.Run(ctx, bin, args, r.logPath, r.port, r.healthPort); err != nil {
		return nil, err
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, localrouter.LoopbackConfig(r.port, c.CA.CertPEM), metav1.CreateOptions{}); err != nil {
		r.Stop()
		return nil, fmt.Errorf("registering canary-router: %w", err)
	}
	return r, nil
}

// metricsAddr is the plain-HTTP /metrics, /healthz and /readyz address.
func (r *router) metricsAddr() string { return fmt.Sprintf("127.0.0.1:%d", r.healthPort) }
