package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

type options struct {
	dir            string
	router         string
	nonInteractive bool
	// root is the repository root, where deploy/ lives.
	root string
}

// workload is one demo Deployment. Replica counts are chosen so both
// steps split into whole pods: 10 and 50 percent of 10 and 20.
type workload struct {
	namespace, name string
	replicas        int32
}

var workloads = []workload{
	{"shop", "web", 10},
	{"shop", "cart", 10},
	{"payments", "api", 20},
	{"search", "frontend", 10},
}

// demo is one run's state.
type demo struct {
	o       options
	out     io.Writer
	cluster *cluster.Cluster
	step    int
	// promURL is the demo's Prometheus, allowed to the router; "" without.
	promURL string
}

func run(ctx context.Context, o options, out io.Writer) error {
	d := &demo{o: o, out: out}
	if d.o.root == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		d.o.root = root
	}
	if !filepath.IsAbs(d.o.router) {
		d.o.router = filepath.Join(d.o.root, d.o.router)
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	d.o.dir = dir
	rest.SetDefaultWarningHandler(warningPrinter{out})

	d.say("Starting a local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes)")
	c, err := cluster.Start(ctx, cluster.Options{Workloads: true, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "\nStopping the control plane and the router...")
		_ = c.Stop()
	}()
	d.cluster = c
	mon := startMonitoringBackground(ctx, dir)
	defer mon.stop()
	d.promURL = mon.url

	d.say("Installing a stand-in Istio with two revisions, stable (the default) and canary, registered with Istio's exact webhook selectors")
	inj, err := fakeistio.Start(c.CA)
	if err != nil {
		return err
	}
	defer inj.Close()
	if err := inj.Install(ctx, c.Client, "stable", "stable", "canary"); err != nil {
		return err
	}

	r, err := d.installRouter(ctx)
	if err != nil {
		return err
	}
	defer r.Stop()

	d.say("Setting the policy: pod granularity, 10 percent of each workload's pods to canary")
	if err := d.applyPolicy(ctx, 90, 10); err != nil {
		return err
	}
	d.say("Creating namespaces shop, payments and search with istio-injection=enabled, and 4 Deployments (50 pods)")
	if err := d.createWorkloads(ctx); err != nil {
		return err
	}
	if err := d.status(ctx, 0.10); err != nil {
		return err
	}

	d.say("Raising the canary to 50 percent and moving running pods with canary-router migrate (only the workloads the policy moves restart, in batches)")
	if err := d.applyPolicy(ctx, 50, 50); err != nil {
		return err
	}
	if err := d.migrate(ctx); err != nil {
		return err
	}
	if err := d.status(ctx, 0.50); err != nil {
		return err
	}
	if err := d.rollouts(ctx, mon); err != nil {
		return err
	}
	d.explain(r)
	if d.o.nonInteractive {
		return nil
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop the demo.")
	<-ctx.Done()
	return nil
}

func (d *demo) say(msg string) {
	d.step++
	fmt.Fprintf(d.out, "\n==> %d. %s\n", d.step, msg)
}

// installRouter applies deploy/overlays/default and runs the router as a
// local process with the manifests' ServiceAccount identity.
func (d *demo) installRouter(ctx context.Context) (*localrouter.Router, error) {
	d.say("Installing canary-router from deploy/overlays/default (kubectl apply -k)")
	if out, err := d.kubectl(ctx, "apply", "-f", filepath.Join(d.o.root, "deploy/base/namespace.yaml")); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	if out, err := d.kubectl(ctx, "apply", "-k", filepath.Join(d.o.root, "deploy/overlays/default")); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	// This control plane has no kubelet to run the router's image: the
	// router runs here as a process instead, so the Deployment's fake
	// pods would only confuse.
	if out, err := d.kubectl(ctx, "-n", localrouter.Namespace, "scale", "deployment", localrouter.Deployment, "--replicas=0"); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	args, err := localrouter.DeploymentArgs(ctx, d.cluster.Client)
	if err != nil {
		return nil, err
	}
	kubeconfig, _, err := localrouter.ServiceAccountKubeconfig(ctx, d.cluster, d.o.dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(d.out, "    running the router as a local process, authenticated as ServiceAccount canary-router-system/canary-router")
	extra := []string{"--cert-extra-sans", "127.0.0.1", "--log-format", "console"}
	if d.promURL != "" {
		// The rollout's PromQL gate may query only what the router allows.
		extra = append(extra, "--prometheus-allowed-url", d.promURL)
	}
	r, err := localrouter.Start(ctx, d.o.router, args, kubeconfig, filepath.Join(d.o.dir, "logs", "canary-router.log"), extra...)
	if err != nil {
		return nil, err
	}
	if err := localrouter.PointWebhooksAtLoopback(ctx, d.cluster.Client, r.Port, nil); err != nil {
		r.Stop()
		return nil, err
	}
	if err := d.waitCABundle(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// waitCABundle waits until the router has patched its own CA into its
// webhook configurations (self-managed certificates).
func (d *demo) waitCABundle(ctx context.Context) error {
	return cluster.WaitCABundles(ctx, d.cluster.Client, localrouter.WebhookConfig)
}

func (d *demo) applyPolicy(ctx context.Context, stable, canary int) error {
	return d.applyPolicyDoc(ctx, fmt.Sprintf("granularity: pod\nseed: demo\ntargets:\n  - revision: stable\n    weight: %d\n  - revision: canary\n    weight: %d\n", stable, canary))
}

// applyPolicyDoc applies policy.yaml as the policy ConfigMap, the way an
// operator would, and shows the command.
func (d *demo) applyPolicyDoc(ctx context.Context, policyYAML string) error {
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: canary-router-policy\n  namespace: canary-router-system\ndata:\n  policy.yaml: |\n" +
		"    " + strings.ReplaceAll(strings.TrimRight(policyYAML, "\n"), "\n", "\n    ") + "\n"
	path := filepath.Join(d.o.dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return err
	}
	out, err := d.kubectl(ctx, "apply", "-f", path)
	fmt.Fprintf(d.out, "    $ kubectl apply -f %s\n%s", path, indent(out))
	if err != nil {
		return err
	}
	// The router applies the edit within milliseconds; a dry-run pod
	// would show it, but a short pause is enough for a demo.
	time.Sleep(500 * time.Millisecond)
	return nil
}

func (d *demo) createWorkloads(ctx context.Context) error {
	seen := map[string]bool{}
	for _, w := range workloads {
		if !seen[w.namespace] {
			seen[w.namespace] = true
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.namespace, Labels: map[string]string{"istio-injection": "enabled"}}}
			created, err := d.cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(d.out, "    namespace %-9s labels: %s\n", w.namespace, labelString(created.Labels))
			if err := d.waitServiceAccount(ctx, w.namespace); err != nil {
				return err
			}
		}
		if _, err := d.cluster.Client.AppsV1().Deployments(w.namespace).Create(ctx, deployment(w), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return d.waitRollouts(ctx)
}

// status prints the status command's rollout table and checks the canary
// share it reports against the policy.
func (d *demo) status(ctx context.Context, want float64) error {
	fmt.Fprintf(d.out, "\n    $ canary-router status\n")
	out, err := exec.CommandContext(ctx, d.o.router, "status", "--kubeconfig", d.cluster.Kubeconfig).CombinedOutput()
	fmt.Fprint(d.out, indent(out))
	if err != nil {
		return fmt.Errorf("canary-router status: %w", err)
	}
	canary, total, err := d.podsOn(ctx, "canary")
	if err != nil {
		return err
	}
	got := float64(canary) / float64(total)
	if fmt.Sprintf("%.2f", got) != fmt.Sprintf("%.2f", want) {
		return fmt.Errorf("canary share %d/%d = %.2f, the policy asks for %.2f", canary, total, got, want)
	}
	fmt.Fprintf(d.out, "    canary share: %d of %d pods = %.0f%%, as the policy asks\n", canary, total, got*100)
	return nil
}

func (d *demo) explain(r *localrouter.Router) {
	kc := d.cluster.Kubeconfig
	fmt.Fprintln(d.out, "\n==> Done.")
	if d.o.nonInteractive {
		fmt.Fprintln(d.out, "Non-interactive run: everything stops now. Run `make demo` in a terminal to keep it up and try:")
	} else {
		fmt.Fprintln(d.out, "The control plane and the router keep running until you press Ctrl-C. Poke at it:")
	}
	fmt.Fprintf(d.out, `
    export KUBECONFIG=%s
    _bin/kubectl get namespaces -L canary-router.io/injection,istio.io/rev
    _bin/kubectl -n shop get pods -L istio.io/rev -o custom-columns='POD:.metadata.name,ROUTED:.metadata.labels.istio\.io/rev,DECISION:.metadata.annotations.canary-router\.io/decision'
    _bin/kubectl -n canary-router-system edit configmap canary-router-policy
    bin/canary-router status
    bin/canary-router simulate --policy %s --namespaces 40 --deployments 200 --replicas 10
    curl -s http://127.0.0.1:%d/metrics | grep canary_router_decisions_total

Router log: %s
`, kc, filepath.Join(d.o.dir, "policy.yaml"), r.HealthPort, r.LogPath)
}

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(data), "module github.com/canary-router/canary-router\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the demo inside the canary-router repository")
		}
		dir = parent
	}
}

func (d *demo) kubectl(ctx context.Context, args ...string) ([]byte, error) {
	return d.cluster.Kubectl(ctx, args...)
}

func deployment(w workload) *appsv1.Deployment {
	labels := map[string]string{"app": w.name}
	replicas := w.replicas
	// A restart rolls in one round (all new pods, then the old ones go),
	// not four of 25 percent: the demo restarts every workload several
	// times and must stay short; fake pods cost nothing.
	all, none := intstr.FromString("100%"), intstr.FromInt32(0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: w.name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &all, MaxUnavailable: &none}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

func indent(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// warningPrinter shows the API server's admission warnings (the router's
// explanations) in the demo's output, as kubectl would.
type warningPrinter struct{ out io.Writer }

// HandleWarningHeader implements rest.WarningHandler.
func (w warningPrinter) HandleWarningHeader(_ int, _ string, text string) {
	fmt.Fprintf(w.out, "    Warning: %s\n", text)
}

func labelString(l map[string]string) string {
	var parts []string
	for k, v := range l {
		if k != "kubernetes.io/metadata.name" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}
