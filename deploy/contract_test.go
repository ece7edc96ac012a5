package deploy

import (
	"slices"
	"strings"
	"testing"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/view/nsview"
)

// neverMatched are the namespaces no router webhook may ever see: the
// cluster's own, and the router's, so a router outage cannot block its
// own recovery.
var neverMatched = []string{"kube-system", "kube-public", "kube-node-lease", "canary-router-system"}

// podMatchConditions are the CEL conditions that keep pods the router
// would leave alone from reaching it (test/install shows the apiserver
// applying them). None skips a pod that carries istio.io/rev: a pin to a
// revision no live injector answers to would run without a sidecar, so
// the router has to see it.
var podMatchConditions = []string{"not-mirror-pod", "not-opted-out"}

func checkWebhooks(t *testing.T, objs []runtime.Object, overlay string) {
	mwc, ok := find(objs, "canary-router", func(m *admissionregv1.MutatingWebhookConfiguration) string { return m.Name })
	if !ok {
		t.Fatal("no MutatingWebhookConfiguration canary-router")
	}
	// The apiserver calls mutating configurations in name order; Istio's
	// object selectors must see the label the router adds.
	for _, istio := range []string{"istio-revision-tag-default", "istio-sidecar-injector"} {
		if mwc.Name >= istio {
			t.Errorf("MutatingWebhookConfiguration %q does not sort before %q", mwc.Name, istio)
		}
	}
	var sawPods bool
	for _, wh := range mwc.Webhooks {
		common(t, wh.Name, wh.SideEffects, wh.TimeoutSeconds, wh.AdmissionReviewVersions, wh.NamespaceSelector)
		if wh.ReinvocationPolicy == nil || *wh.ReinvocationPolicy != admissionregv1.NeverReinvocationPolicy {
			t.Errorf("%s: reinvocationPolicy %v, want Never", wh.Name, wh.ReinvocationPolicy)
		}
		switch wh.Name {
		case "namespaces.canary-router.io":
			if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregv1.Ignore {
				t.Errorf("%s: failurePolicy %v, want Ignore (a namespace the router missed keeps Istio's default)", wh.Name, wh.FailurePolicy)
			}
		case "pods.canary-router.io":
			sawPods = true
			if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregv1.Fail {
				t.Errorf("%s: failurePolicy %v, want Fail (an unrouted pod would run without a sidecar)", wh.Name, wh.FailurePolicy)
			}
			if !hasRequirement(wh.NamespaceSelector, "canary-router.io/injection", metav1.LabelSelectorOpIn, "enabled") {
				t.Errorf("%s: namespaceSelector does not require canary-router.io/injection=enabled", wh.Name)
			}
			var names []string
			for _, mc := range wh.MatchConditions {
				names = append(names, mc.Name)
			}
			if !slices.Equal(names, podMatchConditions) {
				t.Errorf("%s: matchConditions %v, want %v", wh.Name, names, podMatchConditions)
			}
			for _, mc := range wh.MatchConditions {
				if strings.Contains(mc.Expression, "istio.io/rev") {
					t.Errorf("%s: matchCondition %s reads istio.io/rev: pinned pods must reach the router", wh.Name, mc.Name)
				}
			}
			// The injection check takes a namespace the pod webhook saw as
			// carrying none of these (nsview.Selected).
			for _, key := range nsview.RuledOut() {
				if !hasRequirement(wh.NamespaceSelector, key, metav1.LabelSelectorOpDoesNotExist) {
					t.Errorf("%s: namespaceSelector does not require %s to be absent, which nsview.Selected assumes", wh.Name, key)
				}
			}
		default:
			t.Errorf("unexpected webhook %s", wh.Name)
		}
	}
	// Every overlay keeps the pod webhook, namespace granularity too: there
	// it sees only pods of opted-in namespaces not routed yet, and refuses
	// them until the namespace reconciler routes the namespace.
	if !sawPods {
		t.Errorf("%s: no pod webhook: pods would never be routed, and in namespace granularity a namespace not routed yet would admit pods without a sidecar", overlay)
	}

	vwc, ok := find(objs, "canary-router", func(v *admissionregv1.ValidatingWebhookConfiguration) string { return v.Name })
	if !ok {
		t.Fatal("no ValidatingWebhookConfiguration canary-router")
	}
	for _, wh := range vwc.Webhooks {
		if wh.NamespaceSelector == nil || wh.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "canary-router-system" {
			t.Errorf("%s: namespaceSelector %v, want the router's namespace only", wh.Name, wh.NamespaceSelector)
		}
		if wh.SideEffects == nil || *wh.SideEffects != admissionregv1.SideEffectClassNone {
			t.Errorf("%s: sideEffects %v, want None", wh.Name, wh.SideEffects)
		}
		if len(wh.MatchConditions) != 1 || wh.MatchConditions[0].Expression != "object.metadata.name == 'canary-router-policy'" {
			t.Errorf("%s: matchConditions %v, want the policy ConfigMap only", wh.Name, wh.MatchConditions)
		}
	}

	pdb, ok := find(objs, "canary-router", func(p *policyv1.PodDisruptionBudget) string { return p.Name })
	if !ok || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Error("no PodDisruptionBudget canary-router with minAvailable >= 1")
	}
}

