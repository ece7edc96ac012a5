package faults

import (
	"context"
	"fmt"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/localrouter"
)

// webhookConfig names both webhook configurations, as deploy/ does.
const webhookConfig = "canary-router"

// registerWebhooks points the router's webhook configurations at r: the
// pod and namespace webhooks as deploy/ registers them (pods fail
// closed), and the policy ConfigMap validator (fails closed too). In
// self-managed mode the caBundle is left for r to fill in.
func registerWebhooks(ctx context.Context, r *router) error {
	adm := env.cluster.Client.AdmissionregistrationV1()
	mwc := localrouter.LoopbackConfig(r.port, r.caBundle)
	cur, err := adm.MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = adm.MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{})
	case err == nil:
		mwc.ResourceVersion = cur.ResourceVersion
		_, err = adm.MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering the MutatingWebhookConfiguration: %w", err)
	}
	vwc := policyValidator(r)
	curV, err := adm.ValidatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = adm.ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{})
	case err == nil:
		vwc.ResourceVersion = curV.ResourceVersion
		_, err = adm.ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering the ValidatingWebhookConfiguration: %w", err)
	}
	return nil
}

// policyValidator is the validating webhook for the policy ConfigMap, as
// deploy/ registers it.
func policyValidator(r *router) *admissionregv1.ValidatingWebhookConfiguration {
	fail := admissionregv1.Fail
	none := admissionregv1.SideEffectClassNone
	timeout := int32(5)
	url := r.url("/validate-policy")
	return &admissionregv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfig},
		Webhooks: []admissionregv1.ValidatingWebhook{{
			Name:         "policy.canary-router.io",
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: r.caBundle},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create, admissionregv1.Update},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": routerNamespace}},
			MatchConditions: []admissionregv1.MatchCondition{{
				Name: "policy-configmap", Expression: "object.metadata.name == '" + policyConfigMap + "'",
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}
