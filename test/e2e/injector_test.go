package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// injectors stands in for Istio's sidecar injectors: one handler per
// revision, registered with the exact selectors Istio's charts render
// (DESIGN section 1), marking each pod the way Istio records an injection.
type injectors struct {
	mu    sync.Mutex
	calls map[string]int // revision -> pods injected
}

func newInjectors() *injectors { return &injectors{calls: map[string]int{}} }

// ServeHTTP serves /inject/<revision>.
func (in *injectors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rev := strings.TrimPrefix(r.URL.Path, "/inject/")
	body, _ := io.ReadAll(r.Body)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(w, "bad pod", http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	in.calls[rev]++
	in.mu.Unlock()

	status := fmt.Sprintf(`{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":%q}`, rev)
	var ops []map[string]any
	if pod.Annotations == nil {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
	}
	ops = append(ops,
		map[string]any{"op": "add", "path": "/metadata/annotations/sidecar.istio.io~1status", "value": status},
		map[string]any{"op": "add", "path": "/metadata/annotations/istio.io~1rev", "value": rev},
		map[string]any{"op": "add", "path": "/spec/containers/-", "value": corev1.Container{
			Name: "istio-proxy", Image: "docker.io/istio/proxyv2:" + rev,
		}},
	)
	patch, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt}
	review.Request = nil
	out, _ := json.Marshal(review)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (in *injectors) injected(rev string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[rev]
}

// injectorConfig renders the MutatingWebhookConfiguration Istio installs
// for revision rev (istio-sidecar-injector-<rev>). With tag != "", it
// renders the revision tag's config instead (istio-revision-tag-<tag>), and
// tag "default" adds the default revision's two webhooks.
func injectorConfig(baseURL string, caBundle []byte, rev, tag string) *admissionregv1.MutatingWebhookConfiguration {
	name, match := "istio-sidecar-injector-"+rev, rev
	labels := map[string]string{"istio.io/rev": rev}
	if tag != "" {
		name, match = "istio-revision-tag-"+tag, tag
		labels["istio.io/tag"] = tag
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
			Rules:                   []admissionregv1.RuleWithOperations{podCreate()},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: nsSel},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: objSel},
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &never,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	notFalse := req("sidecar.istio.io/inject", metav1.LabelSelectorOpNotIn, "false")
	hooks := []admissionregv1.MutatingWebhook{
		hook("rev.namespace.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{req("istio.io/rev", metav1.LabelSelectorOpIn, match), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)},
			[]metav1.LabelSelectorRequirement{notFalse}),
		hook("rev.object.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)},
			[]metav1.LabelSelectorRequirement{notFalse, req("istio.io/rev", metav1.LabelSelectorOpIn, match)}),
	}
	if tag == "default" {
		hooks = append(hooks,
			hook("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req("istio-injection", metav1.LabelSelectorOpIn, "enabled")},
				[]metav1.LabelSelectorRequirement{notFalse}),
			hook("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req("istio-injection", metav1.LabelSelectorOpDoesNotExist), req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist)},
				[]metav1.LabelSelectorRequirement{req("sidecar.istio.io/inject", metav1.LabelSelectorOpIn, "true"), req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist)}),
		)
	}
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks:   hooks,
	}
}

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func podCreate() admissionregv1.RuleWithOperations {
	return admissionregv1.RuleWithOperations{
		Operations: []admissionregv1.OperationType{admissionregv1.Create},
		Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}
}
