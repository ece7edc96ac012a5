package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestAppendReviewMatchesEncodingJSON: the hand-built response is byte for
// byte what json.Marshal makes of the k8s.io/api types it replaces.
func TestAppendReviewMatchesEncodingJSON(t *testing.T) {
	odd := "a\"b\\c<d>&e\u2028f\u2029g\x00\x1f\b\f\n\r\t\x7f bad\xff\xc3 ok é 日本"
	patch := []byte(`[{"op":"add","path":"/metadata/labels/istio.io~1rev","value":"canary"}]`)
	cases := []struct {
		name string
		resp response
	}{
		{"allowed", allowed("uid-1", nil)},
		{"allowed with warnings", allowed("uid-1", []string{"one", odd, ""})},
		{"empty warnings", allowed("uid-1", []string{})},
		{"patched", patched("uid-1", patch, nil)},
		{"patched with warnings", patched("u", patch, []string{"fallback <here>"})},
		{"empty patch", patched("uid-1", nil, nil)},
		{"odd uid", allowed(odd, nil)},
		{"empty uid", denied("", http.StatusBadRequest, "empty")},
		{"no message", denied("uid-1", http.StatusBadRequest, "")},
		{"unknown code", denied("uid-1", 499, "teapot")},
		{"no code", denied("uid-1", 0, "x")},
	}
	for _, code := range []int32{400, 403, 413, 415, 405, 422, 500, 503} {
		cases = append(cases, struct {
			name string
			resp response
		}{http.StatusText(int(code)), denied("uid-1", code, odd)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := appendReview(nil, &c.resp)
			want, err := json.Marshal(admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Response: typed(&c.resp),
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("hand-built response\n got %s\nwant %s", got, want)
			}
		})
	}
}

// typed is resp as the k8s.io/api response the router used to build.
func typed(resp *response) *admissionv1.AdmissionResponse {
	out := &admissionv1.AdmissionResponse{UID: types.UID(resp.uid), Allowed: resp.allowed, Warnings: resp.warnings}
	if len(resp.patch) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		out.Patch, out.PatchType = resp.patch, &pt
	}
	if !resp.allowed {
		out.Result = &metav1.Status{Status: metav1.StatusFailure, Code: resp.code, Reason: reasonFor(resp.code), Message: resp.message}
	}
	return out
}
