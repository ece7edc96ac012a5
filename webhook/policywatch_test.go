package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func TestPolicyWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	f := newFixture(t, "")
	recorder := record.NewFakeRecorder(10)
	w := NewPolicyWatcher(client, f.store, "canary-router-system", "canary-router-policy", recorder, zap.NewNop())
	if w.Synced() == nil {
		t.Fatal("synced before running")
	}
	go w.Run(ctx)
	waitFor(t, func() bool { return w.Synced() == nil })
	if f.store.Load() != nil {
		t.Fatal("a policy without a ConfigMap")
	}

	cms := client.CoreV1().ConfigMaps("canary-router-system")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-policy", Namespace: "canary-router-system"},
		Data: map[string]string{PolicyKey: testPolicy}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.store.Load() != nil })
	expectEvent(t, recorder, "Normal PolicyApplied policy generation 1")

	cm.Data[PolicyKey] = "granularity: pod\ntargets: [{revision: a, weight: 120}]\n"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, recorder, "Warning PolicyRejected policy from ConfigMap canary-router-system/canary-router-policy")
	if g := f.store.Load().Generation; g != 1 {
		t.Fatalf("generation %d in force after a bad edit, want 1", g)
	}

	delete(cm.Data, PolicyKey)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, recorder, "data.policy.yaml: required key is missing")

	cm.Data = map[string]string{PolicyKey: "granularity: pod\ntargets: [{revision: a, weight: 100}]\n"}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, recorder, "Normal PolicyApplied policy generation 2")
	if rev := f.store.Load().Policy.Targets[0].Revision; rev != "a" {
		t.Fatalf("policy in force targets %s", rev)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatal("condition not met in 5s")
	}
}

func expectEvent(t *testing.T, r *record.FakeRecorder, prefix string) {
	t.Helper()
	select {
	case e := <-r.Events:
		if !strings.Contains(e, prefix) {
			t.Fatalf("event %q, want one containing %q", e, prefix)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no event %q", prefix)
	}
}
