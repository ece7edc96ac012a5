package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// checkRoutedDeployment: a Deployment in the managed namespace gets the
// router's revision label and the stand-in Istio's sidecar, and runs.
func checkRoutedDeployment(t *testing.T, ctx context.Context, inj *fakeistio.Injectors) {
	t.Helper()
	before := inj.Injected("default")
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: managedNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers:                    []corev1.Container{{Name: "app", Image: SandboxImage, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
	if _, err := env.c.Client.AppsV1().Deployments(managedNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, 2*time.Minute, func() (bool, string) {
		got, err := env.c.Client.AppsV1().Deployments(managedNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Status.ReadyReplicas == replicas, fmt.Sprintf("web: %+v", got.Status)
	})
	pods, err := env.c.Client.CoreV1().Pods(managedNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Labels["istio.io/rev"] != "default" || p.Annotations["canary-router.io/decision"] == "" {
			t.Errorf("pod %s not routed: labels %v", p.Name, p.Labels)
		}
		if p.Annotations["istio.io/rev"] != "default" || len(p.Spec.Containers) != 2 {
			t.Errorf("pod %s not injected: annotations %v, %d containers", p.Name, p.Annotations, len(p.Spec.Containers))
		}
	}
	if n := inj.Injected("default") - before; n < int(replicas) {
		t.Errorf("stand-in injector called %d times, want %d", n, replicas)
	}
}

// load creates pods in the managed namespace back to back, each through
// the router's fail-closed pod webhook, until stopped. The pods name a
// node that does not exist, so they cost admission only, not the node.
type load struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	created int
	failed  []string
}

func startLoad(ctx context.Context, ns string) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel}
	pods := env.c.Client.CoreV1().Pods(ns)
	for w := 0; w < 2; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Labels: map[string]string{"app": "load"}},
					Spec: corev1.PodSpec{
						NodeName:   "no-such-node",
						Containers: []corev1.Container{{Name: "app", Image: SandboxImage, ImagePullPolicy: corev1.PullNever}},
					},
				}
				_, err := pods.Create(ctx, p, metav1.CreateOptions{})
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				if err != nil {
					l.failed = append(l.failed, time.Now().Format("15:04:05.000")+" "+err.Error())
				} else {
					l.created++
				}
				l.mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) stop() (created int, failed []string) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created, l.failed
}

// checkEvictionBlocked evicts one router pod (allowed: two are ready) and
// at once the other, which the PodDisruptionBudget (minAvailable 1) must
// refuse until the replacement is Ready.
func checkEvictionBlocked(t *testing.T, ctx context.Context) {
	t.Helper()
	pdb, err := env.c.Client.PolicyV1().PodDisruptionBudgets(routerNS).Get(ctx, "canary-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Status.CurrentHealthy != 2 || pdb.Status.DisruptionsAllowed != 1 {
		t.Fatalf("PDB status %+v, want 2 healthy and 1 disruption allowed", pdb.Status)
	}
	pods := routerPods(t, ctx)
	evict := func(name string) error {
		return env.c.Client.CoreV1().Pods(routerNS).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: routerNS}})
	}
	if err := evict(pods[0].Name); err != nil {
		t.Fatalf("first eviction (2 ready, minAvailable 1) refused: %v", err)
	}
	err = evict(pods[1].Name)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second eviction while only one router pod is ready: %v, want 429 from the PodDisruptionBudget", err)
	}
	t.Logf("second eviction refused: %v", err)
	waitReplaced(t, ctx, pods[0].Name)
}
