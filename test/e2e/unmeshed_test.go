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
		{name: "opted-out", labels: map[string]string{"sidecar.istio.io/inject": "false"}},
		{name: "inject-true", labels: map[string]string{"sidecar.istio.io/inject": "true"}},
		{name: "gateway", annotations: map[string]string{"inject.istio.io/templates": "gateway"}},
	}
	liveRevisions = []string{"stable", "canary"}
)

// tally counts outcomes and keeps the unmeshed pods' names.
type tally struct {
	counts   map[outcome]int
	unmeshed []string
}

func (ty *tally) add(o outcome, what string) {
	if ty.counts == nil {
		ty.counts = map[outcome]int{}
	}
	ty.counts[o]++
	if o == outUnmeshed {
		ty.unmeshed = append(ty.unmeshed, what)
	}
}

// tryPod creates a pod and classifies what happened to it.
func tryPod(t *testing.T, ns string, nsv, pv variant, name string) outcome {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: pv.labels, Annotations: pv.annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	out, err := env.Cluster.Client.CoreV1().Pods(ns).Create(harness.Context(t, 30*time.Second), p, metav1.CreateOptions{})
	switch {
	case err != nil && strings.TrimSpace(err.Error()) != "":
		return outRefused
	case err != nil:
		t.Errorf("%s/%s refused without a message", ns, name)
		return outRefused
	}
	if rev := fakeistio.InjectedRevision(out); rev != "" {
		if !slices.Contains(liveRevisions, rev) {
			t.Errorf("%s/%s injected by %q, not a live revision", ns, name, rev)
		}
		return outInjected
	}
	switch {
	case pv.labels["sidecar.istio.io/inject"] == "false":
		return outOptedOut
	case nsv.name == "none":
		// Neither the router nor Istio was given the namespace: without a
		// default revision Istio injects nothing there, router or not.
		return outUnmanaged
	}
	return outUnmeshed
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
// up, then the same with the router down and recovering, and classifies
// every pod: injected by a live revision, refused with a message, opted
// out, or in a namespace nobody manages. Admitted without a sidecar: 0.
func TestNeverUnmeshedMatrix(t *testing.T) {
	t.Cleanup(func() { setDefaultTag(t, true) })
	var all tally
	for _, tag := range []bool{true, false} {
		setDefaultTag(t, tag)
		tagName := map[bool]string{true: "tag", false: "notag"}[tag]
		for _, gran := range []string{"namespace", "workload", "pod"} {
			usePolicy(t, policyYAML(gran, 50, 50))
			var ty tally
			for _, nsv := range namespaceVariants {
				ns := fmt.Sprintf("mx-%s-%s-%s", tagName, gran[:2], nsv.name)
				env.CreateNamespace(t, ns, nsv.labels)
				waitNamespace(t, ns, 15*time.Second, routedNamespace(gran))
				env.WaitServiceAccount(t, ns)
				for _, pv := range podVariants {
					o := tryPod(t, ns, nsv, pv, "p-"+pv.name)
					ty.add(o, ns+"/"+pv.name)
					all.add(o, ns+"/"+pv.name)
				}
			}
			t.Logf("RESULT matrix router=up default_tag=%v granularity=%s pods=%d injected=%d refused=%d opted_out=%d unmanaged=%d unmeshed=%d %v",
				tag, gran, 20, ty.counts[outInjected], ty.counts[outRefused], ty.counts[outOptedOut], ty.counts[outUnmanaged], ty.counts[outUnmeshed], ty.unmeshed)
		}
	}

	// Router down, then recovering, on a tagless install (the harsh case):
	// namespaces created meanwhile are missed by the namespace webhook
	// (it fails open), pods in opted-in ones are refused by the pod
	// webhook (it fails closed), and once the router runs again the
	// reconciler routes what it missed.
	setDefaultTag(t, false)
	for _, gran := range []string{"namespace", "workload"} {
		usePolicy(t, policyYAML(gran, 50, 50))
		env.router.stop()
		ns := "mx-down-" + gran[:2]
		env.CreateNamespace(t, ns, map[string]string{"canary-router.io/injection": "enabled"})
		env.WaitServiceAccount(t, ns)
		var ty tally
		for _, pv := range podVariants {
			o := tryPod(t, ns, namespaceVariants[2], pv, "down-"+pv.name)
			ty.add(o, ns+"/down-"+pv.name)
			all.add(o, ns+"/down-"+pv.name)
		}
		if err := env.router.start(harness.Context(t, time.Minute), policyYAML(gran, 50, 50)); err != nil {
			t.Fatal(err)
		}
		took := waitNamespace(t, ns, 20*time.Second, routedNamespace(gran))
		for _, pv := range podVariants {
			o := tryPod(t, ns, namespaceVariants[2], pv, "after-"+pv.name)
			ty.add(o, ns+"/after-"+pv.name)
			all.add(o, ns+"/after-"+pv.name)
		}
		t.Logf("RESULT matrix router=down-then-recovered default_tag=false granularity=%s namespace_routed_after=%s pods=%d injected=%d refused=%d opted_out=%d unmeshed=%d %v",
			gran, took.Round(time.Millisecond), 10, ty.counts[outInjected], ty.counts[outRefused], ty.counts[outOptedOut], ty.counts[outUnmeshed], ty.unmeshed)
	}
	t.Logf("RESULT matrix total injected=%d refused=%d opted_out=%d unmanaged=%d admitted_without_sidecar=%d",
		all.counts[outInjected], all.counts[outRefused], all.counts[outOptedOut], all.counts[outUnmanaged], all.counts[outUnmeshed])
	if all.counts[outUnmeshed] != 0 {
		t.Errorf("pods admitted without a sidecar: %v", all.unmeshed)
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
		if rev := got.Labels["istio.io/rev"]; !ok || d.Revision != rev || !slices.Contains(liveRevisions, rev) {
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
		if rev := fakeistio.InjectedRevision(p); !slices.Contains(liveRevisions, rev) {
			t.Errorf("%s: pod injected by %q", ns, rev)
		}
	}
}
