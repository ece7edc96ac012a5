package report

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/status")

func namespaceWith(name string, labels ...string) namespaceLabels {
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return namespaceLabels{Name: name, Labels: l}
}

var istioConfigs = []istio.Config{
	{Name: "istio-sidecar-injector-stable", Rev: "stable"},
	{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	{Name: "istio-revision-tag-prod", Rev: "canary", Tag: "prod"},
	{Name: "canary-router"},
}

var statusCases = map[string]*ClusterSnapshot{
	// Pod granularity to a tag: prod's pods are injected by canary and do
	// not mismatch; one pod its owner pinned to canary, in a namespace
	// pinned to stable, got stable (Istio's precedence, not the router's
	// mismatch); one pod the router routed to stable was not injected (the
	// router's mismatch); namespace "both" carries both Istio labels and is
	// listed under istio-injection only, which wins. Pins: to a typo and
	// to old (live, outside the targets) are listed; to canary (prod's
	// revision) and any pin in a namespace with an Istio label are not.
	"rollout": {
		PolicyRef: "canary-router-system/canary-router-policy",
		PolicyDoc: []byte("granularity: pod\ntargets: [{revision: stable, weight: 70}, {revision: prod, weight: 30}]\n"),
		Configs:   append(slices.Clone(istioConfigs), istio.Config{Name: "istio-sidecar-injector-old", Rev: "old"}),
		Pins: pinCounts{
			{Unit: migrate.Ref{Namespace: "team-a", Kind: "Deployment", Name: "web"}, Revision: "stabel"}: 3,
			{Unit: migrate.Ref{Namespace: "team-b", Kind: "StatefulSet", Name: "db"}, Revision: "old"}:    2,
			{Unit: migrate.Ref{Namespace: "team-c", Kind: "Deployment", Name: "api"}, Revision: "canary"}: 4,
			{Unit: migrate.Ref{Namespace: "pinned", Kind: "Deployment", Name: "gone"}, Revision: "gone"}:  1,
		},
		Namespaces: []namespaceLabels{
			namespaceWith("kube-system"), namespaceWith("pinned", "istio.io/rev", "stable"), namespaceWith("legacy", "istio-injection", "enabled"),
			namespaceWith("team-a", policy.LabelOptIn, "enabled"), namespaceWith("team-b", policy.LabelOptIn, "enabled"), namespaceWith("team-c", policy.LabelOptIn, "enabled"),
			namespaceWith("team-d", policy.LabelOptIn, "enabled"), namespaceWith("team-e", policy.LabelOptIn, "enabled"), namespaceWith("team-f", policy.LabelOptIn, "enabled"),
			namespaceWith("team-g", policy.LabelOptIn, "enabled"), namespaceWith("team-h", policy.LabelOptIn, "enabled"),
			namespaceWith("both", "istio.io/rev", "canary", "istio-injection", "enabled"),
		},
		Pods: []podview.RevisionCount{
			{Routed: "stable", Injected: "stable", Pods: 14},
			{Routed: "stable", Injected: "", Pods: 1},
			{Routed: "prod", Injected: "canary", Pods: 5},
			{Routed: "canary", Injected: "stable", Pinned: true, Pods: 1},
			{Routed: "", Injected: "stable", Pods: 3},
		},
	},
	// Namespace granularity: pods carry no routing label; namespaces do.
	"namespace-granularity": {
		PolicyRef: "canary-router-system/canary-router-policy",
		PolicyDoc: []byte("granularity: namespace\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"),
		Configs:   istioConfigs,
		Namespaces: []namespaceLabels{
			namespaceWith("a", "istio.io/rev", "stable"), namespaceWith("b", "istio.io/rev", "canary"), namespaceWith("c", "istio.io/rev", "stable"),
		},
		Pods: []podview.RevisionCount{{Injected: "stable", Pods: 8}, {Injected: "canary", Pods: 4}},
	},
	// An operator who may read pods but neither the policy nor webhook
	// configurations: tags cannot be resolved.
	"forbidden": {
		PolicyRef:     "canary-router-system/canary-router-policy",
		PolicyErr:     apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "canary-router-policy", errors.New("RBAC: access denied")),
		ConfigsErr:    apierrors.NewForbidden(schema.GroupResource{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"}, "", errors.New("RBAC: access denied")),
		NamespacesErr: apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "", errors.New("RBAC: access denied")),
		Pods:          []podview.RevisionCount{{Routed: "prod", Injected: "canary", Pods: 2}, {Routed: "stable", Pods: 1}},
	},
	"invalid-policy": {
		PolicyRef: "canary-router-system/canary-router-policy",
		PolicyDoc: []byte("granularity: pods\ntargets: [{revision: stable, weight: 50}]\n"),
		Configs:   istioConfigs,
	},
}

// TestStatusGolden renders each case as text and JSON and compares with
// testdata/status; run with -update to rewrite them after a deliberate
// change.
func TestStatusGolden(t *testing.T) {
	for name, snap := range statusCases {
		t.Run(name, func(t *testing.T) {
			r := BuildStatus(snap)
			var text, js bytes.Buffer
			WriteStatusText(&text, r)
			if err := writeStatusJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", text.Bytes())
			golden(t, name+".json", js.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "status", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestStatusGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale (go test -run TestStatusGolden -update rewrites it after a deliberate change)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		observed, target float64
		want             string
	}{
		{0.3, 0.3, "[######|.............]"},
		{0.1, 0.3, "[##....|.............]"},
		{0.5, 0.3, "[######|###..........]"},
		{1, 1, "[####################]"},
		{0, 0, "[|...................]"},
		{0.25, -1, "[#####...............]"},
	}
	for _, tt := range tests {
		if got := progressBar(tt.observed, tt.target, 20); got != tt.want {
			t.Errorf("progressBar(%g, %g) = %s, want %s", tt.observed, tt.target, got, tt.want)
		}
	}
}

// TestReadCluster reads through fake clients what the e2e test reads from
// a real API server: the policy, webhook configs, namespaces and pods,
// with the pods counted by the pod view.
func TestReadCluster(t *testing.T) {
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "canary-router-system", Name: "canary-router-policy"},
		Data:       map[string]string{"policy.yaml": "granularity: pod\ntargets: [{revision: stable, weight: 100}]\n"},
	})
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	obj := func(kind, apiVersion, namespace, name string, labels, annotations map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: kind, APIVersion: apiVersion},
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, Annotations: annotations}}
	}
	injected := func(rev string) map[string]string {
		return map[string]string{"sidecar.istio.io/status": `{"revision":"` + rev + `"}`}
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		obj("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1", "", "istio-revision-tag-prod", map[string]string{"istio.io/rev": "canary", "istio.io/tag": "prod"}, nil),
		obj("Namespace", "v1", "", "shop", map[string]string{policy.LabelOptIn: "enabled"}, nil),
		obj("Pod", "v1", "shop", "a", map[string]string{"istio.io/rev": "prod"}, injected("canary")),
		obj("Pod", "v1", "shop", "b", map[string]string{"istio.io/rev": "prod"}, injected("canary")),
		obj("Pod", "v1", "shop", "plain", nil, nil),
	)
	snap, err := ReadCluster(context.Background(), client, meta, "canary-router-system", "canary-router-policy")
	if err != nil {
		t.Fatal(err)
	}
	if snap.PolicyErr != nil || len(snap.PolicyDoc) == 0 || snap.ConfigsErr != nil || snap.NamespacesErr != nil {
		t.Fatalf("errors reading: policy %v, configs %v, namespaces %v", snap.PolicyErr, snap.ConfigsErr, snap.NamespacesErr)
	}
	if len(snap.Configs) != 1 || snap.Configs[0].Tag != "prod" || len(snap.Namespaces) != 1 {
		t.Errorf("configs %+v, namespaces %+v", snap.Configs, snap.Namespaces)
	}
	// The fake pods carry no decision annotation: their owners pinned them.
	if len(snap.Pods) != 1 || snap.Pods[0] != (podview.RevisionCount{Routed: "prod", Injected: "canary", Pinned: true, Pods: 2}) {
		t.Errorf("pods %+v, want 2 pinned to prod and injected by canary", snap.Pods)
	}
	if r := BuildStatus(snap); r.MismatchedPods != 0 || r.OverriddenPins != 0 {
		t.Errorf("%d mismatched, %d pins overridden: the tag was not resolved", r.MismatchedPods, r.OverriddenPins)
	}
}

