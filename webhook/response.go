package webhook

import (
	"encoding/base64"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// response is the router's answer to one admission request: the fields of
// an admission/v1 AdmissionResponse the router sets.
type response struct {
	uid     string
	allowed bool
	// patch is a JSON Patch; empty admits the object unchanged.
	patch    []byte
	warnings []string
	// code and message describe a refusal (allowed false).
	code    int32
	message string
}

// allowed admits the object unchanged.
func allowed(uid string, warnings []string) response {
	return response{uid: uid, allowed: true, warnings: warnings}
}

// patched admits the object with a JSON Patch; an empty patch admits it
// unchanged.
func patched(uid string, patch []byte, warnings []string) response {
	return response{uid: uid, allowed: true, patch: patch, warnings: warnings}
}

// denied refuses the request with an HTTP-style code and a message the
// user sees in kubectl's output.
func denied(uid string, code int32, msg string) response {
	return response{uid: uid, code: code, message: msg}
}

func reasonFor(code int32) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusUnprocessableEntity:
		return metav1.StatusReasonInvalid
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

// appendReview appends resp wrapped in an admission.k8s.io/v1
// AdmissionReview, byte for byte what json.Marshal makes of the
// k8s.io/api types (a test holds it to that), without building them.
func appendReview(dst []byte, resp *response) []byte {
	dst = append(dst, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":`...)
	dst = appendJSONString(dst, resp.uid)
	if resp.allowed {
		dst = append(dst, `,"allowed":true`...)
	} else {
		dst = append(dst, `,"allowed":false,"status":{"metadata":{},"status":"Failure"`...)
		if resp.message != "" {
			dst = append(dst, `,"message":`...)
			dst = appendJSONString(dst, resp.message)
		}
		if reason := reasonFor(resp.code); reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = appendJSONString(dst, string(reason))
		}
		if resp.code != 0 {
			dst = append(dst, `,"code":`...)
			dst = strconv.AppendInt(dst, int64(resp.code), 10)
		}
		dst = append(dst, '}')
	}
	if len(resp.patch) > 0 {
		dst = append(dst, `,"patch":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, resp.patch)
		dst = append(dst, `","patchType":"JSONPatch"`...)
	}
	if len(resp.warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i, w := range resp.warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}"...)
}

// jsonContentType is shared by every response; net/http only reads it.
var jsonContentType = []string{"application/json"}

// writeResponse sends resp inside an AdmissionReview. A refusal of a
// malformed request also carries its code as the HTTP status, so a caller
// that only looks at the status line still sees a 4xx; an admission
// decision (allowed or denied by policy) is always HTTP 200, as the
// apiserver expects.
func writeResponse(w http.ResponseWriter, httpStatus int, resp *response) {
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendReview((*buf)[:0], resp)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(httpStatus)
	_, _ = w.Write(*buf)
}
