package wiretest

import (
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/canary-router/canary-router/webhook/wire"
)

// NotAReview and NotAnObject begin the decoder's refusals of a malformed
// envelope and object: the oracle words its errors the same way, in its
// own copy, so a test notices when the decoder's wording drifts.
const (
	NotAReview  = "request body is not a valid AdmissionReview: "
	NotAnObject = "request object is not a valid Kubernetes object: "
)

// DecodeError is the oracle's refusal, worded as wire.DecodeError's.
type DecodeError struct {
	// UID is the request uid read before the failure, "" if none.
	UID string
	// Msg is the refusal's text.
	Msg string
}

// Error returns Msg.
func (e *DecodeError) Error() string { return e.Msg }

// DecodeKube is the oracle the differential test and FuzzDecodeReview
// hold wire.DecodeReview to, and the handler tests read a request's uid
// with: a typed decode with k8s.io/api
// types by kube-apiserver's own decoder (sigs.k8s.io/json: encoding/json
// with case-sensitive names), in the two passes of a typed webhook: the
// envelope into an AdmissionReview, whose object stays raw
// (runtime.RawExtension), then the object into PartialObjectMetadata.
//
// inScope is false when the typed decode fails on a wrong type in a field
// the router does not read (userInfo, a uid, managedFields): DecodeReview
// has no business refusing those, so nothing is compared.
func DecodeKube(body []byte) (r *wire.Review, inScope bool, err error) {
	if len(body) == 0 {
		return nil, true, &DecodeError{Msg: "request body is empty"}
	}
	var w admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &w); err != nil {
		text, ok := kubeErrorText(err, envelopeFields)
		return nil, ok, &DecodeError{Msg: NotAReview + text}
	}
	if w.APIVersion != "admission.k8s.io/v1" || w.Kind != "AdmissionReview" {
		uid := ""
		if w.Request != nil {
			uid = string(w.Request.UID)
		}
		return nil, true, &DecodeError{UID: uid, Msg: fmt.Sprintf("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got %q %q", w.APIVersion, w.Kind)}
	}
	if w.Request == nil {
		return nil, true, &DecodeError{Msg: "AdmissionReview has no request"}
	}
	req := w.Request
	if req.UID == "" {
		return nil, true, &DecodeError{Msg: "AdmissionReview request has no uid"}
	}
	r = &wire.Review{
		UID:          string(req.UID),
		Group:        req.Resource.Group,
		Version:      req.Resource.Version,
		Resource:     req.Resource.Resource,
		SubResource:  req.SubResource,
		Namespace:    req.Namespace,
		Operation:    string(req.Operation),
		DryRun:       req.DryRun != nil && *req.DryRun,
		RawObject:    req.Object.Raw,
		RawOldObject: req.OldObject.Raw,
	}
	if req.Object.Raw == nil {
		if req.Operation == admissionv1.Delete {
			return r, true, nil
		}
		return nil, true, &DecodeError{UID: r.UID, Msg: "AdmissionReview request has no object"}
	}
	var obj metav1.PartialObjectMetadata
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &obj); err != nil {
		text, ok := kubeErrorText(err, objectFields)
		return nil, ok, &DecodeError{UID: r.UID, Msg: NotAnObject + text}
	}
	m := obj.ObjectMeta
	r.ObjectAPIVersion, r.ObjectKind = obj.APIVersion, obj.Kind
	r.Object = wire.ObjectMeta{Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
	if m.OwnerReferences != nil {
		r.Object.OwnerReferences = make([]wire.OwnerReference, len(m.OwnerReferences))
		for i, o := range m.OwnerReferences {
			r.Object.OwnerReferences[i] = wire.OwnerReference{Kind: o.Kind, Name: o.Name, Controller: o.Controller != nil && *o.Controller}
		}
	}
	return r, true, nil
}

// envelopeFields and objectFields are the fields DecodeReview reads, by
// the path a typed decode's type error names.
var (
	envelopeFields = fieldSet("", "apiVersion", "kind", "request", "request.uid", "request.resource",
		"request.resource.group", "request.resource.version", "request.resource.resource",
		"request.subResource", "request.namespace", "request.operation", "request.dryRun")
	objectFields = fieldSet("", "apiVersion", "kind", "metadata", "metadata.name", "metadata.generateName",
		"metadata.namespace", "metadata.labels", "metadata.annotations", "metadata.ownerReferences",
		"metadata.ownerReferences.kind", "metadata.ownerReferences.name", "metadata.ownerReferences.controller")
)

func fieldSet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// kubeErrorText words a sigs.k8s.io/json error as DecodeReview does, and
// says whether it is in scope: a syntax error, or a type error in one of
// fields. Its error types are internal, so a type error is read from its
// text: "json: cannot unmarshal VALUE into Go struct field
// Struct.[Embedded.]PATH of type T" or "... into Go value of type T".
func kubeErrorText(err error, fields map[string]bool) (string, bool) {
	if ok, off := sigsjson.SyntaxErrorOffset(err); ok {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(err.Error(), "json: "), off), true
	}
	msg := err.Error()
	value, rest, ok := strings.Cut(strings.TrimPrefix(msg, "json: cannot unmarshal "), " into Go ")
	if !ok {
		return msg, false
	}
	path := ""
	if p, ok := strings.CutPrefix(rest, "struct field "); ok {
		p, _, _ = strings.Cut(p, " of type ")
		_, path, _ = strings.Cut(p, ".")
		path = strings.TrimPrefix(path, "TypeMeta.")
	}
	return fmt.Sprintf("field %s: cannot use a JSON %s here", path, value), fields[path]
}
