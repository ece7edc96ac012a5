package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/test/wiretest"
)

const testPolicy = `granularity: workload
seed: unit-test
targets:
  - revision: stable
    weight: 70
  - revision: canary
    weight: 30
`

// fixture is an Admitter with a fresh registry and a fixed draw.
type fixture struct {
	admitter *Admitter
	store    *inforce.Store
	metrics  *Metrics
	reg      *prometheus.Registry
}

func newFixture(t testing.TB, policyDoc string) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	store := inforce.NewStore(func() time.Time { return time.Unix(1700000000, 0) }, m.PolicyApplied, m.PolicyRejected)
	if policyDoc != "" {
		if _, err := store.Apply([]byte(policyDoc), "test"); err != nil {
			t.Fatal(err)
		}
	}
	a := NewAdmitter(AdmitterConfig{Store: store, Metrics: m, Log: zap.NewNop(), Draw: func() uint64 { return 1 << 62 }, OwnNamespace: "canary-router-system"})
	return &fixture{admitter: a, store: store, metrics: m, reg: reg}
}

// reviewBody and deploymentPod are shared with the wire format's tests.
var (
	reviewBody    = wiretest.ReviewBody
	deploymentPod = wiretest.DeploymentPod
)

// post sends body to h and decodes the AdmissionReview it answers with; a
// response that is not a well-formed AdmissionReview fails the test.
func post(t *testing.T, h http.Handler, body []byte, contentType string) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	code, resp, err := serveReview(h, body, contentType)
	if err != nil {
		t.Fatal(err)
	}
	return code, resp
}

// serveReview is post for any goroutine: the failure is returned.
func serveReview(h http.Handler, body []byte, contentType string) (int, *admissionv1.AdmissionResponse, error) {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		return 0, nil, fmt.Errorf("response is not JSON: %v: %q", err, rec.Body.String())
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		return 0, nil, fmt.Errorf("response is not an AdmissionReview: %s", rec.Body.String())
	}
	return rec.Code, out.Response, nil
}

// applyPatch applies resp's patch to obj the way kube-apiserver does and
// decodes the result into out.
func applyPatch(t *testing.T, obj runtime.Object, resp *admissionv1.AdmissionResponse, out any) {
	t.Helper()
	raw, _ := json.Marshal(obj)
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("patch %s does not decode: %v", resp.Patch, err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatalf("patch %s does not apply: %v", resp.Patch, err)
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}

// onlyMetadataPaths fails when a patch touches anything but labels and
// annotations.
func onlyMetadataPaths(t *testing.T, patch []byte) {
	t.Helper()
	if len(patch) == 0 {
		return
	}
	var ops []struct{ Path string }
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	for _, op := range ops {
		if !metadataPath(op.Path, "/metadata/labels") && !metadataPath(op.Path, "/metadata/annotations") {
			t.Errorf("patch touches %s", op.Path)
		}
	}
}

// metadataPath reports whether path is the map at base or one of its keys;
// /metadata/labelsX is neither.
func metadataPath(path, base string) bool {
	return path == base || strings.HasPrefix(path, base+"/")
}
