package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/podgen"
)

const (
	routedNamespace = "perf-routed"
	plainNamespace  = "perf-plain"
)

// apiserverConfig holds the apiserver command's flags.
type apiserverConfig struct {
	router  string
	pods    int
	rounds  int
	workers int
	md      string
}

func apiserverRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg apiserverConfig
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.router, "router", "bin/canary-router", "canary-router binary (make build)")
	fs.IntVar(&cfg.pods, "pods", 1000, "pods created in each namespace (1 to 10000)")
	fs.IntVar(&cfg.rounds, "rounds", 5, "batches per namespace, alternating which namespace goes first")
	fs.IntVar(&cfg.workers, "workers", 16, "concurrent creates")
	fs.StringVar(&cfg.md, "md", "", "also write the summary as Markdown to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if cfg.pods < 1 || cfg.pods > 10000 || cfg.rounds < 1 || cfg.rounds > cfg.pods || cfg.workers < 1 {
		return errors.New("--pods must be 1 to 10000, --rounds 1 to --pods, --workers positive")
	}
	if _, err := os.Stat(cfg.router); err != nil {
		return fmt.Errorf("--router: %w (run make build)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	e, err := startEnv(ctx, stderr)
	if err != nil {
		return err
	}
	defer e.stop()
	router, err := e.startRouter(ctx, cfg.router)
	defer router.stop()
	if err != nil {
		return err
	}
	restCfg := rest.CopyConfig(e.cluster.Config)
	// client-go throttles to 5 requests a second by default.
	restCfg.QPS, restCfg.Burst = 5000, 10000
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := setUpNamespaces(ctx, client, router.port, e.cluster.CA.CertPEM); err != nil {
		return err
	}
	// Warm up both paths (connections, caches) before measuring.
	for _, ns := range []string{routedNamespace, plainNamespace} {
		if _, err := createPods(ctx, client, ns, 50, cfg.workers, 1_000_000); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "apiserver: %d pods per namespace in %d rounds, %d concurrent creates\n", cfg.pods, cfg.rounds, cfg.workers)
	res := map[string]*batch{routedNamespace: {}, plainNamespace: {}}
	per := cfg.pods / cfg.rounds
	for r := 0; r < cfg.rounds; r++ {
		order := []string{routedNamespace, plainNamespace}
		if r%2 == 1 {
			order = []string{plainNamespace, routedNamespace}
		}
		n := per
		if r == cfg.rounds-1 {
			n = cfg.pods - per*(cfg.rounds-1)
		}
		for _, ns := range order {
			b, err := createPods(ctx, client, ns, n, cfg.workers, (r+1)*100_000)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  round %d %-12s %4d pods in %-10v %6.1f pods/s p99 %v\n", r+1, ns, n, b.elapsed.Round(time.Millisecond), b.rate(), b.p99())
			res[ns].add(b)
		}
	}
	with, without := res[routedNamespace], res[plainNamespace]
	text := fmt.Sprintf("with router    %6.1f pods/s  p99 create %v\nwithout router %6.1f pods/s  p99 create %v\nratio with/without: throughput %.3f (target >= 0.95), p99 %.2f\n",
		with.rate(), with.p99(), without.rate(), without.p99(), with.rate()/without.rate(), float64(with.p99())/float64(without.p99()))
	fmt.Fprint(stdout, "\n"+text)
	if cfg.md != "" {
		md := fmt.Sprintf("Command: `canary-router-load apiserver %s`\n\n| pods | pods/s | p50 create | p99 create |\n|---|--:|--:|--:|\n"+
			"| %d with the router (namespace matched by its pod webhook) | %.1f | %v | %v |\n| %d without (same apiserver, namespace not matched) | %.1f | %v | %v |\n"+
			"| **ratio with/without** | **%.3f** | | %.2f |\n",
			strings.Join(args, " "), with.count(), with.rate(), with.p50(), with.p99(), without.count(), without.rate(), without.p50(), without.p99(),
			with.rate()/without.rate(), float64(with.p99())/float64(without.p99()))
		return os.WriteFile(cfg.md, []byte(md), 0o644)
	}
	return nil
}

// setUpNamespaces creates the two namespaces (each with the default
// ServiceAccount, which no controller manager creates here) and the
// router's pod webhook, matching only the routed one, as the manifests
// register it: failurePolicy Fail, sideEffects None, 5 s timeout.
func setUpNamespaces(ctx context.Context, client kubernetes.Interface, port int, caBundle []byte) error {
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: routedNamespace, Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: plainNamespace}},
	} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
		if _, err := client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-pods", port)
	fail, none, never := admissionregv1.Fail, admissionregv1.SideEffectClassNone, admissionregv1.NeverReinvocationPolicy
	timeout := int32(5)
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-router"},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:         "pods.canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"canary-router.io/injection": "enabled"}},
			FailurePolicy:     &fail, SideEffects: &none, ReinvocationPolicy: &never, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	_, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{})
	return err
}

// batch is the outcome of creating pods in one namespace.
type batch struct {
	elapsed   time.Duration
	latencies []time.Duration
}

func (b *batch) add(o *batch) {
	b.elapsed += o.elapsed
	b.latencies = append(b.latencies, o.latencies...)
	slices.Sort(b.latencies)
}

func (b *batch) count() int         { return len(b.latencies) }
func (b *batch) rate() float64      { return float64(len(b.latencies)) / b.elapsed.Seconds() }
func (b *batch) p50() time.Duration { return b.at(0.50) }
func (b *batch) p99() time.Duration { return b.at(0.99) }

func (b *batch) at(q float64) time.Duration {
	if len(b.latencies) == 0 {
		return 0
	}
	return b.latencies[min(len(b.latencies)-1, int(q*float64(len(b.latencies))))].Round(10 * time.Microsecond)
}

// createPods creates n Deployment-shaped pods in ns with workers
// concurrent creates and checks each one: routed pods must come back
// labelled istio.io/rev, the others must not.
func createPods(ctx context.Context, client kubernetes.Interface, ns string, n, workers, seq int) (*batch, error) {
	routed := ns == routedNamespace
	var mu sync.Mutex
	var firstErr error
	b := &batch{}
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				pod := podgen.Pod(podgen.Managed, seq+i)
				pod.Namespace, pod.ManagedFields = ns, nil
				t0 := time.Now()
				got, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				lat := time.Since(t0)
				if err == nil {
					if _, labelled := got.Labels["istio.io/rev"]; labelled != routed {
						err = fmt.Errorf("pod %s/%s: label istio.io/rev present=%v, want %v", ns, got.Name, labelled, routed)
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				b.latencies = append(b.latencies, lat)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	b.elapsed = time.Since(start)
	slices.Sort(b.latencies)
	return b, firstErr
}
