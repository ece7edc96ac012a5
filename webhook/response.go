package webhook

import (
	"encoding/json"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var jsonPatchType = admissionv1.PatchTypeJSONPatch

// allowed admits the object unchanged.
func allowed(uid string, warnings []string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: true, Warnings: warnings}
}

// patched admits the object with a JSON Patch; an empty patch admits it
// unchanged.
func patched(uid string, patch []byte, warnings []string) *admissionv1.AdmissionResponse {
	resp := allowed(uid, warnings)
	if len(patch) > 0 {
		resp.Patch = patch
		resp.PatchType = &jsonPatchType
	}
	return resp
}

// denied refuses the request with an HTTP-style code and a message the
// user sees in kubectl's output.
func denied(uid string, code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		UID:     types.UID(uid),
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    code,
			Reason:  reasonFor(code),
			Message: msg,
		},
	}
}

func reasonFor(code int32) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusRequestEntityTooLarge:
		return metav1.StatusReasonRequestEntityTooLarge
	case http.StatusUnsupportedMediaType:
		return metav1.StatusReasonUnsupportedMediaType
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	case http.StatusInternalServerError:
		return metav1.StatusReasonInternalError
	}
	return metav1.StatusReasonUnknown
}

// writeResponse sends resp inside an AdmissionReview. A refusal of a
// malformed request also carries its code as the HTTP status, so a caller
// that only looks at the status line still sees a 4xx; an admission
// decision (allowed or denied by policy) is always HTTP 200, as the
// apiserver expects.
func writeResponse(w http.ResponseWriter, httpStatus int, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	}
	body, err := json.Marshal(&out)
	if err != nil {
		// Every field above is a plain string, bool or byte slice.
		http.Error(w, "encoding admission response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
