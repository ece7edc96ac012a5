package localrouter

import (
	"fmt"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LoopbackConfig is the router's MutatingWebhookConfiguration as deploy/
// registers it (name canary-router, so it sorts before every istio-*
// config; a namespace webhook that fails open; a pod webhook that fails
// closed, scoped to opted-in namespaces), pointed at a router listening on
// 127.0.0.1:port. Suites that run the router without applying deploy/ use
// it.
func LoopbackConfig(port int, caBundle []byte) *admissionregv1.MutatingWebhookConfiguration {
	never := admissionregv1.NeverReinvocationPolicy
	none := admissionregv1.SideEffectClassNone
	timeout := int32(5)
	ignore, fail := admissionregv1.Ignore, admissionregv1.Fail
	system := req("kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn, "kube-system", "kube-public", "kube-node-lease", Namespace)
	hook := func(name, path string, rule admissionregv1.RuleWithOperations, sel []metav1.LabelSelectorRequirement, policy *admissionregv1.FailurePolicyType) admissionregv1.MutatingWebhook {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, path)
		return admissionregv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregv1.RuleWithOperations{rule},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: sel},
			FailurePolicy:           policy,
			ReinvocationPolicy:      &never,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfig},
		Webhooks: []admissionregv1.MutatingWebhook{
			hook("namespaces.canary-router.io", "/mutate-namespaces", rule("namespaces", admissionregv1.Create, admissionregv1.Update),
				[]metav1.LabelSelectorRequirement{system}, &ignore),
			hook("pods.canary-router.io", "/mutate-pods", rule("pods", admissionregv1.Create), []metav1.LabelSelectorRequirement{
				req("canary-router.io/injection", metav1.LabelSelectorOpIn, "enabled"),
				req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist),
				req("istio-injection", metav1.LabelSelectorOpDoesNotExist),
				system,
			}, &fail),
		},
	}
}

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func rule(resource string, ops ...admissionregv1.OperationType) admissionregv1.RuleWithOperations {
	return admissionregv1.RuleWithOperations{
		Operations: ops,
		Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{resource}},
	}
}
