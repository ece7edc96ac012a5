package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// checkToken shows the limits of the ServiceAccount's token directly:
// reads and writes outside the router's own objects are refused.
func checkToken(t *testing.T, ctx context.Context, token, certMode string) {
	cfg := &rest.Config{Host: env.Cluster.Config.Host, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Cluster.CA.CertPEM}}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: got %v, want Forbidden", what, routerUser, err)
		}
	}
	_, err = sa.CoreV1().Secrets(routerNamespace).List(ctx, metav1.ListOptions{})
	forbidden("list secrets", err)
	_, err = sa.CoreV1().Secrets("kube-system").Get(ctx, "anything", metav1.GetOptions{})
	forbidden("get a Secret in kube-system", err)
	_, err = sa.CoreV1().ConfigMaps(routerNamespace).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	forbidden("get another ConfigMap", err)
	_, err = sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, "istio-sidecar-injector",
		types.JSONPatchType, []byte(`[{"op":"test","path":"/metadata/name","value":"istio-sidecar-injector"}]`), metav1.PatchOptions{})
	forbidden("patch Istio's injector config", err)
	err = sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhookConfigName, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	forbidden("delete its own webhook config", err)
	_, err = sa.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	forbidden("create a pod", err)

	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-the-ca", Namespace: routerNamespace}}
	createOther := func() error {
		_, err := sa.CoreV1().Secrets(routerNamespace).Create(ctx, other, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	if certMode != certSelfManaged {
		forbidden("create a Secret", createOther())
		return
	}
	// RBAC allows create (it cannot name the object); the
	// ValidatingAdmissionPolicy allows only the CA Secret. The apiserver
	// loads a new policy asynchronously, so give it a moment.
	start := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		err = createOther()
		return err != nil && strings.Contains(err.Error(), "may create only its CA Secret"), nil
	})
	if err != nil {
		t.Errorf("creating Secret not-the-ca as %s: got %v, want the ValidatingAdmissionPolicy's refusal", routerUser, createOther())
		return
	}
	t.Logf("RESULT Secret not-the-ca refused by the ValidatingAdmissionPolicy (enforced %s after the check began): %v",
		time.Since(start).Round(10*time.Millisecond), createOther())
}

// checkWorkloadRouting is the core scenario in pod/workload granularity:
// a namespace opted in the way operators do today (istio-injection), a
// Deployment, and every pod routed by the router and injected by the
// revision it chose.
func checkWorkloadRouting(t *testing.T, ctx context.Context, r *router, ns string) {
	before := r.metric(t, "canary_router_decisions_total", `resource="pods"`)
	created := env.CreateNamespace(t, ns, map[string]string{"istio-injection": "enabled"})
	if _, ok := created.Labels["istio-injection"]; ok || created.Labels["canary-router.io/injection"] != "enabled" {
		t.Fatalf("namespace %s not converted to the router's opt-in label: %v", ns, created.Labels)
	}
	if _, ok := harness.DecisionOf(t, created.ObjectMeta); !ok {
		t.Errorf("namespace %s has no decision annotation", ns)
	}
	env.WaitServiceAccount(t, ns)

	const replicas = 3
	env.CreateDeployment(t, harness.Deployment(ns, "web", replicas))
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		return len(pods) == replicas, nil
	})
	if err != nil {
		events, _ := env.Cluster.Kubectl(ctx, "get", "events", "-n", ns)
		t.Fatalf("%d of %d pods created: %v\n%s", len(pods), replicas, err, events)
	}
	for i := range pods {
		p := &pods[i]
		dec, ok := harness.DecisionOf(t, p.ObjectMeta)
		switch {
		case !ok:
			t.Errorf("pod %s: no decision annotation", p.Name)
		case p.Labels["istio.io/rev"] != revision || dec.Revision != revision || dec.Reason != "sticky" || dec.Unit != "Deployment/web":
			t.Errorf("pod %s: label istio.io/rev=%q, decision %+v; want %q, sticky, Deployment/web", p.Name, p.Labels["istio.io/rev"], dec, revision)
		case fakeistio.InjectedRevision(p) != revision:
			t.Errorf("pod %s: injected by %q, routed to %q", p.Name, fakeistio.InjectedRevision(p), revision)
		}
	}
	if after := r.metric(t, "canary_router_decisions_total", `resource="pods"`); after-before != replicas {
		t.Errorf("router counted %v pod decisions, want %d", after-before, replicas)
	}
	t.Logf("RESULT %d/%d pods of Deployment %s/web routed to %q by the router and injected by that revision", len(pods), replicas, ns, revision)
}

