package wire

import (
	"encoding/base64"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Response is the router's answer to one admission request: the fields of
// an admission/v1 AdmissionResponse the router sets.
type Response struct {
	UID     string
	Allowed bool
	// Patch is a JSON Patch; empty admits the object unchanged.
	Patch    []byte
	Warnings []string
	// Code and message describe a refusal (allowed false).
	Code    int32
	Message string
}

// Allowed admits the object unchanged.
func Allowed(uid string, warnings []string) Response {
	return Response{UID: uid, Allowed: true, Warnings: warnings}
}

// Patched admits the object with a JSON Patch; an empty patch admits it
// unchanged.
func Patched(uid string, patch []byte, warnings []string) Response {
	return Response{UID: uid, Allowed: true, Patch: patch, Warnings: warnings}
}

// Denied refuses the request with an HTTP-style code and a message the
// user sees in kubectl's output.
func Denied(uid string, code int32, msg string) Response {
	return Response{UID: uid, Code: code, Message: msg}
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

// AppendReview appends resp wrapped in an admission.k8s.io/v1
// AdmissionReview, byte for byte what json.Marshal makes of the
// k8s.io/api types (a test holds it to that), without building them.
func AppendReview(dst []byte, resp *Response) []byte {
	dst = append(dst, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":`...)
	dst = AppendJSONString(dst, resp.UID)
	if resp.Allowed {
		dst = append(dst, `,"allowed":true`...)
	} else {
		dst = append(dst, `,"allowed":false,"status":{"metadata":{},"status":"Failure"`...)
		if resp.Message != "" {
			dst = append(dst, `,"message":`...)
			dst = AppendJSONString(dst, resp.Message)
		}
		if reason := reasonFor(resp.Code); reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = AppendJSONString(dst, string(reason))
		}
		if resp.Code != 0 {
			dst = append(dst, `,"code":`...)
			dst = strconv.AppendInt(dst, int64(resp.Code), 10)
		}
		dst = append(dst, '}')
	}
	if len(resp.Patch) > 0 {
		dst = append(dst, `,"patch":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, resp.Patch)
		dst = append(dst, `","patchType":"JSONPatch"`...)
	}
	if len(resp.Warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i, w := range resp.Warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}"...)
}

// jsonContentType is shared by every response; net/http only reads it.
var jsonContentType = []string{"application/json"}

// WriteResponse sends resp inside an AdmissionReview. A refusal of a
// malformed request also carries its code as the HTTP status, so a caller
// that only looks at the status line still sees a 4xx; an admission
// decision (allowed or denied by policy) is always HTTP 200, as the
// apiserver expects.
func WriteResponse(w http.ResponseWriter, httpStatus int, resp *Response) {
	buf := GetBuffer()
	defer PutBuffer(buf)
	WriteResponseWith(w, httpStatus, resp, buf)
}

// WriteResponseWith is WriteResponse encoding into buf, whose contents
// it overwrites: the handler passes the request body's buffer once
// nothing of resp aliases it (the decoder copies every string it keeps),
// so one buffer serves a whole request.
func WriteResponseWith(w http.ResponseWriter, httpStatus int, resp *Response, buf *[]byte) {
	*buf = AppendReview((*buf)[:0], resp)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(httpStatus)
	_, _ = w.Write(*buf)
}
