package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
)

const dashNS = "canary-router-system"

const dashPolicy = `granularity: workload
targets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]
rollout:
  interval: 10s
  steps:
    - {canary: 10, hold: 5m}
    - {canary: 50, hold: manual}
    - {canary: 100}
  gates: {maxMismatches: 0}
`

// dashCluster is a cluster mid-rollout: step 2 holding, one gate
// measured, one Event on the status object, and a managed namespace with
// a Deployment whose pods are one canary-injected and one without a
// sidecar. allowed answers the user's SelfSubjectAccessReviews.
func dashCluster(t *testing.T, allowed bool) (*fake.Clientset, *dashboardBackend) {
	t.Helper()
	st := rollout.State{ID: "r1", Step: 1, Phase: rollout.PhaseHolding, LastPassed: 0,
		Weights: []policy.Target{{Revision: "stable", Weight: 50}, {Revision: "canary", Weight: 50}},
		Gates:   []rollout.GateResult{{Name: rollout.GateMismatches, Value: 0, Verdict: rollout.VerdictPass, Message: "0 routed-vs-injected mismatches, at most 0 allowed"}}}
	mst := migrate.Status{Phase: migrate.PhaseComplete, Done: 1, Total: 1, Batches: 1}
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dashNS, Name: "canary-router-policy"}, Data: map[string]string{"policy.yaml": dashPolicy}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dashNS, Name: migrate.StatusConfigMap, ResourceVersion: "1"},
			Data: map[string]string{rollout.StateKey: st.Encode(), migrate.StatusKey: mst.Encode()}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: dashNS, Name: "e1"}, Type: corev1.EventTypeNormal, Reason: "RolloutStepStarted",
			Message: "step 2 of 3, weights stable=50 canary=50", Count: 1, LastTimestamp: metav1.NewTime(time.Unix(100, 0)),
			InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: dashNS, Name: migrate.StatusConfigMap}},
	)
	client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = allowed
		return true, r, nil
	})
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	yes := true
	pod := func(name string, annotations map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Annotations: annotations,
				Labels:          map[string]string{"pod-template-hash": "5d8f9"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "cart-5d8f9", Controller: &yes}}}}
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{policy.LabelOptIn: "enabled"}}},
		pod("cart-5d8f9-a", map[string]string{"sidecar.istio.io/status": `{"revision":"canary"}`}),
		pod("cart-5d8f9-b", nil),
	)
	b := newDashboardBackend(client, meta, dashNS, "canary-router-policy")
	b.now = func() time.Time { return time.Unix(200, 0) }
	return client, b
}

func dashHandler(b *dashboardBackend) http.Handler {
	return Handler(ServerOptions{Backend: b, Actions: dashboardActions()})
}

