// Package wire is the admission.k8s.io/v1 AdmissionReview wire format as
// the router speaks it: DecodeReview reads the metadata a routing decision
// needs from a request body, and WriteResponse encodes the answer, with
// the request and response buffers they share. It knows nothing of
// policy, handlers or metrics, and imports no other package of the router.
package wire

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Review holds the parts of an AdmissionReview that a routing decision
// needs. Of the object only the metadata is read: a label-only mutation
// has no use for the spec, and materialising it is most of the cost of a
// decode (see docs/performance.md).
type Review struct {
	UID         string
	Group       string
	Version     string
	Resource    string
	SubResource string
	Namespace   string
	Operation   string
	DryRun      bool
	Object      ObjectMeta
	// ObjectAPIVersion and ObjectKind are the object's own type fields,
	// which the handler checks against the resource.
	ObjectAPIVersion string
	ObjectKind       string
	// RawObject is the undecoded object, for handlers that need more than
	// metadata (the policy ConfigMap validator). It aliases the request
	// body, which is reused once the response is written: copy what must
	// outlive the request.
	RawObject []byte
	// RawOldObject is the undecoded previous object on UPDATE, aliased
	// like RawObject.
	RawOldObject []byte
}

// Reviews and their label and annotation maps are recycled: at admission
// rates they were most of the garbage a decode made.
var (
	reviews    = sync.Pool{New: func() any { return new(Review) }}
	stringMaps sync.Pool
)

// maxPooledMap bounds the maps kept for reuse: clearing a map keeps its
// memory, so one from a request with thousands of labels is dropped.
const maxPooledMap = 64

// newStringMap returns an empty map, recycled when one is at hand.
func newStringMap() map[string]string {
	if m, ok := stringMaps.Get().(map[string]string); ok {
		return m
	}
	return make(map[string]string)
}

// Release hands r and its maps back for a later DecodeReview to reuse.
// Call it at most once, when nothing reads r or its label and annotation
// maps any more (strings read from r stay valid: they are copies). Not
// calling it is fine: r is then garbage like any other value.
func (r *Review) Release() {
	for _, m := range [...]map[string]string{r.Object.Labels, r.Object.Annotations} {
		if m != nil && len(m) <= maxPooledMap {
			clear(m)
			stringMaps.Put(m)
		}
	}
	*r = Review{}
	reviews.Put(r)
}

// ObjectMeta is the subset of metav1.ObjectMeta the router reads.
type ObjectMeta struct {
	Name            string
	GenerateName    string
	Namespace       string
	Labels          map[string]string
	Annotations     map[string]string
	OwnerReferences []OwnerReference
}

// OwnerReference is the subset of metav1.OwnerReference the router reads.
type OwnerReference struct {
	Kind       string
	Name       string
	Controller bool
}

// DecodeError is a request the router cannot act on; its message goes back
// to the caller.
type DecodeError struct {
	// UID is whatever could be read before the failure, so the refusal
	// can still name the request.
	UID string
	msg string
}

// Error returns the refusal as the caller sees it.
func (e *DecodeError) Error() string { return e.msg }

const (
	notAReview    = "request body is not a valid AdmissionReview: "
	notAnObject   = "request object is not a valid Kubernetes object: "
	arenaCapacity = 512 // bytes of strings a typical pod review keeps
)

// DecodeReview parses an admission.k8s.io/v1 AdmissionReview request in
// one pass over body with jsontext's tokenizer. It accepts and rejects
// what a typed decode with k8s.io/api types and kube-apiserver's own
// decoder (sigs.k8s.io/json: case-sensitive names) would in the fields
// the router reads, and yields the same values: the differential test and
// FuzzDecodeReview hold it to that. A wrong type in a field it does not
// read is not its business. Errors come in that decoder's order:
// malformed JSON anywhere first, then a mistyped envelope field, then the
// envelope checks, then a mistyped object field.
func DecodeReview(body []byte) (*Review, error) {
	if len(body) == 0 {
		return nil, &DecodeError{msg: "request body is empty"}
	}
	d := decoders.Get().(*reviewDecoder)
	defer d.release()
	d.start(body)
	if err := d.document(); err != nil {
		if err == io.EOF {
			return nil, &DecodeError{msg: notAReview + "unexpected end of JSON input"}
		}
		return nil, &DecodeError{msg: notAReview + strings.TrimPrefix(err.Error(), "jsontext: ")}
	}
	if d.envErr.set() {
		return nil, &DecodeError{msg: notAReview + d.envErr.text()}
	}
	r := d.r
	if d.apiVersion != "admission.k8s.io/v1" || d.kind != "AdmissionReview" {
		uid := ""
		if d.hasRequest {
			uid = r.UID
		}
		return nil, &DecodeError{UID: uid, msg: fmt.Sprintf("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got %q %q", d.apiVersion, d.kind)}
	}
	if !d.hasRequest {
		return nil, &DecodeError{msg: "AdmissionReview has no request"}
	}
	if r.UID == "" {
		return nil, &DecodeError{msg: "AdmissionReview request has no uid"}
	}
	if r.RawObject == nil { // absent or null
		// DELETE carries no object; every other operation the router serves does.
		if r.Operation == "DELETE" {
			return r, nil
		}
		return nil, &DecodeError{UID: r.UID, msg: "AdmissionReview request has no object"}
	}
	if d.objErr.set() {
		return nil, &DecodeError{UID: r.UID, msg: notAnObject + d.objErr.text()}
	}
	return r, nil
}

// typeError is a value of the wrong JSON type for a field, kept the way
// encoding/json keeps it: the first one wins and decoding goes on, so a
// later syntax error still takes precedence.
type typeError struct{ field, value string }

func (e *typeError) set() bool { return e.value != "" }

func (e *typeError) record(field, value string) {
	if !e.set() {
		e.field, e.value = field, value
	}
}

func (e *typeError) text() string {
	return "field " + e.field + ": cannot use a JSON " + e.value + " here"
}