// checkMatchConditions shows the CEL match conditions at work: pods the
// router would leave alone are admitted without the apiserver calling it,
// and a pod without labels or annotations (no maps for CEL at all) still
// reaches it, as do pinned pods: admitted untouched when their revision is
// live, refused with the revision named when it is not.
func checkMatchConditions(t *testing.T, ctx context.Context, r *router, ns string) {
	requests := func() float64 {
		return r.metric(t, "controller_runtime_webhook_requests_total", `webhook="/mutate-pods"`)
	}
	decisions := func() float64 { return r.metric(t, "canary_router_decisions_total", `resource="pods"`) }
	excluded := func() float64 {
		return apiserverMetric(t, ctx, "apiserver_admission_match_condition_exclusions_total", `name="pods.canary-router.io"`)
	}
	req0, dec0, excl0 := requests(), decisions(), excluded()
	skipped := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		node        string
	}{
		{name: "opted-out-label", labels: map[string]string{"sidecar.istio.io/inject": "false"}},
		{name: "opted-out-annotation", annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
		// The apiserver insists that a mirror pod names its node.
		{name: "mirror", annotations: map[string]string{"kubernetes.io/config.mirror": "static"}, node: cluster.FakeNodeName},
	}
	for _, s := range skipped {
		p := createPod(t, ns, s.name, s.labels, s.annotations, s.node)
		if _, ok := harness.DecisionOf(t, p.ObjectMeta); ok {
			t.Errorf("pod %s reached the router (decision %s)", s.name, p.Annotations["canary-router.io/decision"])
		}
	}
	req1, dec1, excl1 := requests(), decisions(), excluded()
	t.Logf("RESULT %d skippable pods created: router /mutate-pods requests %v -> %v, decisions %v -> %v, apiserver match-condition exclusions %v -> %v",
		len(skipped), req0, req1, dec0, dec1, excl0, excl1)
	if req1 != req0 || dec1 != dec0 {
		t.Errorf("the router was called for pods its match conditions skip: requests %v -> %v, decisions %v -> %v", req0, req1, dec0, dec1)
	}
	// At least one exclusion per pod. A pod another webhook changed
	// (Istio injects the pinned one) triggers the apiserver's
	// reinvocation pass, which evaluates the conditions again and counts
	// again, although reinvocationPolicy Never keeps the router out of it.
	if excl1-excl0 < float64(len(skipped)) {
		t.Errorf("apiserver excluded %v requests by match conditions, want at least %d", excl1-excl0, len(skipped))
	}

	bare := createPod(t, ns, "bare", nil, nil, "")
	if dec, ok := harness.DecisionOf(t, bare.ObjectMeta); !ok || dec.Revision != revision || fakeistio.InjectedRevision(bare) != revision {
		t.Errorf("pod without labels or annotations: decision %+v (present %v), injected by %q; want routed to and injected by %q",
			dec, ok, fakeistio.InjectedRevision(bare), revision)
	}
	req2 := requests()
	if req2 != req1+1 {
		t.Errorf("router /mutate-pods requests %v -> %v for one pod without labels, want +1", req1, req2)
	}

	pinned := createPod(t, ns, "pinned", map[string]string{"istio.io/rev": revision}, nil, "")
	if _, ok := harness.DecisionOf(t, pinned.ObjectMeta); ok || fakeistio.InjectedRevision(pinned) != revision {
		t.Errorf("pod pinned to %s: decision %q, injected by %q; want it untouched by the router and injected by its revision",
			revision, pinned.Annotations["canary-router.io/decision"], fakeistio.InjectedRevision(pinned))
	}
	typo := harness.Pod("pinned-typo")
	typo.Labels = map[string]string{"istio.io/rev": "stabel"}
	_, err := env.Cluster.Client.CoreV1().Pods(ns).Create(ctx, typo, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `pinned to revision "stabel"`) {
		t.Errorf("pod pinned to a revision that does not exist: %v, want refused naming the revision", err)
	}
	if req3 := requests(); req3 != req2+2 {
		t.Errorf("router /mutate-pods requests %v -> %v for two pinned pods, want +2", req2, req3)
	}
	t.Logf("RESULT pinned pods reach the router: pinned to %s injected by %q; pinned to stabel refused: %v", revision, fakeistio.InjectedRevision(pinned), err)
}

