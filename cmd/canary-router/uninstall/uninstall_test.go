package uninstall

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/istio/istiotest"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlanNamespaces(t *testing.T) {
	configs := []istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
		{Name: "istio-revision-tag-prod", Rev: "stable", Tag: "prod"},
	}
	both := istiotest.State(configs, "stable", "canary")
	canaryDown := istiotest.State(configs, "stable")
	optIn := map[string]string{policy.LabelOptIn: "enabled"}
	split := mustPolicy(t, "granularity: pod\ntargets: [{revision: canary, weight: 30}, {revision: prod, weight: 70}]\n")
	pods := func(pairs ...any) []podview.RevisionCount {
		var out []podview.RevisionCount
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, podview.RevisionCount{Routed: pairs[i].(string), Injected: pairs[i].(string), Pods: pairs[i+1].(int)})
		}
		return out
	}
	tests := []struct {
		name     string
		state    *istio.State
		pol      *policy.Policy
		revision string
		ns       Namespace
		want     namespaceStep
	}{
		{name: "most pods decide", state: both, pol: split,
			ns: Namespace{Labels: optIn, Pods: pods("canary", 3, "stable", 1)},
			want: namespaceStep{Label: "istio.io/rev", Value: "canary", SetLabel: true, RemoveOptIn: true, Why: "3 of 4 injected pods run on it",
				Notes: []string{"1 live pods on other revisions (stable: 1) move to canary when restarted"}}},
		{name: "no pods: the policy's heaviest target", state: both, pol: split, ns: Namespace{Labels: optIn},
			want: namespaceStep{Label: "istio.io/rev", Value: "prod", SetLabel: true, RemoveOptIn: true, Why: "the policy's heaviest available target (weight 70)"}},
		{name: "most pods on a revision whose istiod is down", state: canaryDown, pol: split,
			ns: Namespace{Labels: optIn, Pods: pods("canary", 3)},
			want: namespaceStep{Label: "istio.io/rev", Value: "prod", SetLabel: true, RemoveOptIn: true, Why: "the policy's heaviest available target (weight 70)",
				Notes: []string{"3 live pods on other revisions (canary: 3) move to prod when restarted"}}},
		{name: "no pods, no policy, no default: the only revision", state: istiotest.State(configs[:1], "stable"), ns: Namespace{Labels: optIn},
			want: namespaceStep{Label: "istio.io/rev", Value: "stable", SetLabel: true, RemoveOptIn: true, Why: "the only Istio revision"}},
		{name: "no pods, no policy: the default tag", state: istiotest.State(append(configs, istio.Config{Name: "istio-revision-tag-default", Rev: "canary", Tag: "default"}), "stable", "canary"),
			ns:   Namespace{Labels: optIn},
			want: namespaceStep{Label: "istio.io/rev", Value: "default", SetLabel: true, RemoveOptIn: true, Why: "Istio's default revision"}},
		{name: "--revision", state: both, pol: split, revision: "stable", ns: Namespace{Labels: optIn, Pods: pods("canary", 3)},
			want: namespaceStep{Label: "istio.io/rev", Value: "stable", SetLabel: true, RemoveOptIn: true, Why: "--revision",
				Notes: []string{"3 live pods on other revisions (canary: 3) move to stable when restarted"}}},
		{name: "nothing available", state: istiotest.State(configs), ns: Namespace{Labels: optIn, Pods: pods("canary", 3)},
			want: namespaceStep{RemoveOptIn: true, Problem: "no available Istio revision for namespace x (canary: Service istiod-canary in istio-system has no ready endpoints (EndpointSlices labelled kubernetes.io/service-name=istiod-canary)): pass --revision NAME"}},
		{name: "namespace granularity: keeps its revision", state: both, pol: split,
			ns:   Namespace{Labels: map[string]string{"istio.io/rev": "canary"}, Annotations: map[string]string{policy.AnnotationDecision: "{}"}},
			want: namespaceStep{Label: "istio.io/rev", Value: "canary", Why: "already on the namespace"}},
		{name: "a revision that no longer exists is replaced", state: both, pol: split,
			ns: Namespace{Labels: map[string]string{"istio.io/rev": "old", policy.LabelOptIn: "enabled"}},
			want: namespaceStep{Label: "istio.io/rev", Value: "prod", SetLabel: true, RemoveOptIn: true, Why: "the policy's heaviest available target (weight 70)",
				Notes: []string{"istio.io/rev=old names no live revision or tag: replaced"}}},
		{name: "stale pins are named", state: istiotest.State(append(configs, istio.Config{Name: "istio-sidecar-injector-old", Rev: "old"}), "stable", "canary", "old"), pol: split,
			ns: Namespace{Labels: optIn, Pods: []podview.RevisionCount{
				{Routed: "canary", Injected: "canary", Pods: 3},
				{Routed: "canary", Injected: "canary", Pinned: true, Pods: 1},
				{Routed: "gone", Pinned: true, Pods: 2},
				{Routed: "old", Injected: "old", Pinned: true, Pods: 1},
			}},
			want: namespaceStep{Label: "istio.io/rev", Value: "canary", SetLabel: true, RemoveOptIn: true, Why: "4 of 5 injected pods run on it",
				Notes: []string{"1 live pods on other revisions (old: 1) move to canary when restarted",
					"2 live pods pinned by their owners to gone, which no live revision or tag answers to",
					"1 live pods pinned by their owners to old, a revision the policy no longer routes to"}}},
		{name: "istio-injection wins", state: both, pol: split, ns: Namespace{Labels: map[string]string{"istio-injection": "enabled", policy.LabelOptIn: "enabled"}},
			want: namespaceStep{Label: "istio-injection", Value: "enabled", RemoveOptIn: true, Why: "already on the namespace; Istio's label wins"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ns.Name, tt.want.Namespace = "x", "x"
			got := planNamespaces(Input{State: tt.state, Policy: tt.pol, Revision: tt.revision, Namespaces: []Namespace{tt.ns}})
			if len(got) != 1 || !equalStep(got[0], tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalStep(a, b namespaceStep) bool {
	return a.Namespace == b.Namespace && a.Label == b.Label && a.Value == b.Value && a.SetLabel == b.SetLabel &&
		a.RemoveOptIn == b.RemoveOptIn && a.Why == b.Why && slices.Equal(a.Notes, b.Notes) && a.Problem == b.Problem
}

// routerInstall is what deploy/install.yaml leaves in a cluster that
// uninstall deletes, plus two managed namespaces and one pod.
func routerInstall() ([]runtime.Object, []runtime.Object) {
	partOf := map[string]string{"app.kubernetes.io/part-of": "canary-router"}
	objs := append(istiotest.InjectorObjects("stable"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-system", Labels: partOf}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-policy", Namespace: "canary-router-system"},
			Data: map[string]string{"policy.yaml": "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"}},
		&admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Labels: partOf}},
		&admissionregv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Labels: partOf}},
		&admissionregv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-secret-create", Labels: partOf}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Labels: partOf}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Labels: partOf}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Namespace: "istio-system", Labels: partOf}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "canary-router", Namespace: "canary-router-system", Labels: partOf}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{policy.LabelOptIn: "enabled"},
			Annotations: map[string]string{policy.AnnotationDecision: `{"reason":"policy"}`}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty", Labels: map[string]string{policy.LabelOptIn: "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Labels: map[string]string{"istio-injection": "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-opted-in", Labels: map[string]string{policy.LabelOptIn: "disabled"}}},
	)
	pod := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"istio.io/rev": "stable"},
			Annotations: map[string]string{"sidecar.istio.io/status": `{"revision":"stable"}`, "istio.io/rev": "stable"}}}
	return objs, []runtime.Object{pod}
}

