package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/harness"
)

// TestAPIServerRestart restarts kube-apiserver while the router runs and
// pods are being created. The router's watches break and must recover:
// admissions continue, a policy edit made after the restart takes
// effect, and per-pod balancing stays exact, which needs the pods
// admitted before the restart to be in the router's pod view again.
func TestAPIServerRestart(t *testing.T) {
	const ns = "restart"
	r, load := underLoad(t, ns, "restart-1", 10)
	down := time.Now()
	if err := env.Cluster.RestartAPIServer(harness.Context(t, 2*time.Minute)); err != nil {
		load.stop()
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(4 * time.Second)
	load.stop()

	before, during, after := load.counts(time.Time{}, down), load.counts(down, up), load.counts(up, time.Time{})
	t.Logf("RESULT apiserver restart: down for %s; creations before: %s; during: %s; after: %s",
		up.Sub(down).Round(time.Millisecond), format(before), format(during), format(after))
	load.expectOnly(t, "before the restart", before, outCreated)
	// The apiserver's own outage fails requests; nothing the router does may.
	load.expectOnly(t, "during the restart", during, outCreated, outAPIDown)
	load.expectOnly(t, "after the restart", after, outCreated, outAPIDown)
	if after[outCreated] == 0 {
		t.Errorf("no pod created after the restart")
	}

	// A policy edit after the restart reaches the router through its
	// re-established ConfigMap watch.
	edited := time.Now()
	doc := podPolicy("restart-2", 70, 30)
	applyPolicy(t, doc)
	t.Logf("RESULT apiserver restart: policy edit after the restart in force after %s", time.Since(edited).Round(time.Millisecond))

	// Balancing needs the view of the 10 pods from before the restart:
	// at 30% of 20, one more canary pod, not three.
	env.Scale(t, ns, "web", 20)
	env.WaitLivePods(t, ns, "app=web", 20, 2*time.Minute)
	perRevision, bad := audit(t, ns, "app=web")
	t.Logf("RESULT apiserver restart: web scaled 10 -> 20 after the restart at 30%% canary: %v (want 6 canary, 14 stable), %d pods not routed or mis-injected",
		perRevision, bad)
	if perRevision["canary"] != 6 || perRevision["stable"] != 14 {
		t.Errorf("pods per revision %v, want exactly 6 canary and 14 stable: the pod view did not recover", perRevision)
	}
	loadRevs, badLoad := audit(t, ns, "load=true")
	t.Logf("RESULT apiserver restart: load pods %v, %d not routed or mis-injected", loadRevs, badLoad)
	if bad+badLoad > 0 || load.unrouted() > 0 {
		t.Errorf("%d pods without a routing label or injected by another revision", bad+badLoad+load.unrouted())
	}
	waitPodGauge(t, r)
}

// underLoad sets a scenario up: the external router in use, ns managed
// with a per-pod 50/50 policy seeded seed, Deployment web of replicas
// rolled out, and two workers creating pods in ns for 2 s already.
func underLoad(t *testing.T, ns, seed string, replicas int32) (*router, *creator) {
	t.Helper()
	r := externalRouter(t)
	useRouter(t, r)
	managedNamespace(t, ns)
	applyPolicy(t, podPolicy(seed, 50, 50))
	rollOut(t, ns, "web", replicas)
	load := startCreating(ns, 2, 50*time.Millisecond)
	time.Sleep(2 * time.Second)
	return r, load
}

// rollOut creates a Deployment and waits until all its pods exist.
func rollOut(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	env.CreateDeployment(t, harness.Deployment(ns, name, replicas))
	env.WaitLivePods(t, ns, "app="+name, int(replicas), 2*time.Minute)
}

// waitPodGauge waits until the router's canary_router_pods gauge counts
// every live routed pod in the cluster, as a pod view fed by a working
// watch does.
func waitPodGauge(t *testing.T, r *router) {
	t.Helper()
	var want, got float64
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Cluster.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "istio.io/rev"})
		if err != nil {
			return false, nil
		}
		want = 0
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Labels["istio.io/rev"] != "" {
				want++
			}
		}
		got = 0
		for k, v := range r.scrape(t) {
			if strings.HasPrefix(k, "canary_router_pods{") && !strings.Contains(k, `routed_revision=""`) {
				got += v
			}
		}
		return got == want, nil
	})
	t.Logf("RESULT apiserver restart: router's pod view counts %v routed pods, the apiserver lists %v", got, want)
	if err != nil {
		t.Errorf("the router's pod view counts %v routed pods, the apiserver lists %v", got, want)
	}
}