func getState(t *testing.T, h http.Handler) dashboardDoc {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/state", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/state: %d %s", w.Code, w.Body)
	}
	var doc dashboardDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func post(h http.Handler, action, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/api/actions/"+action, strings.NewReader(body))
	r.Header.Set(RequestHeader, "1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestDashboardState(t *testing.T) {
	_, b := dashCluster(t, true)
	doc := getState(t, dashHandler(b))
	if doc.Rollout == nil || doc.Rollout.Step != 1 || rollout.FormatWeights(doc.Rollout.Weights) != "stable=50 canary=50" || doc.Migration.Batches != 1 {
		t.Fatalf("rollout %+v, migration %+v", doc.Rollout, doc.Migration)
	}
	if doc.Plan == nil || len(doc.Plan.Steps) != 3 || doc.Plan.Steps[1].Hold != "0s" || !doc.Plan.Steps[1].Manual || rollout.FormatWeights(doc.Plan.Steps[0].Weights) != "stable=90 canary=10" {
		t.Errorf("plan %+v", doc.Plan)
	}
	if len(doc.Plan.Gates) < 2 || doc.Plan.Gates[1] != (dashboardGate{rollout.GateMismatches, "at most 0 routed-vs-injected mismatches"}) {
		t.Errorf("gates %+v", doc.Plan.Gates)
	}
	want := dashboardWorkload{Namespace: "shop", Kind: "Deployment", Name: "cart", Managed: true, Unmeshed: 1}
	if len(doc.Workloads) != 1 || doc.Workloads[0].Pods["canary"] != 1 || doc.Workloads[0].Pods[""] != 1 {
		t.Fatalf("workloads %+v", doc.Workloads)
	}
	if got := doc.Workloads[0]; got.Namespace != want.Namespace || got.Kind != want.Kind || got.Name != want.Name || got.Managed != want.Managed || got.Unmeshed != want.Unmeshed {
		t.Errorf("workload %+v, want %+v", got, want)
	}
	if len(doc.Events) != 1 || doc.Events[0].Reason != "RolloutStepStarted" {
		t.Errorf("events %+v", doc.Events)
	}
	if doc.Cluster == nil || len(doc.Warnings) != 0 {
		t.Errorf("cluster %v, warnings %v", doc.Cluster, doc.Warnings)
	}
	got := map[string]dashboardAction{}
	for _, a := range doc.Actions {
		got[a.Name] = a
	}
	// Holding at step 2: pause, promote and abort mean something now.
	for name, enabled := range map[string]bool{"pause": true, "resume": false, "promote": true, "abort": true, "retry": false} {
		if a := got[name]; a.Enabled != enabled || (!enabled && a.Reason == "") {
			t.Errorf("%s: %+v, want enabled %v (disabled with a reason)", name, a, enabled)
		}
	}
}

// The buttons write what the CLI's commands write: pause with the reason,
// promote as a one-shot request.
func TestDashboardActs(t *testing.T) {
	client, b := dashCluster(t, true)
	h := dashHandler(b)
	if w := post(h, "pause", `{"reason":"change freeze"}`); w.Code != http.StatusOK {
		t.Fatalf("pause: %d %s", w.Code, w.Body)
	}
	if w := post(h, "promote", ""); w.Code != http.StatusOK {
		t.Fatalf("promote: %d %s", w.Code, w.Body)
	}
	cm, err := client.CoreV1().ConfigMaps(dashNS).Get(context.Background(), migrate.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data[rollout.PausedKey] != "true" || cm.Data[rollout.PauseReasonKey] != "change freeze" ||
		cm.Data[rollout.RequestKey] != "promote/"+time.Unix(200, 0).UTC().Format(time.RFC3339Nano) {
		t.Errorf("status object %v", cm.Data)
	}
	doc := getState(t, h)
	for _, a := range doc.Actions {
		if a.Name == "pause" && (a.Enabled || !strings.Contains(a.Reason, "change freeze")) {
			t.Errorf("pause after pausing: %+v", a)
		}
	}
}

// A user who may not patch the status object sees every button disabled
// with why; a write the API server refuses comes back as 403.
func TestDashboardWithoutRights(t *testing.T) {
	client, b := dashCluster(t, false)
	client.PrependReactor("patch", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, migrate.StatusConfigMap, nil)
	})
	h := dashHandler(b)
	doc := getState(t, h)
	if len(doc.Actions) != 5 {
		t.Fatalf("actions %+v", doc.Actions)
	}
	for _, a := range doc.Actions {
		if a.Enabled || !strings.Contains(a.Reason, "may not patch configmaps/canary-router-status in namespace "+dashNS) {
			t.Errorf("%+v, want disabled for want of RBAC", a)
		}
	}
	if w := post(h, "pause", ""); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "forbidden") {
		t.Errorf("pause without rights: %d %s", w.Code, w.Body)
	}
}

// A user who may read only the status object (the operator Role) still
// gets the rollout; what they may not list becomes a warning.
func TestDashboardOnlyStatusReadable(t *testing.T) {
	client, b := dashCluster(t, true)
	client.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "", nil)
	})
	b.meta = metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	b.meta.(*metadatafake.FakeMetadataClient).PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
	})
	doc := getState(t, dashHandler(b))
	if doc.Rollout == nil || doc.Cluster != nil || len(doc.Warnings) != 2 {
		t.Errorf("rollout %v, cluster %v, warnings %q", doc.Rollout, doc.Cluster, doc.Warnings)
	}
}