// common checks what every mutating webhook must have.
func common(t *testing.T, name string, se *admissionregv1.SideEffectClass, timeout *int32, versions []string, ns *metav1.LabelSelector) {
	t.Helper()
	if se == nil || *se != admissionregv1.SideEffectClassNone {
		t.Errorf("%s: sideEffects %v, want None (dry-run requests must reach it)", name, se)
	}
	if timeout == nil || *timeout > 5 {
		t.Errorf("%s: timeoutSeconds %v, want at most 5", name, timeout)
	}
	if !slices.Equal(versions, []string{"v1"}) {
		t.Errorf("%s: admissionReviewVersions %v, want [v1]", name, versions)
	}
	if !hasRequirement(ns, "kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn, neverMatched...) {
		t.Errorf("%s: namespaceSelector does not exclude %v", name, neverMatched)
	}
}

// hasRequirement reports whether sel has a requirement on key with op
// whose values include every one of values.
func hasRequirement(sel *metav1.LabelSelector, key string, op metav1.LabelSelectorOperator, values ...string) bool {
	if sel == nil {
		return false
	}
	for _, r := range sel.MatchExpressions {
		if r.Key != key || r.Operator != op {
			continue
		}
		all := true
		for _, v := range values {
			all = all && slices.Contains(r.Values, v)
		}
		if all {
			return true
		}
	}
	return false
}

// checkRBAC holds the rules to least privilege in shape; test/install
// compares the effective permissions with the exact expected list.
func checkRBAC(t *testing.T, objs []runtime.Object) {
	writes := []string{"create", "update", "patch", "delete", "deletecollection", "*"}
	for _, o := range objs {
		var rules []rbacv1.PolicyRule
		var kind, name string
		switch r := o.(type) {
		case *rbacv1.ClusterRole:
			rules, kind, name = r.Rules, "ClusterRole", r.Name
		case *rbacv1.Role:
			rules, kind, name = r.Rules, "Role", r.Namespace+"/"+r.Name
		default:
			continue
		}
		for _, rule := range rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
				t.Errorf("%s %s: wildcard in %+v", kind, name, rule)
			}
			if kind == "ClusterRole" && slices.Contains(rule.Resources, "secrets") {
				t.Errorf("%s %s: Secrets granted cluster-wide", kind, name)
			}
			for _, res := range rule.Resources {
				if res != "mutatingwebhookconfigurations" && res != "validatingwebhookconfigurations" {
					continue
				}
				for _, v := range rule.Verbs {
					if slices.Contains(writes, v) && (v == "create" || len(rule.ResourceNames) == 0) {
						t.Errorf("%s %s: %s on %s not limited to the router's own configuration", kind, name, v, res)
					}
				}
			}
		}
	}
}

// checkNoPolicy keeps the policy out of the install: a re-apply (an
// upgrade, a GitOps sync, a server-side apply with --force-conflicts)
// would overwrite the policy in force and undo a rollout (issue 13, item 5).
func checkNoPolicy(t *testing.T, objs []runtime.Object) {
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == policyConfigMap {
			t.Errorf("ConfigMap %s/%s is in the install: re-applying it would reset the policy in force; ship it in deploy/policy/ instead",
				cm.Namespace, cm.Name)
		}
	}
}
