package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// The product's promise, checked pod by pod: in a namespace the router
// manages, a pod that did not opt out is injected by a live Istio revision
// or refused with a message, never admitted without a sidecar.

// outcome classifies one pod creation.
type outcome string

const (
	outInjected  outcome = "injected"
	outRefused   outcome = "refused"
	outOptedOut  outcome = "opted-out"
	outUnmanaged outcome = "unmanaged" // a namespace with no Istio or router label
	outUnmeshed  outcome = "UNMESHED"
)

// Revisions of the matrix beside the policy's targets (stable, canary):
// one still live but no longer routed to (being retired, its pinned pods
// not migrated yet), one whose injector config is still installed but
// whose istiod is gone, and one removed entirely (the end of an upgrade).
const (
	revRetired = "old"
	revDown    = "down"
	revMissing = "gone"
)

// variant is a set of labels (and annotations) a namespace or pod starts
// with.
type variant struct {
	name        string
	labels      map[string]string
	annotations map[string]string
}

var (
	namespaceVariants = []variant{
		{name: "none"},
		{name: "istio-injection", labels: map[string]string{"istio-injection": "enabled"}},
		{name: "opt-in", labels: map[string]string{"canary-router.io/injection": "enabled"}},
		{name: "pinned", labels: map[string]string{"istio.io/rev": "canary"}},
	}
	podVariants = []variant{
		{name: "none"},
		{name: "pinned", labels: map[string]string{"istio.io/rev": "canary"}},
		{name: "pinned-retired", labels: map[string]string{"istio.io/rev": revRetired}},
		{name: "pinned-down", labels: map[string]string{"istio.io/rev": revDown}},
		{name: "pinned-missing", labels: map[string]string{"istio.io/rev": revMissing}},
		{name: "opted-out", labels: map[string]string{"sidecar.istio.io/inject": "false"}},
		{name: "inject-true", labels: map[string]string{"sidecar.istio.io/inject": "true"}},
		{name: "gateway", annotations: map[string]string{"inject.istio.io/templates": "gateway"}},
	}
	// liveRevisions may inject a pod; routedRevisions are the policy's.
	liveRevisions   = []string{"stable", "canary", revRetired}
	routedRevisions = []string{"stable", "canary"}
)

// tryPod creates a pod and classifies what happened to it.
func tryPod(t *testing.T, ns string, nsv, pv variant, name string) result {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: pv.labels, Annotations: pv.annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	out, err := env.Cluster.Client.CoreV1().Pods(ns).Create(harness.Context(t, 30*time.Second), p, metav1.CreateOptions{})
	if err != nil {
		r := result{out: outRefused, msg: err.Error()}
		if st, ok := err.(apierrors.APIStatus); ok {
			r.code = st.Status().Code
		}
		if strings.TrimSpace(r.msg) == "" {
			t.Errorf("%s/%s refused without a message", ns, name)
		}
		return r
	}
	r := result{label: out.Labels["istio.io/rev"]}
	if r.rev = fakeistio.InjectedRevision(out); r.rev != "" {
		r.out = outInjected
		return r
	}
	switch {
	case pv.labels["sidecar.istio.io/inject"] == "false":
		r.out = outOptedOut
	case nsv.name == "none":
		// Neither the router nor Istio was given the namespace: without a
		// default revision Istio injects nothing there, router or not.
		r.out = outUnmanaged
	default:
		r.out = outUnmeshed
	}
	return r
}

