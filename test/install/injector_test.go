package install

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
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/cluster"
)

// revision is the Istio revision the starter policy routes to: `default`,
// which a non-revisioned Istio install serves itself.
const revision = "default"

// startInjector serves a stand-in for Istio's sidecar injector and
// registers it the way a non-revisioned Istio install does: config
// istio-sidecar-injector with the rev.* webhooks for revision "default"
// and the default revision's namespace and object webhooks, with Istio's
// exact selectors (DESIGN section 1). It marks an injected pod as Istio
// does, so a test reads which revision injected it.
func startInjector(ctx context.Context, c *cluster.Cluster) (stop func(), err error) {
	certPEM, keyPEM, err := c.CA.IssueServing("istiod", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
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
	url := "https://" + ln.Addr().String() + "/inject/" + revision
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, injectorConfig(url, c.CA.CertPEM), metav1.CreateOptions{}); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return func() { _ = srv.Close() }, nil
}

// inject adds what Istio's injector adds that matters here: the status
// annotation with the revision, annotation istio.io/rev, and a proxy
// container.
func inject(w http.ResponseWriter, r *http.Request) {
	rev := strings.TrimPrefix(r.URL.Path, "/inject/")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(w, "bad pod", http.StatusBadRequest)
		return
	}
	var ops []map[string]any
	if pod.Metadata.Annotations == nil {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
	}
	ops = append(ops,
		map[string]any{"op": "add", "path": "/metadata/annotations/sidecar.istio.io~1status",
			"value": fmt.Sprintf(`{"containers":["istio-proxy"],"revision":%q}`, rev)},
		map[string]any{"op": "add", "path": "/metadata/annotations/istio.io~1rev", "value": rev},
		map[string]any{"op": "add", "path": "/spec/containers/-",
			"value": map[string]string{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:" + rev}},
	)
	patch, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt}
	review.Request = nil
	out, _ := json.Marshal(review)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func injectorConfig(url string, caBundle []byte) *admissionregv1.MutatingWebhookConfiguration {
	fail, never, none, timeout := admissionregv1.Fail, admissionregv1.NeverReinvocationPolicy, admissionregv1.SideEffectClassNone, int32(10)
	hook := func(name string, nsSel, objSel []metav1.LabelSelectorRequirement) admissionregv1.MutatingWebhook {
		return admissionregv1.MutatingWebhook{
			Name:         name,
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: nsSel},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: objSel},
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &never,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	req := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	notFalse := req("sidecar.istio.io/inject", metav1.LabelSelectorOpNotIn, "false")
	noRev, noInjection := req("istio.io/rev", metav1.LabelSelectorOpDoesNotExist), req("istio-injection", metav1.LabelSelectorOpDoesNotExist)
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Labels: map[string]string{"istio.io/rev": revision}},
		Webhooks: []admissionregv1.MutatingWebhook{
			hook("rev.namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req("istio.io/rev", metav1.LabelSelectorOpIn, revision), noInjection},
				[]metav1.LabelSelectorRequirement{notFalse}),
			hook("rev.object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{noRev, noInjection},
				[]metav1.LabelSelectorRequirement{notFalse, req("istio.io/rev", metav1.LabelSelectorOpIn, revision)}),
			hook("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req("istio-injection", metav1.LabelSelectorOpIn, "enabled")},
				[]metav1.LabelSelectorRequirement{notFalse}),
			hook("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{noInjection, noRev},
				[]metav1.LabelSelectorRequirement{req("sidecar.istio.io/inject", metav1.LabelSelectorOpIn, "true"), noRev}),
		},
	}
}

// istiodReady writes the EndpointSlice a running, ready istiod of a
// non-revisioned install has (Service istiod in istio-system): the router
// never routes to a revision whose istiod has no ready endpoint.
func istiodReady(ctx context.Context, c *cluster.Cluster) error {
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-stand-in", Namespace: "istio-system", Labels: map[string]string{
			discoveryv1.LabelServiceName: "istiod",
			// Not the EndpointSlice controller's: it leaves the slice alone.
			discoveryv1.LabelManagedBy: "canary-router-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.64.255.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	_, err := c.Client.DiscoveryV1().EndpointSlices("istio-system").Create(ctx, slice, metav1.CreateOptions{})
	return err
}
