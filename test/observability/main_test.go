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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

// env is the package's shared environment.
var env struct {
	cluster *cluster.Cluster
	router  *router
	prom    *prometheus
	// bin is the canary-router binary under test.
	bin string
	// dir is the package's scratch folder.
	dir string
	// rules is the rules file extracted from the PrometheusRule.
	rules string
}

// requiredTools are the Prometheus binaries the tests run; `make
// prometheus` installs them.
var requiredTools = []string{"prometheus", "promtool"}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("observability: skipped in -short mode (needs the control plane from `make tools` and Prometheus from `make prometheus`)")
		os.Exit(0)
	}
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	for _, tool := range requiredTools {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "observability: %s not on PATH: run `make prometheus` (test/tools/install-prometheus.sh)\n", tool)
			return 1
		}
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "canary-router-observability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.dir = dir

	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	env.cluster = c
	fmt.Printf("observability: control plane ready in %s\n", time.Since(start).Round(time.Millisecond))

	if env.bin, err = localrouter.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stopIstio, err := installIstio(ctx, c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stand-in Istio: %v\n", err)
		return 1
	}
	defer stopIstio()

	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: routerNamespace}}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintf(os.Stderr, "creating %s: %v\n", routerNamespace, err)
		return 1
	}
	if err := writePolicy(ctx, policyYAML(100, 0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := startRouter(ctx, c, env.bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Stop()
	env.router = r

	env.rules, err = extractRules(filepath.Join("..", "..", "deploy", "monitoring", "prometheusrule.yaml"), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := startPrometheus(ctx, dir, env.rules, r.metricsAddr())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.stop()
	env.prom = p

	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- last router log (%s):\n%s\n", r.logPath, tailFile(r.logPath, 4000))
		fmt.Fprintf(os.Stderr, "--- last Prometheus log (%s):\n%s\n", p.logPath, tailFile(p.logPath, 3000))
	}
	return code
}

// policyYAML renders the scenario's two-target, per-pod policy.
func policyYAML(stable, canary float64) string {
	return fmt.Sprintf("granularity: pod\nseed: observability\ntargets:\n  - revision: stable\n    weight: %g\n  - revision: canary\n    weight: %g\n", stable, canary)
}

// writePolicy creates or updates the policy ConfigMap the router watches.
func writePolicy(ctx context.Context, doc string) error {
	cms := env.cluster.Client.CoreV1().ConfigMaps(routerNamespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: policyConfigMap, Namespace: routerNamespace}, Data: map[string]string{"policy.yaml": doc}}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
		return nil
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("writing the policy ConfigMap: %w", err)
	}
	return nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
