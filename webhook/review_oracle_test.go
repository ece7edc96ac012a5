package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
)

// decodeReviewStd is the decoder decodeReview replaced: two encoding/json
// passes (the envelope with the object kept raw, then the object's
// metadata). It is the oracle the differential test and FuzzDecodeReview
// hold decodeReview to.
func decodeReviewStd(body []byte) (*review, error) {
	if len(body) == 0 {
		return nil, &decodeError{msg: "request body is empty"}
	}
	var w stdReview
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, &decodeError{msg: "request body is not a valid AdmissionReview: " + stdErrorText(err)}
	}
	if w.APIVersion != "admission.k8s.io/v1" || w.Kind != "AdmissionReview" {
		uid := ""
		if w.Request != nil {
			uid = w.Request.UID
		}
		return nil, &decodeError{uid: uid, msg: fmt.Sprintf("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got %q %q", w.APIVersion, w.Kind)}
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
		RawObject:    []byte(req.Object),
		RawOldObject: []byte(req.OldObject),
	}
	if len(req.Object) == 0 || string(req.Object) == "null" {
		if req.Operation == "DELETE" {
			return r, nil
		}
		return nil, &decodeError{uid: req.UID, msg: "AdmissionReview request has no object"}
	}
	var obj stdObject
	if err := json.Unmarshal(req.Object, &obj); err != nil {
		return nil, &decodeError{uid: req.UID, msg: "request object is not a valid Kubernetes object: " + stdErrorText(err)}
	}
	m := obj.Metadata
	r.ObjectAPIVersion, r.ObjectKind = obj.APIVersion, obj.Kind
	r.Object = objectMeta{Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
	if m.OwnerReferences != nil {
		r.Object.OwnerReferences = make([]ownerReference, len(m.OwnerReferences))
		for i, o := range m.OwnerReferences {
			r.Object.OwnerReferences[i] = ownerReference{Kind: o.Kind, Name: o.Name, Controller: o.Controller != nil && *o.Controller}
		}
	}
	return r, nil
}

type stdReview struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Request    *stdRequest `json:"request"`
}

type stdRequest struct {
	UID         string          `json:"uid"`
	Resource    stdGVR          `json:"resource"`
	SubResource string          `json:"subResource"`
	Namespace   string          `json:"namespace"`
	Operation   string          `json:"operation"`
	DryRun      *bool           `json:"dryRun"`
	Object      json.RawMessage `json:"object"`
	OldObject   json.RawMessage `json:"oldObject"`
}

type stdGVR struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

type stdObject struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   stdMeta `json:"metadata"`
}

type stdMeta struct {
	Name            string            `json:"name"`
	GenerateName    string            `json:"generateName"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []stdOwner        `json:"ownerReferences"`
}

type stdOwner struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller *bool  `json:"controller"`
}

func stdErrorText(err error) string {
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
