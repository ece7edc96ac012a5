package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// TestMonitoringMatchesTheInstall holds deploy/monitoring to the install it
// watches: the ServiceMonitor selects the router's Service and names its
// metrics port, every alert the docs promise exists, the dashboard is
// valid JSON, and the status roles grant reads only. test/observability
// runs the rules and the dashboard queries against a real Prometheus.
func TestMonitoringMatchesTheInstall(t *testing.T) {
	objs := unstructuredObjects(t, render(t, "monitoring"))
	base := objects(t, render(t, filepath.Join("overlays", "default")))
	svc, ok := find(base, "canary-router", func(s *corev1.Service) string { return s.Name })
	if !ok {
		t.Fatal("no Service canary-router in the default overlay")
	}

	sm := one(t, objs, "ServiceMonitor", "canary-router")
	if sm.GetNamespace() != svc.Namespace {
		t.Errorf("ServiceMonitor in %q, the Service in %q", sm.GetNamespace(), svc.Namespace)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not match the Service's labels %v", sel, svc.Labels)
	}
	if job, _, _ := unstructured.NestedString(sm.Object, "spec", "jobLabel"); svc.Labels[job] != "canary-router" {
		t.Errorf("ServiceMonitor jobLabel %q gives job %q, want canary-router (the alerts and dashboard use it)", job, svc.Labels[job])
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", endpoints)
	}
	port, _ := endpoints[0].(map[string]any)["port"].(string)
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }) {
		t.Errorf("ServiceMonitor port %q is not a port of the Service", port)
	}

	rule := one(t, objs, "PrometheusRule", "canary-router")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			if a, ok := r.(map[string]any)["alert"].(string); ok {
				alerts = append(alerts, a)
			}
		}
	}
	for _, want := range []string{"CanaryRouterPodsMismatched", "CanaryRouterPolicyInvalid", "CanaryRouterCertificateExpiringSoon",
		"CanaryRouterAdmissionErrors", "CanaryRouterAdmissionSlow", "CanaryRouterDown"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("PrometheusRule has no alert %s (alerts: %v)", want, alerts)
		}
	}

	cm := one(t, objs, "ConfigMap", "canary-router-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v: Grafana's sidecar looks for grafana_dashboard=1", cm.GetLabels())
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "canary-router.json")
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID int `json:"id"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v (uid %q, %d panels)", err, dash.UID, len(dash.Panels))
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
	}

	checkStatusRoles(t, objs)
}

// checkStatusRoles: the status roles read, never write, and are bound to
// nobody by the manifests.
func checkStatusRoles(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, kind := range []string{"ClusterRole", "Role"} {
		u := one(t, objs, kind, "canary-router-status")
		var role rbacv1.ClusterRole
		if err := fromUnstructured(u, &role); err != nil {
			t.Fatal(err)
		}
		for _, r := range role.Rules {
			for _, v := range r.Verbs {
				if v != "get" && v != "list" {
					t.Errorf("%s canary-router-status grants %q on %v", kind, v, r.Resources)
				}
			}
		}
	}
	for _, u := range objs {
		if k := u.GetKind(); k == "ClusterRoleBinding" || k == "RoleBinding" {
			t.Errorf("deploy/monitoring binds %s %s: leave binding the status roles to the operator", k, u.GetName())
		}
	}
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// one returns the single object of kind and name.
func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s in deploy/monitoring", kind, name)
	return nil
}

// unstructuredObjects decodes a rendered stream of any kinds, the
// Prometheus Operator's included.
func unstructuredObjects(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("decoding %q: %v", firstLine(doc), err)
		}
		out = append(out, u)
	}
}
