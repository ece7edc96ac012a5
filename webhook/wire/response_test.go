package wire

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
		resp Response
	}{
		{"allowed", Allowed("uid-1", nil)},
		{"allowed with warnings", Allowed("uid-1", []string{"one", odd, ""})},
		{"empty warnings", Allowed("uid-1", []string{})},
		{"patched", Patched("uid-1", patch, nil)},
		{"patched with warnings", Patched("u", patch, []string{"fallback <here>"})},
		{"empty patch", Patched("uid-1", nil, nil)},
		{"odd uid", Allowed(odd, nil)},
		{"empty uid", Denied("", http.StatusBadRequest, "empty")},
		{"no message", Denied("uid-1", http.StatusBadRequest, "")},
		{"unknown code", Denied("uid-1", 499, "teapot")},
		{"no code", Denied("uid-1", 0, "x")},
	}
	for _, code := range []int32{400, 403, 413, 415, 405, 422, 500, 503} {
		cases = append(cases, struct {
			name string
			resp Response
		}{http.StatusText(int(code)), Denied("uid-1", code, odd)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AppendReview(nil, &c.resp)
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
func typed(resp *Response) *admissionv1.AdmissionResponse {
	out := &admissionv1.AdmissionResponse{UID: types.UID(resp.UID), Allowed: resp.Allowed, Warnings: resp.Warnings}
	if len(resp.Patch) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		out.Patch, out.PatchType = resp.Patch, &pt
	}
	if !resp.Allowed {
		out.Result = &metav1.Status{Status: metav1.StatusFailure, Code: resp.Code, Reason: reasonFor(resp.Code), Message: resp.Message}
	}
	return out
}
