package faults

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// decision is the router's canary-router.io/decision annotation.
type decision struct {
	Revision     string `json:"revision"`
	Reason       string `json:"reason"`
	Policy       string `json:"policy"`
	BalancedOver string `json:"balancedOver"`
}

func decisionOf(p *corev1.Pod) (decision, bool) {
	raw, ok := p.Annotations["canary-router.io/decision"]
	if !ok {
		return decision{}, false
	}
	var d decision
	return d, json.Unmarshal([]byte(raw), &d) == nil
}

// digest is the policy digest the router writes in its decisions.
func digest(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:4])
}

// managedNamespace creates a namespace opted in to routing and waits for
// its default ServiceAccount, without which pods are refused.
func managedNamespace(t *testing.T, name string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"canary-router.io/injection": "enabled"}}}
	if _, err := env.cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := env.cluster.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", name, err)
	}
}

var probeOnce sync.Once

func probeNamespace(t *testing.T) {
	t.Helper()
	probeOnce.Do(func() { managedNamespace(t, "probe") })
}

func newPod(generateName string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: generateName, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
}

// waitRouted creates probe pods in ns until one is routed with a decision
// ok accepts, for up to 30 seconds.
func waitRouted(t *testing.T, ns string, ok func(decision) bool) decision {
	t.Helper()
	var last string
	var got decision
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := env.cluster.Client.CoreV1().Pods(ns).Create(ctx, newPod("probe-", map[string]string{"probe": "true"}), metav1.CreateOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		d, routed := decisionOf(p)
		last = fmt.Sprintf("pod %s decision %+v", p.Name, d)
		got = d
		return routed && ok(d), nil
	})
	if err != nil {
		t.Fatalf("no probe pod in %s routed as expected after 30s; last: %s", ns, last)
	}
	return got
}

// applyPolicy writes doc and waits until the router routes by it.
func applyPolicy(t *testing.T, doc string) {
	t.Helper()
	if err := writePolicy(ctxT(t, 30*time.Second), doc); err != nil {
		t.Fatal(err)
	}
	probeNamespace(t)
	waitRouted(t, "probe", func(d decision) bool { return d.Policy == digest(doc) })
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

// scale sets a Deployment's replicas.
func scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	deps := env.cluster.Client.AppsV1().Deployments(ns)
	s, err := deps.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := deps.UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPods waits until want live pods in ns match selector: the pods a
// controller has managed to create, ready or not. Readiness is kwok's to
// report and is no measure of admission; after a kube-apiserver restart
// kwok misses node heartbeats for about 50 s, the node lifecycle
// controller marks every pod not ready, and kwok never marks them ready
// again.
func waitPods(t *testing.T, ns, selector string, want int, timeout time.Duration) {
	t.Helper()
	got := 0
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := env.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		got = 0
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				got++
			}
		}
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: %d live pods, want %d; %s", ns, selector, got, want, clusterState(ns))
	}
}

// clusterState describes the pods of ns and the nodes, for a failure
// message.
func clusterState(ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	phases := map[string]int{}
	if pods, err := env.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
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
	if list, err := env.cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
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

// audit checks every live pod in ns matching selector: routed by the
// router (label istio.io/rev and a decision), and injected by the
// revision the label names. It returns the pods per injected revision
// and the number of pods that break the rule.
func audit(t *testing.T, ns, selector string) (perRevision map[string]int, bad int) {
	t.Helper()
	list, err := env.cluster.Client.CoreV1().Pods(ns).List(ctxT(t, 30*time.Second), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	perRevision = map[string]int{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		d, routed := decisionOf(p)
		injected := fakeistio.InjectedRevision(p)
		label := p.Labels["istio.io/rev"]
		if !routed || label == "" || d.Revision != label || injected != label {
			bad++
			if bad <= 5 {
				t.Errorf("pod %s/%s: label istio.io/rev=%q, decision %+v, injected by %q", ns, p.Name, label, d, injected)
			}
		}
		perRevision[injected]++
	}
	return perRevision, bad
}