// TestStatusGatewayPlacement: status shows where gateway pods go, and
// warns when a gatewayRevision names no revision or tag.
func TestStatusGatewayPlacement(t *testing.T) {
	configs := []istio.Config{{Name: "istio-sidecar-injector-stable", Rev: "stable"}, {Name: "istio-sidecar-injector-canary", Rev: "canary"}}
	for _, tc := range []struct {
		doc, rev, why string
		live          bool
		warn          bool
	}{
		{"gatewayRevision: canary\n", "canary", "gatewayRevision", true, false},
		{"gatewayRevision: stabel\n", "stabel", "gatewayRevision", false, true},
		{"", "stable", "the first target", true, false},
	} {
		doc := "granularity: pod\ntargets: [{revision: stable, weight: 90}, {revision: canary, weight: 10}]\n" + tc.doc
		r := BuildStatus(&ClusterSnapshot{PolicyRef: "ns/p", PolicyDoc: []byte(doc), Configs: configs})
		g := r.Policy.Gateways
		if g == nil || g.Revision != tc.rev || !strings.Contains(g.Why, tc.why) || g.Live == nil || *g.Live != tc.live {
			t.Errorf("%q: gateways %+v", tc.doc, g)
		}
		warned := slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "every gateway pod is refused") })
		if warned != tc.warn {
			t.Errorf("%q: warnings %q", tc.doc, r.Warnings)
		}
	}
}

// A status object that cannot be read mid-rollout (the viewer's Role
// lacked it) must be said: the target shares shown are then the policy's,
// which the router's metrics and dashboard contradict.
func TestStatusWarnsWithoutTheStatusObject(t *testing.T) {
	base := "granularity: pod\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\n"
	plan := "rollout:\n  steps:\n    - {canary: 50, hold: 1m}\n    - {canary: 100}\n"
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "canary-router-status", errors.New("no rule"))
	for _, tc := range []struct {
		name string
		doc  string
		err  error
		warn bool
	}{
		{"rollout, forbidden", base + plan, forbidden, true},
		{"rollout, readable", base + plan, nil, false},
		{"no rollout block, forbidden", base, forbidden, false},
	} {
		r := BuildStatus(&ClusterSnapshot{PolicyRef: "ns/p", PolicyDoc: []byte(tc.doc), OverlayErr: tc.err})
		warned := slices.ContainsFunc(r.Warnings, func(w string) bool {
			return strings.Contains(w, "cannot read the status object canary-router-status (forbidden)") && strings.Contains(w, "not the self-driving rollout's weights in force")
		})
		if warned != tc.warn {
			t.Errorf("%s: warnings %q", tc.name, r.Warnings)
		}
	}
}
