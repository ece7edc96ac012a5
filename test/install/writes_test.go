package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/canary-router/canary-router/test/harness"
)

// write is one request tried under an identity, always as a server-side
// dry run: admission runs in full and nothing is stored.
type write struct {
	name string
	do   func(ctx context.Context, c kubernetes.Interface, dry []string) error
	// refusal is a part of the ValidatingAdmissionPolicy's message; ""
	// means the write must be allowed.
	refusal string
}

// checkWritePolicies tries, with the router's own token, the writes its
// code makes (allowed) and what a stolen token would try (refused by the
// ValidatingAdmissionPolicies of deploy/base/admission-policies.yaml,
// although RBAC allows each verb); then the same for an operator bound
// to deploy/operator/rollout-operator.yaml.
func checkWritePolicies(t *testing.T, ctx context.Context, token, certMode, suffix string) {
	admin := env.Cluster.Client
	managed := env.CreateNamespace(t, "writes-managed-"+suffix, map[string]string{"canary-router.io/injection": "enabled"}).Name
	unmanaged := env.CreateNamespace(t, "writes-unmanaged-"+suffix, nil).Name
	// No replicas: the writes are about the workload objects, not pods.
	for _, ns := range []string{managed, unmanaged, "kube-system"} {
		env.CreateDeployment(t, harness.Deployment(ns, "writes-app", 0))
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = admin.AppsV1().Deployments("kube-system").Delete(ctx, "writes-app", metav1.DeleteOptions{})
		_ = admin.CoreV1().Namespaces().Delete(ctx, managed, metav1.DeleteOptions{})
		_ = admin.CoreV1().Namespaces().Delete(ctx, unmanaged, metav1.DeleteOptions{})
	})
	// The migration writer's own patch (controller/migrate restartPatch).
	restart := `{"metadata":{"annotations":{"canary-router.io/migrated":"d1"}},"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`
	patchDeploy := func(ns, patch string) func(context.Context, kubernetes.Interface, []string) error {
		return func(ctx context.Context, c kubernetes.Interface, dry []string) error {
			_, err := c.AppsV1().Deployments(ns).Patch(ctx, "writes-app", types.MergePatchType, []byte(patch), metav1.PatchOptions{DryRun: dry})
			return err
		}
	}
	patchNS := func(ns, patch string) func(context.Context, kubernetes.Interface, []string) error {
		return func(ctx context.Context, c kubernetes.Interface, dry []string) error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{DryRun: dry})
			return err
		}
	}
	createCM := func(name string, data map[string]string) func(context.Context, kubernetes.Interface, []string) error {
		return func(ctx context.Context, c kubernetes.Interface, dry []string) error {
			_, err := c.CoreV1().ConfigMaps(routerNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data},
				metav1.CreateOptions{DryRun: dry})
			return err
		}
	}
	router := []write{
		{name: "restart a Deployment in a managed namespace", do: patchDeploy(managed, restart)},
		{name: "change a container image", do: patchDeploy(managed, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil:latest"}]}}}}`),
			refusal: "may change only the restart of a workload"},
		{name: "scale a Deployment", do: patchDeploy(managed, `{"spec":{"replicas":3}}`), refusal: "may change only the restart of a workload"},
		{name: "add a pod template label", do: patchDeploy(managed, `{"spec":{"template":{"metadata":{"labels":{"x":"y"}}}}}`),
			refusal: "may change only the restart of a workload"},
		{name: "label a Deployment", do: patchDeploy(managed, `{"metadata":{"labels":{"x":"y"}}}`), refusal: "may change only its own canary-router.io/ annotations"},
		{name: "restart a kube-system Deployment", do: patchDeploy("kube-system", restart), refusal: "never changes workloads in kube-system"},
		{name: "restart a Deployment in an unmanaged namespace", do: patchDeploy(unmanaged, restart), refusal: "only in namespaces it manages"},
		{name: "relabel a managed namespace", do: patchNS(managed, `{"metadata":{"labels":{"istio.io/rev":"stable"},"annotations":{"canary-router.io/decision":"{}"}}}`)},
		{name: "convert a namespace from istio-injection", do: patchNS(unmanaged, `{"metadata":{"labels":{"istio-injection":null,"canary-router.io/injection":"enabled"}}}`)},
		{name: "add another label to a namespace", do: patchNS(managed, `{"metadata":{"labels":{"team":"evil"}}}`), refusal: "may change only a namespace's istio.io/rev"},
		{name: "label kube-system for injection", do: patchNS("kube-system", `{"metadata":{"labels":{"istio-injection":"enabled"}}}`),
			refusal: "never changes namespace kube-system"},
		{name: "create the policy", do: createCM("canary-router-policy", map[string]string{"policy.yaml": "{}"}), refusal: "may create only its status object"},
	}
	if certMode == certSelfManaged {
		router = append(router, write{name: "widen its own webhook's namespaceSelector to every namespace", refusal: "only the caBundle of its own webhooks",
			do: func(ctx context.Context, c kubernetes.Interface, dry []string) error {
				_, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, webhookConfigName, types.JSONPatchType,
					[]byte(`[{"op":"replace","path":"/webhooks/0/namespaceSelector","value":{}}]`), metav1.PatchOptions{DryRun: dry})
				return err
			}})
	}
	cfg := &rest.Config{Host: env.Cluster.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: env.Cluster.CA.CertPEM}}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	router = append(router, argoRolloutWrites(t, ctx, cfg, managed)...)
	tryWrites(t, ctx, routerUser, sa, router)

	// The operator: the status object must exist for a patch (the CLI
	// creates it when absent, with command keys only).
	if _, err := admin.CoreV1().ConfigMaps(routerNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "canary-router-status"}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	patchStatus := func(data string) func(context.Context, kubernetes.Interface, []string) error {
		return func(ctx context.Context, c kubernetes.Interface, dry []string) error {
			_, err := c.CoreV1().ConfigMaps(routerNamespace).Patch(ctx, "canary-router-status", types.MergePatchType, []byte(`{"data":`+data+`}`),
				metav1.PatchOptions{DryRun: dry})
			return err
		}
	}
	const weights = `{"rollout.weights":"{\"targets\":[{\"revision\":\"canary\",\"weight\":100}]}"}`
	operator := []write{
		{name: "pause the rollout", do: patchStatus(`{"rollout.paused":"true","rollout.pauseReason":"test"}`)},
		{name: "promote", do: patchStatus(`{"rollout.request":"promote/2026-01-01T00:00:00Z"}`)},
		{name: "resume the migration", do: patchStatus(`{"migration.paused":"false"}`)},
		{name: "set the weights in force", do: patchStatus(weights), refusal: "only the command keys of canary-router-status"},
		{name: "rewrite the rollout's progress", do: patchStatus(`{"rollout":"{}"}`), refusal: "only the command keys of canary-router-status"},
		{name: "create the policy", do: createCM("canary-router-policy", map[string]string{"policy.yaml": "{}"}), refusal: "takes the right to update it"},
	}
	kubeconfig := operatorKubeconfig(t, ctx)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	op, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	tryWrites(t, ctx, "the rollout operator", op, operator)

	// The CLI's commands work for the operator under the policy, the
	// first one creating the status object (command keys only).
	if err := admin.CoreV1().ConfigMaps(routerNamespace).Delete(ctx, "canary-router-status", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"rollout", "pause"}, {"rollout", "resume"}, {"rollout", "promote"}, {"rollout", "abort"},
		{"rollout", "retry"}, {"migrate", "pause"}, {"migrate", "resume"}, {"rollout", "status"}} {
		out, err := exec.CommandContext(ctx, env.Bin, append(args, "--kubeconfig", kubeconfig)...).CombinedOutput()
		if err != nil {
			t.Errorf("canary-router %s as the operator: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("RESULT write-policy the rollout operator: canary-router %s: ok", strings.Join(args, " "))
		}
	}
	// Whoever may update the policy may set weights there anyway: the
	// status object is not closed to them.
	tryWrites(t, ctx, "cluster-admin", admin, []write{{name: "set the weights in force", do: patchStatus(weights)}})
}