func newUninstaller(t *testing.T, apply bool) (*uninstaller, *fake.Clientset, *bytes.Buffer) {
	objs, pods := routerInstall()
	client := fake.NewClientset(objs...)
	// The API server answers a SubjectAccessReview; the fake would store it.
	client.PrependReactor("create", "subjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: false}}, nil
	})
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	u := &uninstaller{client: client, meta: metadatafake.NewSimpleMetadataClient(scheme, pods...), out: &out, errOut: &out,
		c: Options{namespace: "canary-router-system", configMap: "canary-router-policy", istioNamespace: "istio-system", apply: apply}}
	return u, client, &out
}

func TestUninstallPlanChangesNothing(t *testing.T) {
	u, client, out := newUninstaller(t, false)
	if err := u.Run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("plan mode wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	for _, want := range []string{"shop                 set  istio.io/rev=stable (1 of 1 injected pods run on it)",
		"empty                set  istio.io/rev=stable (the policy's heaviest available target (weight 100))",
		"MutatingWebhookConfiguration canary-router", "Role istio-system/canary-router", "--apply"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "legacy") || strings.Contains(out.String(), "not-opted-in") || strings.Contains(out.String(), "someone-elses") {
		t.Errorf("plan touches what is not the router's:\n%s", out)
	}
}