func TestActionBlocked(t *testing.T) {
	at := func(ph rollout.Phase) *rollout.State { return &rollout.State{Phase: ph} }
	tests := []struct {
		action string
		st     *rollout.State
		ctl    rollout.Control
		want   bool // blocked
	}{
		{"pause", nil, rollout.Control{}, true},
		{"pause", at(rollout.PhaseProgressing), rollout.Control{}, false},
		{"pause", at(rollout.PhasePaused), rollout.Control{Paused: true}, true},
		{"pause", at(rollout.PhaseComplete), rollout.Control{}, true},
		{"resume", at(rollout.PhasePaused), rollout.Control{}, false},
		{"resume", at(rollout.PhaseHolding), rollout.Control{Paused: true}, false},
		{"resume", at(rollout.PhaseHolding), rollout.Control{}, true},
		{"promote", at(rollout.PhaseHolding), rollout.Control{}, false},
		{"promote", at(rollout.PhaseProgressing), rollout.Control{}, true},
		{"abort", at(rollout.PhaseRollingBack), rollout.Control{}, false},
		{"abort", at(rollout.PhaseAborted), rollout.Control{}, true},
		{"retry", at(rollout.PhaseAborted), rollout.Control{}, false},
		{"retry", at(rollout.PhasePaused), rollout.Control{}, false},
		{"retry", at(rollout.PhaseHolding), rollout.Control{}, true},
	}
	for _, tt := range tests {
		phase := "none"
		if tt.st != nil {
			phase = string(tt.st.Phase)
		}
		if got := actionBlocked(tt.action, tt.st, tt.ctl); (got != "") != tt.want {
			t.Errorf("%s while %s (paused %v): blocked %q, want blocked %v", tt.action, phase, tt.ctl.Paused, got, tt.want)
		}
	}
}

func TestDashboardHosts(t *testing.T) {
	if h := dashboardHosts("127.0.0.1", 3100); len(h) != 4 || h[0] != "127.0.0.1:3100" || h[1] != "localhost:3100" {
		t.Errorf("loopback hosts %v", h)
	}
	if h := dashboardHosts("0.0.0.0", 3100); h != nil {
		t.Errorf("every interface: hosts %v, want any", h)
	}
}

func TestGateThresholds(t *testing.T) {
	lo, hi := 0.99, 5.0
	got := gateThresholds(policy.Gates{MaxMismatches: 2, PodHealth: policy.PodHealth{MinReadyRatio: 0.9, MaxRestartRatio: 2, MinPods: 3},
		Prometheus: &policy.Prometheus{Queries: []policy.Query{{Name: "success", Query: "q1", Min: &lo}, {Name: "rejects", Query: "q2", Max: &hi}}}})
	want := map[string]string{
		rollout.GateMismatches:    "at most 2 routed-vs-injected mismatches",
		rollout.GatePodReady:      "ready ratio canary/stable at least 0.9, from 3 canary pods",
		rollout.GateProxyRestarts: "restart ratio canary/stable at most 2",
		policy.GateIstiodScraped:  "Prometheus scrapes the canary's istiod",
		"success":                 "at least 0.99: q1",
		"rejects":                 "at most 5: q2",
		rollout.GateInjector:      "the canary's injector is live and answers",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d gates, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		if want[g.Name] != g.Threshold {
			t.Errorf("%s: %q, want %q", g.Name, g.Threshold, want[g.Name])
		}
	}
}

// An Event's time is read from whichever field its recorder set.
func TestEventRow(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	tests := []struct {
		name string
		e    corev1.Event
		want time.Time
	}{
		{"core/v1 recorder", corev1.Event{LastTimestamp: metav1.NewTime(at(10)), ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at(1))}}, at(10)},
		{"events/v1 single", corev1.Event{EventTime: metav1.NewMicroTime(at(20))}, at(20)},
		{"events/v1 series", corev1.Event{EventTime: metav1.NewMicroTime(at(20)), Series: &corev1.EventSeries{LastObservedTime: metav1.NewMicroTime(at(30))}}, at(30)},
		{"no time but creation", corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at(5))}}, at(5)},
	}
	for _, tt := range tests {
		if got := eventRow(&tt.e); !got.Time.Equal(tt.want) || got.Count != 1 {
			t.Errorf("%s: %v ×%d, want %v ×1", tt.name, got.Time, got.Count, tt.want)
		}
	}
}
