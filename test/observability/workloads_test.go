package observability

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/canary-router/canary-router/test/harness"
)

// createNamespace creates a namespace and waits for its default
// ServiceAccount, which pods need.
func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	env.CreateNamespace(t, name, labels)
	env.WaitServiceAccount(t, name)
}

// barePod is a pod without a controller, with the given labels.
func barePod(ns, name string, labels map[string]string) *corev1.Pod {
	p := harness.Pod(name)
	p.Namespace, p.Labels = ns, labels
	return p
}

// rollOut creates d and waits until its replicas are the only live pods
// of the Deployment.
func rollOut(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	env.CreateDeployment(t, d)
	env.LivePods(t, d.Namespace, "app="+d.Name, int(*d.Spec.Replicas))
}

// restart runs `kubectl rollout restart` and waits until the new
// ReplicaSet's pods are the only live ones.
func restart(t *testing.T, ns, name string, replicas int) {
	t.Helper()
	env.RolloutRestart(t, ns, name)
	env.LivePods(t, ns, "app="+name, replicas)
}

// revisions counts pods by routed (label) and injected (annotation)
// revision, as the test sees them through the API.
func revisions(pods []corev1.Pod) (routed, injected map[string]int) {
	routed, injected = map[string]int{}, map[string]int{}
	for _, p := range pods {
		routed[p.Labels["istio.io/rev"]]++
		injected[p.Annotations["istio.io/rev"]]++
	}
	return routed, injected
}
