package cluster_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

// start starts a cluster for one test and stops it at cleanup. A missing
// binary fails the test, so a forgotten `make tools` cannot pass as a skip.
func start(t *testing.T, workloads bool) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real control plane; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Workloads: workloads, Log: t.Output()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start(Workloads=%v) took %s", workloads, time.Since(began).Round(10*time.Millisecond))
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func TestStartWithoutBinariesSaysMakeTools(t *testing.T) {
	_, err := cluster.Start(t.Context(), cluster.Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("Start with an empty BinDir: err = %v, want a hint to run make tools", err)
	}
}

func TestAPIServerOnly(t *testing.T) {
	c := start(t, false)
	ctx := t.Context()
	if _, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	out, err := c.Kubectl(ctx, "get", "namespace", "kube-system", "-o", "name")
	if err != nil || strings.TrimSpace(string(out)) != "namespace/kube-system" {
		t.Fatalf("kubectl get namespace: %v: %s", err, out)
	}

	// Without a controller manager nobody creates ServiceAccounts, so make one
	// to prove the TokenRequest API and token authentication work.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	assertTokenAuthenticates(t, c, "probe")

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still exists after Stop (err %v)", c.Dir, err)
	}
	host := strings.TrimPrefix(c.Config.Host, "https://")
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Errorf("apiserver still accepts connections on %s after Stop", host)
	}
}

func TestWorkloads(t *testing.T) {
	c := start(t, true)
	ctx := t.Context()
	deploy := pauseDeployment("web", 3)
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("deployment becomes available", func(t *testing.T) {
		waitDeploymentAvailable(t, c, "web", 3, 60*time.Second)
	})

	t.Run("pods belong to a replicaset", func(t *testing.T) {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 3 {
			t.Fatalf("got %d pods, want 3", len(pods.Items))
		}
		for _, pod := range pods.Items {
			if pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" {
				t.Errorf("pod %s has no %s label", pod.Name, appsv1.DefaultDeploymentUniqueLabelKey)
			}
			owner := metav1.GetControllerOf(&pod)
			if owner == nil || owner.Kind != "ReplicaSet" {
				t.Errorf("pod %s controller owner = %v, want a ReplicaSet", pod.Name, owner)
			}
			if pod.Spec.NodeName != cluster.FakeNodeName || pod.Status.PodIP == "" {
				t.Errorf("pod %s: node %q, IP %q; want scheduled on %s with an IP", pod.Name, pod.Spec.NodeName, pod.Status.PodIP, cluster.FakeNodeName)
			}
		}
	})

	t.Run("rollout restart completes", func(t *testing.T) {
		if out, err := c.Kubectl(ctx, "rollout", "restart", "deployment/web"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if out, err := c.Kubectl(ctx, "rollout", "status", "deployment/web", "--timeout=60s"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		rsList, err := c.Client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rsList.Items) < 2 {
			t.Errorf("got %d ReplicaSets after restart, want a new one next to the old", len(rsList.Items))
		}
	})

	t.Run("default service account token", func(t *testing.T) {
		assertTokenAuthenticates(t, c, "default")
	})

	t.Run("apiserver restart", func(t *testing.T) {
		began := time.Now()
		if err := c.RestartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("RestartAPIServer took %s", time.Since(began).Round(10*time.Millisecond))
		if _, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("list namespaces after restart: %v", err)
		}
		// The controllers must have survived the outage too.
		if _, err := c.Client.AppsV1().Deployments("default").Patch(ctx, "web", "application/merge-patch+json",
			[]byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitDeploymentAvailable(t, c, "web", 4, 60*time.Second)
	})
}

func assertTokenAuthenticates(t *testing.T, c *cluster.Cluster, serviceAccount string) {
	t.Helper()
	ctx := t.Context()
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(600))}}
	tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, serviceAccount, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}
	review, err = c.Client.AuthenticationV1().TokenReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenReview: %v", err)
	}
	want := "system:serviceaccount:default:" + serviceAccount
	if !review.Status.Authenticated || review.Status.User.Username != want {
		t.Errorf("token review: authenticated=%v user=%q error=%q; want %s", review.Status.Authenticated, review.Status.User.Username, review.Status.Error, want)
	}
}

func waitDeploymentAvailable(t *testing.T, c *cluster.Cluster, name string, replicas int32, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	var d *appsv1.Deployment
	for time.Since(began) < timeout {
		var err error
		d, err = c.Client.AppsV1().Deployments("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := d.Status
		if s.ObservedGeneration == d.Generation && s.ReadyReplicas == replicas && s.AvailableReplicas == replicas && s.UpdatedReplicas == replicas {
			t.Logf("deployment %s: %d/%d ready after %s", name, replicas, replicas, time.Since(began).Round(10*time.Millisecond))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("deployment %s not available after %s: status %+v", name, timeout, d.Status)
}

func pauseDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
				},
			},
		},
	}
}
