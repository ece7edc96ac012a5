package harness

import (
	"context"
	"fmt"
	"path/filepath"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

// PolicyConfigMap is the ConfigMap, in localrouter.Namespace, whose
// policy.yaml a router started with --policy-configmap watches.
const PolicyConfigMap = "canary-router-policy"

// PolicyYAML renders a two-target policy, stable and canary.
func PolicyYAML(granularity, seed string, stable, canary float64) string {
	return fmt.Sprintf("granularity: %s\nseed: %s\ntargets:\n  - revision: stable\n    weight: %g\n  - revision: canary\n    weight: %g\n",
		granularity, seed, stable, canary)
}

// WritePolicy creates or updates the policy ConfigMap.
func (e *Env) WritePolicy(ctx context.Context, doc string) error {
	cms := e.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: PolicyConfigMap, Namespace: localrouter.Namespace}, Data: map[string]string{"policy.yaml": doc}}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
		return nil
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("writing the policy ConfigMap: %w", err)
	}
	return nil
}

// PolicyValidator is the validating webhook for the policy ConfigMap as
// deploy/ registers it (fails closed, only that ConfigMap), calling the
// router at url.
func PolicyValidator(url string, caBundle []byte) *admissionregv1.ValidatingWebhookConfiguration {
	fail := admissionregv1.Fail
	none := admissionregv1.SideEffectClassNone
	timeout := int32(5)
	return &admissionregv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: localrouter.WebhookConfig},
		Webhooks: []admissionregv1.ValidatingWebhook{{
			Name:         "policy.canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create, admissionregv1.Update},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": localrouter.Namespace}},
			MatchConditions: []admissionregv1.MatchCondition{{
				Name: "policy-configmap", Expression: "object.metadata.name == '" + PolicyConfigMap + "'",
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

// StartIstio starts the stand-in Istio injectors and registers revisions
// with ready istiods and the default tag on defaultRev; they stop when the
// suite ends.
func (e *Env) StartIstio(ctx context.Context, defaultRev string, revisions ...string) (*fakeistio.Injectors, error) {
	inj, err := fakeistio.Start(e.Cluster.CA)
	if err != nil {
		return nil, fmt.Errorf("starting stand-in injectors: %w", err)
	}
	e.Cleanup(inj.Close)
	if err := inj.Install(ctx, e.Cluster.Client, defaultRev, revisions...); err != nil {
		return nil, err
	}
	return inj, nil
}

// CreateNamespaceObject creates a namespace outside a test, during Setup.
func (e *Env) CreateNamespaceObject(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := e.Cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// ServiceAccountKubeconfig creates ServiceAccount ns/name, mints it a
// one-hour token and writes a kubeconfig carrying only that token to
// Dir/<name>.kubeconfig: the identity a router has in a pod.
func (e *Env) ServiceAccountKubeconfig(ctx context.Context, ns, name string) (path, token string, err error) {
	sas := e.Cluster.Client.CoreV1().ServiceAccounts(ns)
	if _, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return "", "", err
	}
	expiry := int64(3600)
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(e.Dir, name+".kubeconfig")
	user := "system:serviceaccount:" + ns + ":" + name
	return path, tr.Status.Token, e.Cluster.WriteTokenKubeconfig(path, user, tr.Status.Token, "")
}
