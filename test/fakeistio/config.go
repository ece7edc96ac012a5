package fakeistio

import (
	"encoding/json"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InjectorConfig renders the MutatingWebhookConfiguration Istio installs
// for revision rev: istio-sidecar-injector-<rev>, with the two rev.*
// webhooks. With tag != "" it renders the revision tag's config instead
// (istio-revision-tag-<tag>, matching istio.io/rev=<tag>). Revision
// "default" without a tag is a non-revisioned install
// (istio-sidecar-injector). The default revision (rev "default", or tag
// "default") also gets the namespace.* and object.* webhooks that answer
// istio-injection=enabled.
func InjectorConfig(baseURL string, caBundle []byte, rev, tag string) *admissionregv1.MutatingWebhookConfiguration {
	name, match := "istio-sidecar-injector-"+rev, rev
	labels := map[string]string{"istio.io/rev": rev}
	switch {
	case tag != "":
		name, match = "istio-revision-tag-"+tag, tag
		labels["istio.io/tag"] = tag
	case rev == "default":
		name = "istio-sidecar-injector"
	}
	url := baseURL + "/inject/" + rev
	hook := func(hookName string, nsSel, objSel []metav1.LabelSelectorRequirement) admissionregv1.MutatingWebhook {
		fail := admissionregv1.Fail
		never := admissionregv1.NeverReinvocationPolicy
		none := admissionregv1.SideEffectClassNone
		timeout := int32(10)
		return admissionregv1.MutatingWebhook{
			Name:                    hookName,
			ClientConfig:            admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregv1.RuleWithOperations{PodCreate()},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: nsSel},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: objSel},
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &never,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	notFalse := Req("sidecar.istio.io/inject", metav1.LabelSelectorOpNotIn, "false")
	noRev, noInjection := Req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist), Req("istio-injection", metav1.LabelSelectorOpDoesNotExist)
	hooks := []admissionregv1.MutatingWebhook{
		hook("rev.namespace.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{Req("istio.io/rev", metav1.LabelSelectorOpIn, match), noInjection},
			[]metav1.LabelSelectorRequirement{notFalse}),
		hook("rev.object.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{noRev, noInjection},
			[]metav1.LabelSelectorRequirement{notFalse, Req("istio.io/rev", metav1.LabelSelectorOpIn, match)}),
	}
	if tag == "default" || (tag == "" && rev == "default") {
		hooks = append(hooks,
			hook("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{Req("istio-injection", metav1.LabelSelectorOpIn, "enabled")},
				[]metav1.LabelSelectorRequirement{notFalse}),
			hook("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{noInjection, noRev},
				[]metav1.LabelSelectorRequirement{Req("sidecar.istio.io/inject", metav1.LabelSelectorOpIn, "true"), noRev}),
		)
	}
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks:   hooks,
	}
}

// Req is a label selector requirement.
func Req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

// PodCreate is the rule of every injector webhook: core/v1 pods, CREATE.
func PodCreate() admissionregv1.RuleWithOperations {
	return admissionregv1.RuleWithOperations{
		Operations: []admissionregv1.OperationType{admissionregv1.Create},
		Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}
}

// InjectedRevision reads which revision injected a pod the way Istio
// records it (docs/istio.md): annotation istio.io/rev, else the
// revision in sidecar.istio.io/status, else the pod label; no status
// annotation means not injected.
func InjectedRevision(p *corev1.Pod) string {
	status, ok := p.Annotations["sidecar.istio.io/status"]
	if !ok {
		return ""
	}
	if rev := p.Annotations["istio.io/rev"]; rev != "" {
		return rev
	}
	var s struct {
		Revision string `json:"revision"`
	}
	if json.Unmarshal([]byte(status), &s) == nil && s.Revision != "" {
		return s.Revision
	}
	return p.Labels["istio.io/rev"]
}
