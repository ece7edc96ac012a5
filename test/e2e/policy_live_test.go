package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/harness"
)

const policyConfigMap = harness.PolicyConfigMap

// TestLivePolicy runs the router as in a cluster, watching its policy
// ConfigMap, and edits the policy the way an operator does.
func TestLivePolicy(t *testing.T) {
	ctx := harness.Context(t, 10*time.Minute)
	start := "granularity: pod\nseed: live-0\ntargets:\n  - revision: stable\n    weight: 100\n  - revision: canary\n    weight: 0\n"
	if out, err := applyPolicy(t, start); err != nil {
		t.Fatalf("initial policy: %v\n%s", err, out)
	}
	if err := env.router.startWatching(ctx); err != nil {
		t.Fatal(err)
	}
	registerPolicyValidator(t)
	managedNamespace(t, "live")
	env.WaitServiceAccount(t, "live")
	if d := probeDecision(t, "live"); d.Policy != harness.Digest(start) {
		t.Fatalf("first pod routed by policy %q, want %q", d.Policy, harness.Digest(start))
	}

	t.Run("invalid policies are rejected at apply", func(t *testing.T) {
		docs, _ := filepath.Glob("../../policy/testdata/invalid/*.yaml")
		if len(docs) < 25 {
			t.Fatalf("catalogue has %d documents", len(docs))
		}
		genBefore := scrape(t)["canary_router_policy_generation"]
		for _, doc := range docs {
			data, _ := os.ReadFile(doc)
			want, _ := os.ReadFile(strings.TrimSuffix(doc, ".yaml") + ".want")
			out, err := applyPolicy(t, string(data))
			if err == nil {
				t.Errorf("%s: kubectl apply accepted it:\n%s", filepath.Base(doc), out)
				continue
			}
			if filepath.Base(doc) == "17-weight-over-100.yaml" {
				t.Logf("kubectl apply of %s answers:\n%s", filepath.Base(doc), out)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(string(out), line) {
					t.Errorf("%s: kubectl output lacks %q:\n%s", filepath.Base(doc), line, out)
				}
			}
		}
		t.Logf("RESULT %d invalid policies rejected by kubectl apply, each with its catalogue message", len(docs))
		if g := scrape(t)["canary_router_policy_generation"]; g != genBefore {
			t.Errorf("policy generation moved from %v to %v", genBefore, g)
		}
	})

	t.Run("new weights take effect for the next pod", func(t *testing.T) {
		var delays []time.Duration
		for i := 1; i <= 10; i++ {
			doc := fmt.Sprintf("granularity: pod\nseed: live-%d\ntargets:\n  - revision: stable\n    weight: %d\n  - revision: canary\n    weight: %d\n", i, 100-i*5, i*5)
			if out, err := applyPolicy(t, doc); err != nil {
				t.Fatalf("edit %d: %v\n%s", i, err, out)
			}
			applied := time.Now()
			err := wait.PollUntilContextTimeout(ctx, 0, 10*time.Second, true, func(context.Context) (bool, error) {
				return probeDecision(t, "live").Policy == harness.Digest(doc), nil
			})
			if err != nil {
				t.Fatalf("edit %d not in effect after 10s", i)
			}
			delays = append(delays, time.Since(applied))
		}
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		t.Logf("RESULT apply-to-first-routed-pod delay over %d edits: median %s, min %s, max %s (includes one pod creation round trip)",
			len(delays), delays[len(delays)/2].Round(time.Millisecond), delays[0].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	})

	t.Run("without the validating webhook a bad edit keeps the last good policy", func(t *testing.T) {
		good := "granularity: pod\nseed: last-good\ntargets:\n  - revision: stable\n    weight: 70\n  - revision: canary\n    weight: 30\n"
		if out, err := applyPolicy(t, good); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		waitMetric(t, "canary_router_policy_valid", 1)
		before := scrape(t)
		if err := env.Cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "canary-router", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		bad := "granularity: pod\ntargets:\n  - revision: stable\n    weight: 150\n"
		if out, err := applyPolicy(t, bad); err != nil {
			t.Fatalf("without the webhook the apiserver should store it: %v\n%s", err, out)
		}
		waitMetric(t, "canary_router_policy_valid", 0)
		after := scrape(t)
		if after["canary_router_policy_reload_errors_total"] != before["canary_router_policy_reload_errors_total"]+1 {
			t.Errorf("reload errors %v -> %v, want +1", before["canary_router_policy_reload_errors_total"], after["canary_router_policy_reload_errors_total"])
		}
		if after["canary_router_policy_generation"] != before["canary_router_policy_generation"] {
			t.Errorf("generation moved %v -> %v", before["canary_router_policy_generation"], after["canary_router_policy_generation"])
		}
		if d := probeDecision(t, "live"); d.Policy != harness.Digest(good) {
			t.Errorf("pod routed by policy %q after a bad edit, want the last good %q", d.Policy, harness.Digest(good))
		}
		waitEvent(t, "PolicyRejected", "targets[0].weight: must be between 0 and 100")
		t.Logf("RESULT invalid edit without the validating webhook: policy_valid=0, reload_errors_total +1, generation stays %v, next pod routed by the last good policy, Warning event PolicyRejected on the ConfigMap",
			after["canary_router_policy_generation"])
		registerPolicyValidator(t)
	})

	t.Run("pods created during policy flips never see a mixed policy", func(t *testing.T) {
		flipPods(t, ctx)
	})
}

// flipPods creates 1,000 pods while the policy flips 20 times between
// all-stable and all-canary; each pod's decision must name a policy
// whose weights produced its revision.
func flipPods(t *testing.T, ctx context.Context) {
	const pods, flips, workers = 1000, 20, 8
	docs := map[string]string{
		harness.Digest(flipDoc("stable")): "stable",
		harness.Digest(flipDoc("canary")): "canary",
	}
	managedNamespace(t, "live-flips")
	env.WaitServiceAccount(t, "live-flips")
	cms := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace)
	// Start from one of the two flip policies, in force before the first
	// pod, so every decision must name one of them.
	if out, err := applyPolicy(t, flipDoc("stable")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return probeDecision(t, "live-flips").Policy == harness.Digest(flipDoc("stable")), nil
	}); err != nil {
		t.Fatal("the first flip policy never took effect")
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range flips {
			cm, err := cms.Get(ctx, policyConfigMap, metav1.GetOptions{})
			if err == nil {
				cm.Data["policy.yaml"] = flipDoc([]string{"canary", "stable"}[i%2])
				_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			}
			if err != nil {
				errs <- fmt.Errorf("flip %d: %w", i, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	next := make(chan int)
	go func() {
		for i := range pods {
			next <- i
		}
		close(next)
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flip-%04d", i)},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
				if _, err := env.Cluster.Client.CoreV1().Pods("live-flips").Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("pod %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list := env.ListPods(t, "live-flips", "!probe")
	_, mismatches := harness.RoutedPods(t, list)
	perPolicy := map[string]int{}
	mixed := 0
	for _, p := range list {
		d, _ := harness.DecisionOf(t, p.ObjectMeta)
		want, known := docs[d.Policy]
		if !known || d.Revision != want {
			mixed++
			t.Errorf("pod %s: revision %q from policy %q (generation %d)", p.Name, d.Revision, d.Policy, d.Generation)
		}
		perPolicy[want]++
	}
	if len(list) != pods {
		t.Errorf("%d pods, want %d", len(list), pods)
	}
	t.Logf("RESULT %d pods during %d policy flips: %d from the all-stable policy, %d from the all-canary policy, %d decisions not explained by the policy they name, %d routed-vs-injected mismatches",
		len(list), flips, perPolicy["stable"], perPolicy["canary"], mixed, mismatches)
	if perPolicy["stable"] == 0 || perPolicy["canary"] == 0 {
		t.Errorf("the flips did not interleave with the creations: %v", perPolicy)
	}
}

func flipDoc(rev string) string {
	w := map[string]int{"stable": 0, "canary": 0}
	w[rev] = 100
	return fmt.Sprintf("granularity: pod\nseed: flip\ntargets:\n  - revision: stable\n    weight: %d\n  - revision: canary\n    weight: %d\n", w["stable"], w["canary"])
}

// applyPolicy writes the policy ConfigMap with kubectl apply, as an
// operator would.
func applyPolicy(t *testing.T, doc string) ([]byte, error) {
	t.Helper()
	cm := corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: policyConfigMap, Namespace: routerNamespace},
		Data:       map[string]string{"policy.yaml": doc},
	}
	raw, _ := json.Marshal(cm)
	f := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return env.Cluster.Kubectl(harness.Context(t, time.Minute), "apply", "-f", f)
}

// probeDecision creates a bare pod and returns the router's decision.
func probeDecision(t *testing.T, ns string) harness.Decision {
	t.Helper()
	p := harness.Pod("probe-")
	p.Labels = map[string]string{"probe": "true"}
	out := env.CreatePod(t, ns, p)
	d, ok := harness.DecisionOf(t, out.ObjectMeta)
	if !ok {
		t.Fatalf("probe pod %s was not routed", out.Name)
	}
	return d
}

// registerPolicyValidator registers the router's validating webhook for
// its policy ConfigMap, as the manifests do.
func registerPolicyValidator(t *testing.T) {
	t.Helper()
	vwc := harness.PolicyValidator(env.router.url("/validate-policy"), env.Cluster.CA.CertPEM)
	vwcs := env.Cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := vwcs.Create(harness.Context(t, 30*time.Second), vwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering the policy validator: %v", err)
	}
	t.Cleanup(func() { _ = vwcs.Delete(context.Background(), "canary-router", metav1.DeleteOptions{}) })
}

// scrape reads the router's metrics.
func scrape(t *testing.T) harness.Metrics {
	t.Helper()
	return harness.Scrape(t, fmt.Sprintf("127.0.0.1:%d", env.router.healthPort))
}

func waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return scrape(t)[name] == want, nil
	})
	if err != nil {
		t.Fatalf("%s never reached %v (now %v)", name, want, scrape(t)[name])
	}
}

// waitEvent waits for an Event on the policy ConfigMap.
func waitEvent(t *testing.T, reason, text string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Cluster.Client.CoreV1().Events(routerNamespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + policyConfigMap})
		if err != nil {
			return false, nil
		}
		seen = seen[:0]
		for _, e := range list.Items {
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, text) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no %s event mentioning %q; events: %q", reason, text, seen)
	}
}