// TestUninstallOrder checks the order that keeps every pod meshed:
// namespaces relabelled before the webhook configurations go, those
// before the router loses its bindings, and those before the router's
// namespace.
func TestUninstallOrder(t *testing.T) {
	u, client, out := newUninstaller(t, true)
	ctx := context.Background()
	if err := u.Run(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	writes := writesOf(client)
	want := []string{
		"patch empty", "patch shop",
		"delete mutatingwebhookconfigurations/canary-router", "delete validatingwebhookconfigurations/canary-router",
		"delete clusterrolebindings/canary-router",
		"delete namespaces/canary-router-system",
		"delete validatingadmissionpolicies/canary-router-secret-create",
		"delete clusterroles/canary-router", "delete roles/canary-router",
	}
	if !slices.Equal(writes, want) {
		t.Errorf("writes:\n  %s\nwant:\n  %s", strings.Join(writes, "\n  "), strings.Join(want, "\n  "))
	}
	for _, name := range []string{"shop", "empty"} {
		ns, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, optIn := ns.Labels[policy.LabelOptIn]
		_, dec := ns.Annotations[policy.AnnotationDecision]
		if ns.Labels["istio.io/rev"] != "stable" || optIn || dec {
			t.Errorf("namespace %s after uninstall: labels %v, annotations %v", name, ns.Labels, ns.Annotations)
		}
	}
	if _, err := client.RbacV1().ClusterRoles().Get(ctx, "someone-elses", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted a ClusterRole that is not the router's: %v", err)
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector-stable", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Error("uninstall deleted Istio's injector config")
	}

	// Run again: nothing left to do, and no error.
	out.Reset()
	if err := u.Run(ctx); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
}

func TestUninstallRefusesWithoutALiveRevision(t *testing.T) {
	u, client, out := newUninstaller(t, true)
	ctx := context.Background()
	// Istio gone: nothing can take the namespaces over.
	if err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "istio-sidecar-injector-stable", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	client.ClearActions()
	err := u.Run(ctx)
	if err == nil || !strings.Contains(out.String(), "PROBLEM") {
		t.Fatalf("got %v, want a refusal:\n%s", err, out)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("refused uninstall wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// TestUninstallKeepObjects is the Helm chart's pre-delete hook: the
// namespaces are relabelled, the webhooks and the router's bindings go,
// and nothing else is deleted (helm deletes it next, and the hook's own
// pod runs in the router's namespace).
func TestUninstallKeepObjects(t *testing.T) {
	u, client, out := newUninstaller(t, true)
	u.c.keepObjects = true
	ctx := context.Background()
	if err := u.Run(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	writes := writesOf(client)
	want := []string{
		"patch empty", "patch shop",
		"delete mutatingwebhookconfigurations/canary-router", "delete validatingwebhookconfigurations/canary-router",
		"delete clusterrolebindings/canary-router",
	}
	if !slices.Equal(writes, want) {
		t.Errorf("writes:\n  %s\nwant:\n  %s", strings.Join(writes, "\n  "), strings.Join(want, "\n  "))
	}
	if !strings.Contains(out.String(), "6. Leave the router's other objects (--keep-objects):") ||
		!strings.Contains(out.String(), "its other objects are left (--keep-objects)") {
		t.Errorf("output does not say the objects are left:\n%s", out)
	}
	if strings.Contains(out.String(), "The policy is deleted") || !strings.Contains(out.String(), "stays in namespace") {
		t.Errorf("with --keep-objects the plan must not say the policy is deleted:\n%s", out)
	}
}

// TestUninstallPlanDocument: -o json prints the plan as one document and
// nothing else on stdout.
func TestUninstallPlanDocument(t *testing.T) {
	u, _, out := newUninstaller(t, false)
	u.c.output = cmdutil.OutputJSON
	if err := u.Run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var plan map[string]any
	if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	for _, field := range []string{"apply", "namespaces", "webhooks", "bindings", "others", "problems"} {
		if _, ok := plan[field]; !ok {
			t.Errorf("plan lacks %q:\n%s", field, out)
		}
	}
	var doc Plan
	_ = json.Unmarshal(out.Bytes(), &doc)
	if len(doc.Namespaces) == 0 || doc.Namespaces[0].Name == "" || len(doc.Webhooks) == 0 || doc.Webhooks[0].Kind == "" {
		t.Errorf("plan %+v", doc)
	}
}

// writesOf lists the patches and deletes the fake clientset saw, in order.
func writesOf(client *fake.Clientset) []string {
	var writes []string
	for _, a := range client.Actions() {
		switch a := a.(type) {
		case k8stesting.PatchAction:
			writes = append(writes, "patch "+a.GetName())
		case k8stesting.DeleteAction:
			writes = append(writes, "delete "+a.GetResource().Resource+"/"+a.GetName())
		}
	}
	return writes
}
