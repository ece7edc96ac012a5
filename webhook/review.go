package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/canary-router/canary-router/webhook/policy"
)

// review holds the parts of an AdmissionReview that a routing decision
// needs. The object is decoded to its metadata only: a label-only mutation
// has no use for the spec, and materialising it is most of the cost of a
// typed decode.
type review struct {
	UID         string
	Group       string
	Version     string
	Resource    string
	SubResource string
	Namespace   string
	Operation   string
	DryRun      bool
	Object      objectMeta
	// RawObject is the undecoded object, kept for handlers that need more
	// than metadata (the policy ConfigMap validator).
	RawObject json.RawMessage
	// RawOldObject is the undecoded previous object on UPDATE.
	RawOldObject json.RawMessage
}

// objectMeta is the subset of ObjectMeta the router reads.
type objectMeta struct {
	Name            string            `json:"name"`
	GenerateName    string            `json:"generateName"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []ownerReference  `json:"ownerReferences"`
}

type ownerReference struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller *bool  `json:"controller"`
}

// controller returns the controlling owner, the one whose kind names the
// pod's workload, or nil.
func (m *objectMeta) controller() *policy.Owner {
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return &policy.Owner{Kind: o.Kind, Name: o.Name}
		}
	}
	return nil
}

type wireReview struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Request    *wireRequest `json:"request"`
}

type wireRequest struct {
	UID         string `json:"uid"`
	Resource    gvr    `json:"resource"`
	SubResource string `json:"subResource"`
	Namespace   string `json:"namespace"`
	Operation   string `json:"operation"`
	DryRun      *bool  `json:"dryRun"`
	// Object and OldObject stay raw so a second, metadata-only decode can
	// skip everything else.
	Object    json.RawMessage `json:"object"`
	OldObject json.RawMessage `json:"oldObject"`
}

type gvr struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

type wireObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
}

// decodeError is a request the router cannot act on; its message goes back
// to the caller, and uid is whatever could be read before the failure.
type decodeError struct {
	uid string
	msg string
}

func (e *decodeError) Error() string { return e.msg }

// decodeReview parses an admission.k8s.io/v1 AdmissionReview request.
func decodeReview(body []byte) (*review, error) {
	if len(body) == 0 {
		return nil, &decodeError{msg: "request body is empty"}
	}
	var w wireReview
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, &decodeError{msg: "request body is not a valid AdmissionReview: " + jsonErrorText(err)}
	}
	if w.APIVersion != "admission.k8s.io/v1" || w.Kind != "AdmissionReview" {
		return nil, &decodeError{uid: uidOf(w.Request), msg: fmt.Sprintf("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got %q %q", w.APIVersion, w.Kind)}
	}
	if w.Request == nil {
		return nil, &decodeError{msg: "AdmissionReview has no request"}
	}
	req := w.Request
	if req.UID == "" {
		return nil, &decodeError{msg: "AdmissionReview request has no uid"}
	}
	r := &review{
		UID:          req.UID,
		Group:        req.Resource.Group,
		Version:      req.Resource.Version,
		Resource:     req.Resource.Resource,
		SubResource:  req.SubResource,
		Namespace:    req.Namespace,
		Operation:    req.Operation,
		DryRun:       req.DryRun != nil && *req.DryRun,
		RawObject:    req.Object,
		RawOldObject: req.OldObject,
	}
	if isNull(req.Object) {
		// DELETE carries no object; every other operation the router serves does.
		if req.Operation == "DELETE" {
			return r, nil
		}
		return nil, &decodeError{uid: req.UID, msg: "AdmissionReview request has no object"}
	}
	var obj wireObject
	if err := json.Unmarshal(req.Object, &obj); err != nil {
		return nil, &decodeError{uid: req.UID, msg: "request object is not a valid Kubernetes object: " + jsonErrorText(err)}
	}
	r.Object = obj.Metadata
	return r, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func uidOf(r *wireRequest) string {
	if r == nil {
		return ""
	}
	return r.UID
}

// jsonErrorText trims encoding/json's errors to what helps a caller find
// the fault.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %s: cannot use a JSON %s here", typ.Field, typ.Value)
	}
	return err.Error()
}
