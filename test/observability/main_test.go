// Package observability tests what operators watch a rollout with, end to
// end: a real Prometheus (Debian's package, test/tools/install-prometheus.sh)
// scrapes the real router on a real control plane while Deployments roll
// out, evaluates the PrometheusRule from deploy/monitoring, and answers the
// PromQL the docs and the Grafana dashboard use; `canary-router status`
// reads the same cluster and must agree with it.
//
// It has its own control plane, router and Prometheus, so it runs beside
// test/e2e without sharing state.
package observability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/canary-router/canary-router/test/harness"
)

// env is the package's shared environment.
var env struct {
	*harness.Env
	router *router
	prom   *prometheus
	// rules is the rules file extracted from the PrometheusRule.
	rules string
}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:      "observability",
		Needs:     "the control plane from `make tools` and Prometheus from `make prometheus`",
		Tools:     []string{"prometheus", "promtool"},
		ToolsHint: "run `make prometheus` (test/tools/install-prometheus.sh)",
		Workloads: true,
		Setup:     setup,
	}))
}

func setup(ctx context.Context, e *harness.Env) error {
	env.Env = e
	if err := installIstio(ctx, e); err != nil {
		return fmt.Errorf("stand-in Istio: %w", err)
	}
	if err := e.CreateNamespaceObject(ctx, routerNamespace, nil); err != nil {
		return err
	}
	if err := e.WritePolicy(ctx, policyYAML(100, 0)); err != nil {
		return err
	}
	r, err := startRouter(ctx, e.Cluster, e.Bin, e.Dir)
	if err != nil {
		return err
	}
	e.Cleanup(r.Stop)
	e.LogOnFailure("router", func() string { return r.logPath }, 4000)
	env.router = r

	env.rules, err = extractRules(filepath.Join("..", "..", "deploy", "monitoring", "prometheusrule.yaml"), e.Dir)
	if err != nil {
		return err
	}
	p, err := startPrometheus(ctx, e.Dir, env.rules, r.metricsAddr())
	if err != nil {
		return err
	}
	e.Cleanup(p.stop)
	e.LogOnFailure("Prometheus", func() string { return p.logPath }, 3000)
	env.prom = p
	return nil
}

// policyYAML renders the scenario's two-target, per-pod policy.
func policyYAML(stable, canary float64) string {
	return harness.PolicyYAML("pod", "observability", stable, canary)
}