// setDefaultTag adds or removes Istio's `default` revision tag (on
// stable), as `istioctl tag set default` and `istioctl tag remove` do.
func setDefaultTag(t *testing.T, present bool) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	mwcs := env.Cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := mwcs.Delete(ctx, "istio-revision-tag-default", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if present {
		if _, err := mwcs.Create(ctx, fakeistio.InjectorConfig(env.injectors.URL, env.Cluster.CA.CertPEM, "stable", "default"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// addMatrixRevisions installs the retired revision (config and ready
// istiod) and the down one (config, an istiod that is not ready, and an
// injector that drops connections), and removes both when t ends.
func addMatrixRevisions(t *testing.T) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	c := env.Cluster.Client
	mwcs := c.AdmissionregistrationV1().MutatingWebhookConfigurations()
	for _, rev := range []string{revRetired, revDown} {
		if _, err := mwcs.Create(ctx, fakeistio.InjectorConfig(env.injectors.URL, env.Cluster.CA.CertPEM, rev, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := fakeistio.RegisterIstiod(ctx, c, rev); err != nil {
			t.Fatal(err)
		}
	}
	if err := fakeistio.SetIstiodReady(ctx, c, revDown, false); err != nil {
		t.Fatal(err)
	}
	env.injectors.Kill(revDown)
	t.Cleanup(func() {
		ctx := harness.Context(t, 30*time.Second)
		env.injectors.Revive(revDown)
		for _, rev := range []string{revRetired, revDown} {
			name := fakeistio.InjectorConfig("", nil, rev, "").Name
			if err := mwcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
			svc := fakeistio.ServiceName(rev)
			if err := c.DiscoveryV1().EndpointSlices(fakeistio.Namespace).Delete(ctx, svc+"-stand-in", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
			if err := c.CoreV1().Services(fakeistio.Namespace).Delete(ctx, svc, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})
}

// waitAPIServerIstio waits until kube-apiserver calls the Istio webhooks
// the matrix expects (it picks configurations up from its own informer, a
// moment after they change): in the unmanaged namespace ns, a dry-run pod
// pinned to the retired revision is injected by it, one pinned to the
// down revision is refused by its webhook, and one labelled
// sidecar.istio.io/inject=true is injected exactly when the default tag
// is present.
func waitAPIServerIstio(t *testing.T, ns string, tag bool) {
	t.Helper()
	dryRun := func(ctx context.Context, labels map[string]string) (*corev1.Pod, error) {
		p := harness.Pod("probe")
		p.Labels = labels
		return env.Cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	}
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		retired, err := dryRun(ctx, map[string]string{"istio.io/rev": revRetired})
		if err != nil || fakeistio.InjectedRevision(retired) != revRetired {
			last = fmt.Sprintf("pinned to %s: %v", revRetired, err)
			return false, nil
		}
		if _, err := dryRun(ctx, map[string]string{"istio.io/rev": revDown}); err == nil || !strings.Contains(err.Error(), istioUnreachable) {
			last = fmt.Sprintf("pinned to %s: %v", revDown, err)
			return false, nil
		}
		withTag, err := dryRun(ctx, map[string]string{"sidecar.istio.io/inject": "true"})
		if err != nil || (fakeistio.InjectedRevision(withTag) == "stable") != tag {
			last = fmt.Sprintf("inject=true with default tag %v: %v", tag, err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("kube-apiserver did not settle on the matrix's Istio webhooks within 20s: %s", last)
	}
}

// waitNamespace waits until a namespace's labels satisfy ok, and returns
// how long that took.
func waitNamespace(t *testing.T, name string, timeout time.Duration, ok func(map[string]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last map[string]string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ns, err := env.Cluster.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = ns.Labels
		return ok(ns.Labels), nil
	})
	if err != nil {
		t.Fatalf("namespace %s: labels %v never settled within %s", name, last, timeout)
	}
	return time.Since(start)
}

// settledRev waits for a namespace's routing and returns its istio.io/rev.
func settledRev(t *testing.T, name, granularity string, timeout time.Duration) (string, time.Duration) {
	t.Helper()
	took := waitNamespace(t, name, timeout, routedNamespace(granularity))
	ns, err := env.Cluster.Client.CoreV1().Namespaces().Get(harness.Context(t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Labels["istio.io/rev"], took
}

// routedNamespace: the namespace carries no label that would keep it from
// its routing (granularity namespace: an istio.io/rev; otherwise none of
// Istio's labels left to convert).
func routedNamespace(granularity string) func(map[string]string) bool {
	return func(l map[string]string) bool {
		if l["istio-injection"] == "enabled" {
			return false
		}
		if granularity == "namespace" && l["canary-router.io/injection"] == "enabled" {
			return l["istio.io/rev"] != ""
		}
		return true
	}
}

// TestNeverUnmeshedMatrix creates one pod per namespace labels x pod
// labels x `default` tag present or absent x granularity with the router
// up, then the same with the router down and recovering, and checks every
// pod against the outcome its cell must have (expect): injected by which
// revision, refused with which status and message, opted out, or in a
// namespace nobody manages. Pods pinned to a live revision the policy no
// longer routes to, to a revision whose istiod is gone and to one removed
// entirely are among them. Admitted without a sidecar: 0; refused where a
// live revision would inject: 0.
func TestNeverUnmeshedMatrix(t *testing.T) {
	t.Cleanup(func() { setDefaultTag(t, true) })
	addMatrixRevisions(t)
	env.CreateNamespace(t, "mx-probe", nil)
	env.WaitServiceAccount(t, "mx-probe")
	var all tally
	for _, tag := range []bool{true, false} {
		setDefaultTag(t, tag)
		waitAPIServerIstio(t, "mx-probe", tag)
		tagName := map[bool]string{true: "tag", false: "notag"}[tag]
		for _, gran := range []string{"namespace", "workload", "pod"} {
			usePolicy(t, policyYAML(gran, 50, 50))
			var ty tally
			for _, nsv := range namespaceVariants {
				ns := fmt.Sprintf("mx-%s-%s-%s", tagName, gran[:2], nsv.name)
				env.CreateNamespace(t, ns, nsv.labels)
				nsRev, _ := settledRev(t, ns, gran, 15*time.Second)
				env.WaitServiceAccount(t, ns)
				for _, pv := range podVariants {
					ty.add(tryPod(t, ns, nsv, pv, "p-"+pv.name), expect(tag, nsv, nsRev, pv, true), ns+"/"+pv.name)
				}
			}
			t.Logf("RESULT matrix router=up default_tag=%v granularity=%s pods=%d injected=%d refused=%d opted_out=%d unmanaged=%d unmeshed=%d missed=%d",
				tag, gran, len(namespaceVariants)*len(podVariants), ty.counts[outInjected], ty.counts[outRefused], ty.counts[outOptedOut],
				ty.counts[outUnmanaged], ty.counts[outUnmeshed], len(ty.missed))
			all.merge(ty)
		}
	}

	// Router down, then recovering, on a tagless install (the harsh case):
	// namespaces created meanwhile are missed by the namespace webhook
	// (it fails open), pods in opted-in ones are refused by the pod
	// webhook (it fails closed; opted-out pods never reach it), and once
	// the router runs again the reconciler routes what it missed.
	setDefaultTag(t, false)
	waitAPIServerIstio(t, "mx-probe", false)
	optIn := namespaceVariants[2]
	for _, gran := range []string{"namespace", "workload"} {
		usePolicy(t, policyYAML(gran, 50, 50))
		env.router.stop()
		ns := "mx-down-" + gran[:2]
		env.CreateNamespace(t, ns, optIn.labels)
		env.WaitServiceAccount(t, ns)
		var ty tally
		for _, pv := range podVariants {
			ty.add(tryPod(t, ns, optIn, pv, "down-"+pv.name), expect(false, optIn, "", pv, false), ns+"/down-"+pv.name)
		}
		if err := env.router.start(harness.Context(t, time.Minute), policyYAML(gran, 50, 50)); err != nil {
			t.Fatal(err)
		}
		nsRev, took := settledRev(t, ns, gran, 20*time.Second)
		for _, pv := range podVariants {
			ty.add(tryPod(t, ns, optIn, pv, "after-"+pv.name), expect(false, optIn, nsRev, pv, true), ns+"/after-"+pv.name)
		}
		t.Logf("RESULT matrix router=down-then-recovered default_tag=false granularity=%s namespace_routed_after=%s pods=%d injected=%d refused=%d opted_out=%d unmeshed=%d missed=%d",
			gran, took.Round(time.Millisecond), 2*len(podVariants), ty.counts[outInjected], ty.counts[outRefused], ty.counts[outOptedOut],
			ty.counts[outUnmeshed], len(ty.missed))
		all.merge(ty)
	}
	t.Logf("RESULT matrix total injected=%d refused=%d opted_out=%d unmanaged=%d admitted_without_sidecar=%d cells_not_as_expected=%d",
		all.counts[outInjected], all.counts[outRefused], all.counts[outOptedOut], all.counts[outUnmanaged], all.counts[outUnmeshed], len(all.missed))
	for _, m := range all.missed {
		t.Error(m)
	}
}

// TestMissedNamespaceRouted: a namespace opted in while the router was
// down, in namespace granularity, is routed within seconds of the router
// running again; its pods are refused until then, never admitted without a
// sidecar. The same for a namespace labelled istio-injection=enabled that
// the webhook never converted.
func TestMissedNamespaceRouted(t *testing.T) {
	usePolicy(t, policyYAML("namespace", 50, 50))
	env.router.stop()
	env.CreateNamespace(t, "missed-optin", map[string]string{"canary-router.io/injection": "enabled"})
	env.CreateNamespace(t, "missed-legacy", map[string]string{"istio-injection": "enabled"})
	env.WaitServiceAccount(t, "missed-optin")
	if _, err := env.Cluster.Client.CoreV1().Pods("missed-optin").Create(harness.Context(t, 30*time.Second), harness.Pod("while-down"), metav1.CreateOptions{}); err == nil {
		t.Error("a pod in an opted-in, unrouted namespace was admitted while the router was down")
	}
	start := time.Now()
	if err := env.router.start(harness.Context(t, time.Minute), policyYAML("namespace", 50, 50)); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"missed-optin", "missed-legacy"} {
		waitNamespace(t, ns, 20*time.Second, routedNamespace("namespace"))
		t.Logf("RESULT missed namespace %s routed %s after the router was started", ns, time.Since(start).Round(time.Millisecond))
		got, err := env.Cluster.Client.CoreV1().Namespaces().Get(harness.Context(t, 10*time.Second), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d, ok := harness.DecisionOf(t, got.ObjectMeta)
		if rev := got.Labels["istio.io/rev"]; !ok || d.Revision != rev || !slices.Contains(routedRevisions, rev) {
			t.Errorf("%s: labels %v decision %+v, want a live revision recorded in the decision", ns, got.Labels, d)
		}
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("missed namespaces routed only after %s", time.Since(start))
	}
	env.WaitServiceAccount(t, "missed-legacy")
	for _, ns := range []string{"missed-optin", "missed-legacy"} {
		p, err := env.Cluster.Client.CoreV1().Pods(ns).Create(harness.Context(t, 30*time.Second), harness.Pod("after"), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: pod refused after the namespace was routed: %v", ns, err)
		}
		if rev := fakeistio.InjectedRevision(p); !slices.Contains(routedRevisions, rev) {
			t.Errorf("%s: pod injected by %q", ns, rev)
		}
	}
}
