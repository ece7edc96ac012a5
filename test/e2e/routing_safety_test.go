package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// warnedClient returns a client whose API warnings the test can read.
func warnedClient(t *testing.T) (kubernetes.Interface, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Cluster.Config)
	cfg.WarningHandler = w
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// TestHealthGate: a target whose istiod has no ready endpoints gets no
// pods; they go to the healthy target with a warning. With no healthy
// target, pods are refused, never admitted without a sidecar.
func TestHealthGate(t *testing.T) {
	usePolicy(t, policyYAML("pod", 0, 100)) // every pod wants canary
	managedNamespace(t, "gate")
	env.WaitServiceAccount(t, "gate")
	const fallbacks = `canary_router_fallbacks_total{cause="not-ready",revision="canary"}`
	before := scrape(t)[fallbacks]

	istiodReady(t, "canary", false)
	waitRouted(t, "gate", "istiod-canary not ready", func(d harness.Decision, err error) bool { return err == nil && d.Revision == "stable" })

	t.Run("canary not ready: pods go to stable, with a warning", func(t *testing.T) {
		client, w := warnedClient(t)
		p, err := client.CoreV1().Pods("gate").Create(harness.Context(t, 30*time.Second), harness.Pod("fallback-probe"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := harness.DecisionOf(t, p.ObjectMeta)
		if p.Labels["istio.io/rev"] != "stable" || fakeistio.InjectedRevision(p) != "stable" || d.Reason != "fallback" || d.Avoided != "canary" || d.Cause != "not-ready" {
			t.Errorf("pod label %q injected by %q decision %+v, want a fallback from canary to stable", p.Labels["istio.io/rev"], fakeistio.InjectedRevision(p), d)
		}
		if !w.mention("instead of canary") || !w.mention("istiod-canary in istio-system has no ready endpoints") {
			t.Errorf("warnings %q do not name canary and its cause", w.seen)
		}
		env.RollOut(t, harness.Deployment("gate", "web", 10))
		pods := env.ListPods(t, "gate", "app=web")
		perRevision, mismatches := harness.RoutedPods(t, pods)
		for _, p := range pods {
			if d, _ := harness.DecisionOf(t, p.ObjectMeta); d.Reason != "fallback" || d.Avoided != "canary" {
				t.Errorf("pod %s: decision %+v, want a fallback from canary", p.Name, d)
			}
		}
		report(t, "canary istiod not ready, policy 100% canary: pods go to stable", 0, perRevision["canary"], len(pods), mismatches)
		if perRevision["stable"] != 10 || mismatches != 0 {
			t.Errorf("pods per revision %v, %d mismatches; want all 10 on stable", perRevision, mismatches)
		}
		if got := scrape(t)[fallbacks] - before; got < 11 {
			t.Errorf("%s rose by %v, want at least 11", fallbacks, got)
		}
	})

	t.Run("no healthy target: creation refused", func(t *testing.T) {
		istiodReady(t, "stable", false)
		waitRouted(t, "gate", "istiod-stable not ready", func(_ harness.Decision, err error) bool {
			return err != nil && strings.Contains(err.Error(), "no routing target")
		})
		_, err := env.Cluster.Client.CoreV1().Pods("gate").Create(harness.Context(t, 30*time.Second), harness.Pod("refused"), metav1.CreateOptions{})
		if err == nil {
			t.Fatal("pod admitted with no healthy target")
		}
		for _, want := range []string{"no routing target is available", "rather than admitted without a sidecar",
			"stable (not-ready)", "canary (not-ready)", "istiod-stable", "istiod-canary"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not mention %q", err, want)
			}
		}
		t.Logf("refusal seen by the user: %v", err)
		ctx := harness.Context(t, 3*time.Minute)
		d := harness.Deployment("gate", "blocked", 3)
		if _, err := env.Cluster.Client.AppsV1().Deployments("gate").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if pods := env.ListPods(t, "gate", "app=blocked"); len(pods) != 0 {
			t.Errorf("%d pods admitted with no healthy target", len(pods))
		}
		unmeshed := 0
		for _, p := range env.ListPods(t, "gate", "") {
			if fakeistio.InjectedRevision(&p) == "" {
				unmeshed++
			}
		}
		t.Logf("RESULT scenario=%q refused_with_both_causes=%v blocked_deployment_pods=0 unmeshed_pods_in_namespace=%d",
			"no healthy target: pod creation refused", err != nil, unmeshed)
		if unmeshed != 0 {
			t.Errorf("%d pods without a sidecar", unmeshed)
		}

		// Once stable recovers, the ReplicaSet's retries go through.
		if err := fakeistio.SetIstiodReady(ctx, env.Cluster.Client, "stable", true); err != nil {
			t.Fatal(err)
		}
		env.WaitAvailable(t, ctx, "gate", "blocked", 3)
		perRevision, mismatches := harness.RoutedPods(t, env.ListPods(t, "gate", "app=blocked"))
		if perRevision["stable"] != 3 || mismatches != 0 {
			t.Errorf("after recovery: pods per revision %v, %d mismatches; want 3 on stable", perRevision, mismatches)
		}
	})
}

// setTag points revision tag tag at rev the way `istioctl tag set` does
// when the tag exists: the tag's config is replaced.
func setTag(t *testing.T, tag, rev string) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	mwcs := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	name := "istio-revision-tag-" + tag
	if err := mwcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := mwcs.Create(ctx, fakeistio.InjectorConfig(env.injectors.URL, env.Cluster.CA.CertPEM, rev, tag), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// TestRevisionTagMoved: a policy that targets tag prod follows the tag
// when it moves from stable to canary.
func TestRevisionTagMoved(t *testing.T) {
	setTag(t, "prod", "stable")
	usePolicy(t, "granularity: workload\nseed: tags\ntargets:\n  - revision: prod\n    weight: 100\n")
	managedNamespace(t, "tags")
	env.WaitServiceAccount(t, "tags")
	env.RollOut(t, harness.Deployment("tags", "web", 4))

	check := func(round, want string) {
		t.Helper()
		pods := env.LivePods(t, "tags", "app=web", 4)
		mismatches := 0
		for _, p := range pods {
			d, _ := harness.DecisionOf(t, p.ObjectMeta)
			if p.Labels["istio.io/rev"] != "prod" || d.Revision != "prod" || d.TagRevision != want || fakeistio.InjectedRevision(&p) != d.TagRevision {
				mismatches++
				t.Errorf("%s: pod %s label %q decision %+v injected by %q, want tag prod injected by %s",
					round, p.Name, p.Labels["istio.io/rev"], d, fakeistio.InjectedRevision(&p), want)
			}
		}
		canary := 0
		if want == "canary" {
			canary = len(pods)
		}
		report(t, "revision tag prod on "+want+" ("+round+")", map[string]float64{"stable": 0, "canary": 1}[want], canary, len(pods), mismatches)
	}
	check("tag on stable", "stable")

	setTag(t, "prod", "canary")
	waitRouted(t, "tags", "tag prod moved to canary", func(d harness.Decision, err error) bool { return err == nil && d.TagRevision == "canary" })
	env.RolloutRestart(t, "tags", "web")
	check("tag moved to canary, rollout restart", "canary")
}

// TestWebhookOrderReported runs a second router whose config name sorts
// after Istio's injector configs and reads its report in /readyz, the
// metrics, the log and an admission warning.
func TestWebhookOrderReported(t *testing.T) {
	ctx := harness.Context(t, 3*time.Minute)
	if got := scrape(t)["canary_router_webhook_order_violations"]; got != 0 {
		t.Errorf("canary-router sorts first, but the shared router reports %v violations", got)
	}
	dir := t.TempDir()
	r, err := newRouter(env.router.bin, dir, env.Cluster.CA)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML("pod", 50, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.launch(ctx, "--policy-file", policyPath, "--webhook-config-name", "zz-canary-router"); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", r.healthPort, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const problem = "zz-canary-router sorts after Istio injector config istio-revision-tag-default, istio-sidecar-injector-canary, istio-sidecar-injector-stable"
	code, body := get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, "warning: webhook-order: MutatingWebhookConfiguration "+problem) {
		t.Errorf("/readyz: HTTP %d %q, want ready with the order warning", code, body)
	}
	t.Logf("/readyz of a misordered router:\n%s", body)
	waitGauge := func(want string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			_, m := get("/metrics")
			return strings.Contains(m, "\ncanary_router_webhook_order_violations "+want+"\n"), nil
		})
		if err != nil {
			t.Errorf("canary_router_webhook_order_violations never reached %s", want)
		}
	}
	waitGauge("3")

	resp := admitDirect(t, r, "order", harness.Pod("order-probe"))
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), problem) {
		t.Errorf("admission response allowed %v warnings %q, want the order warning", resp.Allowed, resp.Warnings)
	}

	// A new injector config that also sorts first is reported as it appears.
	mwcs := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	extra := fakeistio.InjectorConfig(env.injectors.URL, env.Cluster.CA.CertPEM, "stable", "order-check")
	if _, err := mwcs.Create(ctx, extra, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGauge("4")
	if err := mwcs.Delete(ctx, extra.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGauge("3")
	log, _ := os.ReadFile(r.logPath)
	if n := strings.Count(string(log), `"webhook order: MutatingWebhookConfiguration zz-canary-router`); n < 3 {
		t.Errorf("the log reports the order problem %d times, want at start and at each of 2 changes:\n%s", n, tail(log, 3000))
	}
	t.Logf("RESULT scenario=%q misordered_configs_reported=3 then 4 then 3 readyz_ready=%v", "webhook order self-check", code == http.StatusOK)
}

// admitDirect posts a pod CREATE review straight to router r and returns
// its response: r is not registered with the API server.
func admitDirect(t *testing.T, r *router, ns string, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	pod.Namespace = ns
	raw, _ := json.Marshal(pod)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "direct-1", Namespace: ns, Operation: admissionv1.Create,
			Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Object:   runtime.RawExtension{Raw: raw},
		},
	}
	body, _ := json.Marshal(review)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.Cluster.CA.CertPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post(r.url("/mutate-pods"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("router answered HTTP %d with no review: %v", resp.StatusCode, err)
	}
	return out.Response
}
