package harness

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

// pause is the image of every test pod: kwok never runs it.
const pause = "registry.k8s.io/pause:3.10"

// Pod is a bare pod with one container. A name ending in "-" is a
// GenerateName prefix.
func Pod(name string) *corev1.Pod {
	meta := metav1.ObjectMeta{Name: name}
	if strings.HasSuffix(name, "-") {
		meta = metav1.ObjectMeta{GenerateName: name}
	}
	return &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: pause}}}}
}

// Deployment is a Deployment of replicas bare pods labelled app=name.
func Deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: pause}}},
			},
		},
	}
}

// CreateNamespace creates namespace name with labels and returns it as
// admitted, the router's mutations included.
func (e *Env) CreateNamespace(t testing.TB, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ns, err := e.Cluster.Client.CoreV1().Namespaces().Create(Context(t, 30*time.Second),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return ns
}

// WaitServiceAccount waits up to 30 s for the namespace's default
// ServiceAccount: the ServiceAccount admission plugin refuses pods until
// the controller manager has created it.
func (e *Env) WaitServiceAccount(t testing.TB, ns string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := e.Cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", ns, err)
	}
}

// CreatePod creates p in ns and returns it as admitted.
func (e *Env) CreatePod(t testing.TB, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := e.Cluster.Client.CoreV1().Pods(ns).Create(Context(t, 30*time.Second), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s%s: %v", ns, p.Name, p.GenerateName, err)
	}
	return out
}

// CreateDeployment creates d without waiting for its pods.
func (e *Env) CreateDeployment(t testing.TB, d *appsv1.Deployment) {
	t.Helper()
	if _, err := e.Cluster.Client.AppsV1().Deployments(d.Namespace).Create(Context(t, 30*time.Second), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
}

// RollOut creates d and waits up to 3 minutes until all its replicas are
// available.
func (e *Env) RollOut(t testing.TB, d *appsv1.Deployment) {
	t.Helper()
	e.CreateDeployment(t, d)
	e.WaitAvailable(t, Context(t, 3*time.Minute), d.Namespace, d.Name, *d.Spec.Replicas)
}

// WaitAvailable waits until Deployment ns/name has rolled out replicas
// updated, ready and available replicas and no others.
func (e *Env) WaitAvailable(t testing.TB, ctx context.Context, ns, name string, replicas int32) {
	t.Helper()
	var last string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := e.Cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		s := d.Status
		last = fmt.Sprintf("updated %d ready %d available %d of %d", s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, replicas)
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == replicas &&
			s.ReadyReplicas == replicas && s.AvailableReplicas == replicas && s.Replicas == replicas, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s not available: %s (%v)", ns, name, last, err)
	}
}

// RolloutRestart runs `kubectl rollout restart` on Deployment ns/name and
// waits with `kubectl rollout status` for the rollout to finish.
func (e *Env) RolloutRestart(t testing.TB, ns, name string) {
	t.Helper()
	ctx := Context(t, 3*time.Minute)
	// kubectl stamps the restart with a time in whole seconds and refuses a
	// second one within the same second; rollouts here finish faster.
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		out, err := e.Cluster.Kubectl(ctx, "-n", ns, "rollout", "restart", "deployment/"+name)
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
	if out, err := e.Cluster.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=150s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// ListPods lists the pods in ns matching selector, terminating ones
// included.
func (e *Env) ListPods(t testing.TB, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := e.Cluster.Client.CoreV1().Pods(ns).List(Context(t, 30*time.Second), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("listing pods in %s: %v", ns, err)
	}
	return list.Items
}

// Live drops the terminating pods.
func Live(pods []corev1.Pod) []corev1.Pod {
	var live []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// LivePods waits up to 2 minutes until the pods matching selector in ns
// are exactly want pods that are not terminating and share one
// pod-template-hash (a finished rollout), and returns them.
func (e *Env) LivePods(t testing.TB, ns, selector string, want int) []corev1.Pod {
	t.Helper()
	var live []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := e.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		live = Live(list.Items)
		hashes := map[string]int{}
		for _, p := range live {
			hashes[p.Labels["pod-template-hash"]]++
		}
		last = fmt.Sprintf("%d live pods, by template hash %v", len(live), hashes)
		return len(live) == want && len(hashes) == 1, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: never %d live pods of one template: %s", ns, selector, want, last)
	}
	return live
}

// WaitLivePods waits until want live pods in ns match selector: the pods
// a controller has managed to create, ready or not. Readiness is kwok's
// to report and is no measure of admission; after a kube-apiserver
// restart kwok misses node heartbeats for about 50 s, the node lifecycle
// controller marks every pod not ready, and kwok never marks them ready
// again.
func (e *Env) WaitLivePods(t testing.TB, ns, selector string, want int, timeout time.Duration) {
	t.Helper()
	got := 0
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := e.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		got = len(Live(list.Items))
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: %d live pods, want %d; %s", ns, selector, got, want, e.ClusterState(ns))
	}
}

// Scale sets the replicas of Deployment ns/name.
func (e *Env) Scale(t testing.TB, ns, name string, replicas int32) {
	t.Helper()
	ctx := Context(t, 30*time.Second)
	deps := e.Cluster.Client.AppsV1().Deployments(ns)
	s, err := deps.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := deps.UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ClusterState describes the pods of ns and the nodes, for a failure
// message.
func (e *Env) ClusterState(ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	phases := map[string]int{}
	if pods, err := e.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			ready := "not ready"
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready = "ready"
				}
			}
			phases[string(p.Status.Phase)+"/"+ready]++
		}
	}
	var nodes []string
	if list, err := e.Cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range list.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					nodes = append(nodes, fmt.Sprintf("%s Ready=%s (%s) taints %v", n.Name, c.Status, c.Reason, n.Spec.Taints))
				}
			}
		}
	}
	return fmt.Sprintf("pods in %s by phase/readiness %v; nodes %v", ns, phases, nodes)
}
