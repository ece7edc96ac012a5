package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// decision is the router's canary-router.io/decision annotation.
type decision struct {
	Revision   string `json:"revision"`
	Reason     string `json:"reason"`
	Unit       string `json:"unit"`
	Generation int64  `json:"generation"`
	Policy     string `json:"policy"`
}

func decisionOf(t *testing.T, m metav1.ObjectMeta) (decision, bool) {
	t.Helper()
	raw, ok := m.Annotations["canary-router.io/decision"]
	if !ok {
		return decision{}, false
	}
	var d decision
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("%s: decision annotation %q is not JSON: %v", m.Name, raw, err)
	}
	return d, true
}

// routedPods checks every pod the router routed: the label it wrote, its
// decision annotation and the revision that really injected the pod must
// agree. It returns pods per injected revision and the mismatch count.
func routedPods(t *testing.T, pods []corev1.Pod) (perRevision map[string]int, mismatches int) {
	t.Helper()
	perRevision = map[string]int{}
	for i := range pods {
		p := &pods[i]
		d, ok := decisionOf(t, p.ObjectMeta)
		injected := fakeistio.InjectedRevision(p)
		switch {
		case !ok:
			t.Errorf("pod %s/%s has no routing decision (injected by %q)", p.Namespace, p.Name, injected)
			mismatches++
		case d.Revision != injected || p.Labels["istio.io/rev"] != d.Revision:
			t.Errorf("pod %s/%s: routed to %q (label %q) but injected by %q", p.Namespace, p.Name, d.Revision, p.Labels["istio.io/rev"], injected)
			mismatches++
		}
		perRevision[injected]++
	}
	return perRevision, mismatches
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func createNamespace(t *testing.T, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ns, err := env.cluster.Client.CoreV1().Namespaces().Create(ctxT(t, 30*time.Second),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return ns
}

// managedNamespace creates a namespace the way an operator opts one in
// today, with istio-injection=enabled, and checks the router converted it.
func managedNamespace(t *testing.T, name string) {
	t.Helper()
	ns := createNamespace(t, name, map[string]string{"istio-injection": "enabled"})
	if _, ok := ns.Labels["istio-injection"]; ok || ns.Labels["canary-router.io/injection"] != "enabled" {
		t.Fatalf("namespace %s not converted to the router's opt-in label: %v", name, ns.Labels)
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

// rollOut creates d and waits until all its replicas are ready.
func rollOut(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ctx := ctxT(t, 3*time.Minute)
	deps := env.cluster.Client.AppsV1().Deployments(d.Namespace)
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	waitAvailable(t, ctx, d.Namespace, d.Name, *d.Spec.Replicas)
}

func waitAvailable(t *testing.T, ctx context.Context, ns, name string, replicas int32) {
	t.Helper()
	var last string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := env.cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
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

func listPods(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := env.cluster.Client.CoreV1().Pods(ns).List(ctxT(t, 30*time.Second), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("listing pods in %s: %v", ns, err)
	}
	return list.Items
}

func createPod(t *testing.T, ns, name string, labels, annotations map[string]string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	out, err := env.cluster.Client.CoreV1().Pods(ns).Create(ctxT(t, 30*time.Second), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return out
}

// report prints one scenario's outcome in the form the acceptance reads.
func report(t *testing.T, scenario string, target float64, canary, total, mismatches int) {
	t.Helper()
	realised := 0.0
	if total > 0 {
		realised = float64(canary) / float64(total)
	}
	t.Logf("RESULT scenario=%q target_canary_share=%.2f realised_canary_share=%.2f (%d/%d) routed_vs_injected_mismatches=%d",
		scenario, target, realised, canary, total, mismatches)
}

var metaCreate = metav1.CreateOptions{}

// waitServiceAccount waits for the namespace's default ServiceAccount:
// the ServiceAccount admission plugin refuses pods until the controller
// has created it.
func waitServiceAccount(t *testing.T, ns string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := env.cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", ns, err)
	}
}