// tryWrites runs each write as a dry run and checks the verdict. The API
// server loads new policies asynchronously, so a refusal is waited for.
func tryWrites(t *testing.T, ctx context.Context, who string, c kubernetes.Interface, writes []write) {
	t.Helper()
	dry := []string{metav1.DryRunAll}
	for _, w := range writes {
		var err error
		if w.refusal == "" {
			if err = w.do(ctx, c, dry); err != nil {
				t.Errorf("%s: %s: refused: %v", who, w.name, err)
			} else {
				t.Logf("RESULT write-policy %s: %s: allowed", who, w.name)
			}
			continue
		}
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			err = w.do(ctx, c, dry)
			return err != nil && strings.Contains(err.Error(), w.refusal), nil
		})
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), w.refusal) {
			t.Errorf("%s: %s: got %v, want Forbidden mentioning %q", who, w.name, err, w.refusal)
			continue
		}
		t.Logf("RESULT write-policy %s: %s: refused: %v", who, w.name, err)
	}
}

// operatorKubeconfig is a ServiceAccount bound only to the documented
// operator Role (deploy/operator/rollout-operator.yaml).
func operatorKubeconfig(t *testing.T, ctx context.Context) string {
	t.Helper()
	kubectl(t, ctx, "apply", "-f", env.deploy+"/operator/rollout-operator.yaml")
	path, _, err := env.ServiceAccountKubeconfig(ctx, routerNamespace, "writes-operator")
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	kubectl(t, ctx, "-n", routerNamespace, "create", "rolebinding", "writes-operator",
		"--role=canary-router-rollout-operator", "--serviceaccount="+routerNamespace+":writes-operator")
	return path
}

