package observability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Workload helpers, copied down from test/e2e until they move to a shared
// package.

func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	if _, err := env.cluster.Client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager creates a moment later.
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := env.cluster.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", name, err)
	}
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

// barePod is a pod without a controller, with the given labels.
func barePod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
}

// rollOut creates d and waits until its replicas are the only live pods
// of the Deployment.
func rollOut(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if _, err := env.cluster.Client.AppsV1().Deployments(d.Namespace).Create(ctxT(t, 30*time.Second), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	livePods(t, d.Namespace, "app="+d.Name, int(*d.Spec.Replicas))
}

// restart runs `kubectl rollout restart` and waits until the new
// ReplicaSet's pods are the only live ones.
func restart(t *testing.T, ns, name string, replicas int) {
	t.Helper()
	ctx := ctxT(t, 3*time.Minute)
	// kubectl refuses a second restart within the same second.
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		out, err := env.cluster.Kubectl(ctx, "-n", ns, "rollout", "restart", "deployment/"+name)
		if err != nil && strings.Contains(string(out), "within the past second") {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w\n%s", err, out)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := env.cluster.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=150s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	livePods(t, ns, "app="+name, replicas)
}

// livePods waits until the pods matching selector are exactly want pods
// that are not terminating, all of one pod template, and returns them.
func livePods(t *testing.T, ns, selector string, want int) []corev1.Pod {
	t.Helper()
	var live []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := env.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		live = live[:0]
		hashes := map[string]int{}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				live = append(live, p)
				hashes[p.Labels["pod-template-hash"]]++
			}
		}
		last = fmt.Sprintf("%d live pods, by template hash %v", len(live), hashes)
		return len(live) == want && len(hashes) == 1, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: never %d live pods of one template: %s", ns, selector, want, last)
	}
	return live
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
