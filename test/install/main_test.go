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
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

// env is shared by the package: one control plane, one router binary and
// one stand-in Istio injector; the overlays are installed one after the
// other and removed in between.
var env struct {
	cluster *cluster.Cluster
	bin     string
	dir     string
	// deploy is the repo's deploy/ folder.
	deploy string
	// istio is the stand-in Istio injector server; tests that change
	// Istio's revisions register more configs against it.
	istio *fakeistio.Injectors
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("install: skipped in -short mode (needs the control plane from `make tools`)")
		os.Exit(0)
	}
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "canary-router-install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.dir = dir
	if env.deploy, err = filepath.Abs(filepath.Join("..", "..", "deploy")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	env.cluster = c

	if env.bin, err = localrouter.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// Istio comes first in a real install: the router's manifests hold a
	// Role in istio-system, and its policy names Istio revisions.
	stopInjector, err := startInjector(ctx, c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the stand-in Istio injector: %v\n", err)
		return 1
	}
	defer stopInjector()
	return m.Run()
}