// rolloutCRD stands in for Argo Rollouts' CRD: only the group, kind and
// an open schema matter to the policy.
const rolloutCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouts.argoproj.io
spec:
  group: argoproj.io
  names: {kind: Rollout, listKind: RolloutList, plural: rollouts, singular: rollout}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// argoRolloutWrites installs the Rollout CRD and a Rollout in ns, and
// returns the writes to try on it: the restart `kubectl argo rollouts
// restart` makes (spec.restartAt, controller/migrate rolloutRestartPatch)
// and a replica change.
func argoRolloutWrites(t *testing.T, ctx context.Context, cfg *rest.Config, ns string) []write {
	t.Helper()
	crd := filepath.Join(t.TempDir(), "rollout-crd.yaml")
	if err := os.WriteFile(crd, []byte(rolloutCRD), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, ctx, "apply", "-f", crd)
	kubectl(t, ctx, "wait", "--for=condition=Established", "--timeout=30s", "-f", crd)
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	admin, err := dynamic.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	ro := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "writes-rollout", "namespace": ns},
		"spec": map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "app:1"}}}}}}}
	if _, err := admin.Resource(gvr).Namespace(ns).Create(ctx, ro, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	patch := func(p string) func(context.Context, kubernetes.Interface, []string) error {
		return func(ctx context.Context, _ kubernetes.Interface, dry []string) error {
			_, err := sa.Resource(gvr).Namespace(ns).Patch(ctx, "writes-rollout", types.MergePatchType, []byte(p), metav1.PatchOptions{DryRun: dry})
			return err
		}
	}
	return []write{
		{name: "restart an Argo Rollout", do: patch(`{"metadata":{"annotations":{"canary-router.io/migrated":"d1"}},"spec":{"restartAt":"2026-01-01T00:00:00Z"}}`)},
		{name: "scale an Argo Rollout", do: patch(`{"spec":{"replicas":5}}`), refusal: "may change only the restart of a workload"},
		{name: "change an Argo Rollout's image", do: patch(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil"}]}}}}`),
			refusal: "may change only the restart of a workload"},
	}
}
