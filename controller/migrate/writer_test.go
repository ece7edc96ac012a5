package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/canary-router/canary-router/controller"
)

// A restart names the version of the workload the pass saw, so the API
// server refuses it (409) on a workload changed since, such as one the
// next leader already restarted.
func TestRestartPatchIsConditional(t *testing.T) {
	var p struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(restartPatch("42", "d1", "2026-12-04T10:00:00Z"), &p); err != nil || p.Metadata.ResourceVersion != "42" {
		t.Errorf("restart patch carries resourceVersion %q (%v), want 42", p.Metadata.ResourceVersion, err)
	}
	if err := json.Unmarshal(rolloutRestartPatch("43", "d1", "2026-12-04T10:00:00Z"), &p); err != nil || p.Metadata.ResourceVersion != "43" {
		t.Errorf("Rollout restart patch carries resourceVersion %q (%v), want 43", p.Metadata.ResourceVersion, err)
	}
}

// A leader whose Lease renewal is stale writes nothing: no restart, no
// relabel reaches the API server.
func TestKubeWriterStaleTermWritesNothing(t *testing.T) {
	client := fake.NewClientset(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", ResourceVersion: "7"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &KubeWriter{Client: client, Namespace: "canary-router-system",
		Term: controller.NewTerm(ctx, cancel, controller.Token{Transitions: 1, Holder: "a"}, lease(false))}
	if err := w.Restart(ctx, Ref{"shop", KindDeployment, "web"}, "7", "d1", "2026-12-04T10:00:00Z"); !errors.Is(err, controller.ErrNotLeading) {
		t.Errorf("restart: %v", err)
	}
	if err := w.Relabel(ctx, "shop", "3", "canary", "{}"); !errors.Is(err, controller.ErrNotLeading) {
		t.Errorf("relabel: %v", err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			t.Errorf("a write reached the API server: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