// checkNamespaceRouting is the core scenario in namespace granularity:
// the namespace gets the chosen revision, Istio's namespace webhook
// injects its pods, and the router never sees a pod.
func checkNamespaceRouting(t *testing.T, ctx context.Context, r *router, ns string) {
	created := env.CreateNamespace(t, ns, map[string]string{"istio-injection": "enabled"})
	dec, ok := harness.DecisionOf(t, created.ObjectMeta)
	if _, stays := created.Labels["istio-injection"]; stays || created.Labels["istio.io/rev"] != revision || !ok || dec.Revision != revision {
		t.Fatalf("namespace %s: labels %v, decision %+v (present %v); want istio.io/rev=%s instead of istio-injection", ns, created.Labels, dec, ok, revision)
	}
	env.WaitServiceAccount(t, ns)
	p := createPod(t, ns, "app", nil, nil, "")
	if got := fakeistio.InjectedRevision(p); got != revision {
		t.Errorf("pod in %s injected by %q, namespace routed to %q", ns, got, revision)
	}
	if n := r.metric(t, "controller_runtime_webhook_requests_total", `webhook="/mutate-pods"`); n != 0 {
		t.Errorf("router called %v times for pods; namespace granularity registers no pod webhook", n)
	}
	t.Logf("RESULT namespace %s routed to %q (decision %+v); its pod injected by %q without calling the router", ns, revision, dec, fakeistio.InjectedRevision(p))
}

// checkPolicyWebhook shows the validating webhook refusing an invalid
// policy at `kubectl apply` time, and its match condition keeping the
// namespace's other ConfigMaps away from the router.
func checkPolicyWebhook(t *testing.T, ctx context.Context, r *router) {
	calls := func() float64 {
		return r.metric(t, "controller_runtime_webhook_requests_total", `webhook="/validate-policy"`)
	}
	c0 := calls()
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: routerNamespace}, Data: map[string]string{"a": "b"}}
	if _, err := env.Cluster.Client.CoreV1().ConfigMaps(routerNamespace).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c1 := calls(); c1 != c0 {
		t.Errorf("an unrelated ConfigMap reached /validate-policy (%v -> %v calls)", c0, c1)
	}

	bad := filepath.Join(t.TempDir(), "bad-policy.yaml")
	doc := `apiVersion: v1
kind: ConfigMap
metadata:
  name: canary-router-policy
  namespace: canary-router-system
data:
  policy.yaml: |
    granularity: workload
    targets:
      - revision: "default"
        weight: 90
`
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := env.Cluster.Kubectl(ctx, "apply", "-f", bad)
	if err == nil || !strings.Contains(string(out), "must sum to 100") {
		t.Errorf("kubectl apply of a policy whose weights sum to 90: err %v, output:\n%s\nwant a refusal naming the weights", err, out)
	} else {
		msg := strings.TrimSpace(string(out))
		if i := strings.Index(msg, "admission webhook"); i >= 0 {
			msg = msg[i:]
		}
		t.Logf("RESULT invalid policy refused at apply time: %s", msg)
	}
	if c2 := calls(); c2 <= c0 {
		t.Errorf("the policy ConfigMap did not reach /validate-policy (%v -> %v calls)", c0, c2)
	}
}

// createPod creates a bare pod with labels and annotations, on node when
// given.
func createPod(t *testing.T, ns, name string, labels, annotations map[string]string, node string) *corev1.Pod {
	t.Helper()
	p := harness.Pod(name)
	p.Labels, p.Annotations, p.Spec.NodeName = labels, annotations, node
	return env.CreatePod(t, ns, p)
}
