package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/harness"
)

func podTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
}

// A StatefulSet and a DaemonSet migrate; an opted-out Deployment does not;
// a Job is reported, never restarted.
func TestKinds(t *testing.T) {
	const ns = "kinds"
	writePolicyAndWait(t, policyDoc("workload", 0, ""))
	managedNamespace(t, ns)
	ctx := harness.Context(t, 3*time.Minute)
	apps := env.Cluster.Client.AppsV1()
	two := int32(2)
	sel := func(name string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	}
	if _, err := apps.StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: &two, ServiceName: "db", Selector: sel("db"), Template: podTemplate("db")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: podTemplate("agent")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opted := harness.Deployment(ns, "legacy", 1)
	opted.Annotations = map[string]string{migrate.AnnotationMigrate: "false"}
	env.CreateDeployment(t, opted)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch"}, Spec: batchv1.JobSpec{Template: podTemplate("batch")}}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := env.Cluster.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.WaitAvailable(t, ctx, ns, "legacy", 1)
	waitWorkloads(t, ns, 4) // db-0, db-1, agent, job pod (live or completed)

	doc := policyDoc("workload", 100, "{batchSize: 5, interval: 0s, readinessTimeout: 2m}")
	digest := writePolicy(t, doc)
	st := waitPhase(t, digest, migrate.PhaseComplete, 3*time.Minute)

	sts, _ := apps.StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
	ds, _ := apps.DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
	dep, _ := apps.Deployments(ns).Get(ctx, "legacy", metav1.GetOptions{})
	stsMoved := sts.Annotations[migrate.AnnotationMigrated] == digest
	dsMoved := ds.Annotations[migrate.AnnotationMigrated] == digest
	optedMoved := dep.Annotations[migrate.AnnotationMigrated] != "" || restarts(t, ns)["legacy"] != 0
	final := cliPlan(t)
	reported := names(final.Reported)
	skipped := names(final.Skipped)
	perRev, _, unmeshed := env.PodsByRevision(t, false, ns)
	t.Logf("RESULT migrate-kinds: statefulset_migrated=%v daemonset_migrated=%v opted_out_restarted=%v reported=[%s] skipped=[%s] restarted=%d pods=%v unmeshed=%d",
		stsMoved, dsMoved, optedMoved, strings.Join(reported, " "), strings.Join(skipped, " "), st.Restarted, perRev, unmeshed)
	if !stsMoved || !dsMoved || optedMoved || st.Restarted != 2 {
		t.Errorf("StatefulSet moved %v, DaemonSet moved %v, opted-out restarted %v, restarted %d", stsMoved, dsMoved, optedMoved, st.Restarted)
	}
	if !contains(reported, ns+"/Job/batch") || !contains(skipped, ns+"/Deployment/legacy") {
		t.Errorf("reported %v, skipped %v", reported, skipped)
	}
}

// writePolicyAndWait writes doc and gives the routers a moment to apply it.
func writePolicyAndWait(t *testing.T, doc string) {
	t.Helper()
	writePolicy(t, doc)
}

// waitWorkloads waits until ns holds at least n pods.
func waitWorkloads(t *testing.T, ns string, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) >= n, nil
	})
	if err != nil {
		t.Fatalf("fewer than %d pods in %s: %s", n, ns, env.ClusterState(ns))
	}
}

func names(s []migrate.Skip) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Ref.String())
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
