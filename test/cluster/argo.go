package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

const (
	// ArgoRolloutsBinary is the Argo Rollouts controller that `make tools`
	// builds (test/tools/build.sh, group argo).
	ArgoRolloutsBinary = "rollouts-controller"
	// ArgoRolloutsCRDs holds the CRDs that controller watches, taken from
	// its module by the same build.
	ArgoRolloutsCRDs = "argo-rollouts-crds.yaml"
)

// StartArgoRollouts installs Argo Rollouts' CRDs and starts its controller
// as the cluster admin, watching every namespace, without leader election;
// Stop stops it with the other components. It returns once the CRDs are
// established and the controller answers its health check.
func (c *Cluster) StartArgoRollouts(ctx context.Context) error {
	bin := filepath.Join(c.binDir, ArgoRolloutsBinary)
	crds := filepath.Join(c.binDir, ArgoRolloutsCRDs)
	for _, f := range []string{bin, crds} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s missing: run `make tools` to build the Argo Rollouts controller", f)
		}
	}
	// Server-side: the CRDs are larger than the annotation client-side
	// apply would keep.
	if out, err := c.Kubectl(ctx, "apply", "--server-side", "-f", crds); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	if out, err := c.Kubectl(ctx, "wait", "--for", "condition=Established", "--timeout", "60s", "-f", crds); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	args := []string{"--kubeconfig", c.Kubeconfig, "--leader-elect=false",
		"--metricsPort", strconv.Itoa(ports[0]), "--healthzPort", strconv.Itoa(ports[1])}
	p, err := startProcess("rollouts-controller", bin, args, c.logDir())
	if err != nil {
		return err
	}
	c.trackWorkload(p)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[1])
	return waitFor(ctx, "the Argo Rollouts controller", readyTimeout, p, []*process{p}, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}
