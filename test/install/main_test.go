// Package install proves the manifests in deploy/ on a real control plane:
// each overlay passes a server-side dry run and a real apply, the router's
// Deployment rolls out under the restricted Pod Security Standard, and the
// real router binary, run as a local process with a token of the
// manifests' ServiceAccount, routes pods through the webhook
// configurations the manifests registered.
//
// The one deviation from an in-cluster install: the control plane has no
// kubelet or pod network (kwok only pretends to run pods), so the router
// runs on loopback and the test rewrites the applied webhook
// configurations' clientConfig from the Service to
// https://127.0.0.1:<port>/<path>. Everything else (selectors, failure
// policies, CEL match conditions, RBAC) is what the manifests applied; the
// policy ConfigMap, not part of the manifests, is what `canary-router init
// --apply` writes.
package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// env is shared by the package: one control plane, one router binary and
// one stand-in Istio injector; the overlays are installed one after the
// other and removed in between.
var env struct {
	*harness.Env
	// deploy is the repo's deploy/ folder.
	deploy string
	// istio is the stand-in Istio injector server; tests that change
	// Istio's revisions register more configs against it.
	istio *fakeistio.Injectors
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "install", Workloads: true, Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	var err error
	if env.deploy, err = filepath.Abs(filepath.Join("..", "..", "deploy")); err != nil {
		return err
	}
	// Istio comes first in a real install: the router's manifests hold a
	// Role in istio-system, and its policy names Istio revisions.
	stopInjector, err := startInjector(ctx, e.Cluster)
	if err != nil {
		return fmt.Errorf("starting the stand-in Istio injector: %w", err)
	}
	e.Cleanup(stopInjector)
	return nil
}
