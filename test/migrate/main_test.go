// Package migrate tests the migration (controller/migrate, issue 16) end
// to end on a real control plane: kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler and kwok, stand-in Istio
// injectors, the Argo Rollouts controller, and two router replicas run as local processes with a token
// of the manifests' ServiceAccount bound by deploy/base/rbac.yaml, electing
// a leader on the Lease as in a cluster.
//
// Each scenario prints RESULT lines; scenarios run one after the other
// (the policy is cluster-wide) and delete their namespaces when done.
package migrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

var env struct {
	*harness.Env
	// saKubeconfig carries a token of the manifests' ServiceAccount.
	saKubeconfig string
	certDir      string
	// replicas are the two router processes, by name (also their
	// POD_NAME, the prefix of their Lease identity).
	replicas map[string]*replica
	// istio is the stand-in injectors, which a test can take down.
	istio *fakeistio.Injectors
}

// replica is one router process and its fixed ports, so a restart keeps
// the webhook configuration pointing at it.
type replica struct {
	name     string
	port, hp int
	proc     *localrouter.Router
	starts   int
	logPath  string
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{Name: "migrate", Workloads: true, Setup: setup}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	c := e.Cluster
	in, err := e.StartIstio(ctx, "stable", "stable", "canary")
	if err != nil {
		return err
	}
	env.istio = in
	// Argo Rollouts before the routers: the leader looks for its CRD once
	// per term, when it starts leading (TestArgoRollouts).
	if err := c.StartArgoRollouts(ctx); err != nil {
		return err
	}
	id, err := e.SetUpManifestIdentity(ctx)
	if err != nil {
		return err
	}
	env.saKubeconfig, env.certDir = id.Kubeconfig, id.CertDir
	// The first policy: everything on stable, no migration.
	if err := e.WritePolicy(ctx, policyDoc("workload", 0, "")); err != nil {
		return err
	}
	env.replicas = map[string]*replica{}
	for _, name := range []string{"router-a", "router-b"} {
		ports, err := cluster.FreePorts(2)
		if err != nil {
			return err
		}
		r := &replica{name: name, port: ports[0], hp: ports[1]}
		env.replicas[name] = r
		e.Cleanup(r.stop)
		if err := r.start(ctx); err != nil {
			return err
		}
		e.LogOnFailure(name, func() string { return r.logPath }, 3000)
	}
	// Admissions go to router-b; either may lead.
	_, err = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		localrouter.LoopbackConfig(env.replicas["router-b"].port, c.CA.CertPEM), metav1.CreateOptions{})
	return err
}

// start (re)starts the replica as the ServiceAccount, watching the policy
// ConfigMap.
func (r *replica) start(ctx context.Context) error {
	r.starts++
	r.logPath = filepath.Join(env.Dir, fmt.Sprintf("%s-%d.log", r.name, r.starts))
	// The Lease identity is POD_NAME plus a random suffix; the child
	// inherits the environment at start.
	if err := os.Setenv("POD_NAME", r.name); err != nil {
		return err
	}
	args := []string{"serve",
		"--cert-mode", "external", "--cert-dir", env.certDir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", r.hp),
		"--namespace", localrouter.Namespace,
		"--kubeconfig", env.saKubeconfig,
		"--policy-configmap", harness.PolicyConfigMap,
		"--log-level", "debug"}
	p, err := localrouter.Run(ctx, env.Bin, args, r.logPath, r.port, r.hp)
	if err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	r.proc = p
	return nil
}

func (r *replica) stop() {
	if r.proc != nil {
		r.proc.Stop()
		<-r.proc.Exited()
		r.proc = nil
	}
}

// policy renders a two-target policy with an optional migration block.
func policyDoc(granularity string, canary float64, migration string) string {
	doc := harness.PolicyYAML(granularity, "migrate", 100-canary, canary)
	if migration != "" {
		doc += "migration: " + migration + "\n"
	}
	return doc
}
