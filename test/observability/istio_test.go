package observability

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

// A minimal stand-in for Istio, copied down from test/e2e: injectors
// registered with the selectors Istio's charts render (DESIGN section 1)
// that record an injection the way Istio >= 1.18 does, and istiod
// EndpointSlices for the router's health gate.

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

const istioNamespace = "istio-system"

// injectorSetup lists the injector configs: two revisions, the default
// tag on stable, and tag prod on canary.
var injectorSetup = []struct{ rev, tag string }{{"stable", ""}, {"canary", ""}, {"stable", "default"}, {"canary", "prod"}}

// installIstio serves the injectors on loopback, registers their configs
// and ready istiod endpoints for both revisions, and returns a stop func.
func installIstio(ctx context.Context, c *cluster.Cluster) (func(), error) {
	certPEM, keyPEM, err := c.CA.IssueServing("istiod", []string{"localhost"}, loopback)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(inject), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() { _ = srv.Close() }
	base := "https://" + ln.Addr().String()
	for _, s := range injectorSetup {
		mwc := injectorConfig(base, c.CA.CertPEM, s.rev, s.tag)
		if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
			stop()
			return nil, fmt.Errorf("registering %s: %w", mwc.Name, err)
		}
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istioNamespace}}, metav1.CreateOptions{}); err != nil {
		stop()
		return nil, err
	}
	for _, rev := range []string{"stable", "canary"} {
		ready := true
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev, Namespace: istioNamespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: "istiod-" + rev}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
		if _, err := c.Client.DiscoveryV1().EndpointSlices(istioNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			stop()
			return nil, fmt.Errorf("EndpointSlice of istiod-%s: %w", rev, err)
		}
	}
	return stop, nil
}

// inject serves /inject/<revision>: it marks the pod injected by that
// revision (status annotation with the revision, annotation istio.io/rev)
// and adds a proxy container.
func inject(w http.ResponseWriter, r *http.Request) {
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
	var ops []map[string]any
	if pod.Annotations == nil {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
	}
	ops = append(ops,
		map[string]any{"op": "add", "path": "/metadata/annotations/sidecar.istio.io~1status", "value": fmt.Sprintf(`{"containers":["istio-proxy"],"revision":%q}`, rev)},
		map[string]any{"op": "add", "path": "/metadata/annotations/istio.io~1rev", "value": rev},
		map[string]any{"op": "add", "path": "/spec/containers/-", "value": corev1.Container{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:" + rev}},
	)
	patch, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt}
	review.Request = nil
	out, _ := json.Marshal(review)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// injectorConfig renders the config Istio installs for revision rev
// (istio-sidecar-injector-<rev>), or with tag set the tag's
// (istio-revision-tag-<tag>); tag default adds the default webhooks.
func injectorConfig(baseURL string, caBundle []byte, rev, tag string) *admissionregv1.MutatingWebhookConfiguration {
	name, match := "istio-sidecar-injector-"+rev, rev
	labels := map[string]string{"istio.io/rev": rev}
	if tag != "" {
		name, match = "istio-revision-tag-"+tag, tag
		labels["istio.io/tag"] = tag
	}
	url := baseURL + "/inject/" + rev
	fail := admissionregv1.Fail
	never := admissionregv1.NeverReinvocationPolicy
	none := admissionregv1.SideEffectClassNone
	timeout := int32(10)
	hook := func(hookName string, nsSel, objSel []metav1.LabelSelectorRequirement) admissionregv1.MutatingWebhook {
		return admissionregv1.MutatingWebhook{
			Name:                    hookName,
			ClientConfig:            admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregv1.RuleWithOperations{rule("pods", admissionregv1.Create)},
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
	noRev, noInjection := req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)
	hooks := []admissionregv1.MutatingWebhook{
		hook("rev.namespace.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{req("istio.io/rev", metav1.LabelSelectorOpIn, match), noInjection},
			[]metav1.LabelSelectorRequirement{notFalse}),
		hook("rev.object.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{noRev, noInjection},
			[]metav1.LabelSelectorRequirement{notFalse, req("istio.io/rev", metav1.LabelSelectorOpIn, match)}),
	}
	if tag == "default" {
		hooks = append(hooks,
			hook("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req("istio-injection", metav1.LabelSelectorOpIn, "enabled")},
				[]metav1.LabelSelectorRequirement{notFalse}),
			hook("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{noInjection, noRev},
				[]metav1.LabelSelectorRequirement{req("sidecar.istio.io/inject", metav1.LabelSelectorOpIn, "true"), noRev}),
		)
	}
	return &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Webhooks: hooks}
}
