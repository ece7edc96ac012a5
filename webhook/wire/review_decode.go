package wire

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth is the deepest nesting of arrays and objects jsontext accepts,
// so a hostile body cannot make the decoder use unbounded memory. It is
// also encoding/json's limit and sigs.k8s.io/json's; the depth tests pin
// it.
const MaxDepth = 10000

// decodeOptions make jsontext read what kube-apiserver's decoder
// (sigs.k8s.io/json, a fork of encoding/json) reads.
var decodeOptions = []jsontext.Options{
	// Repeated names are kept, and the fields below apply them as
	// encoding/json does (the last scalar wins, objects merge). Checking
	// them would also cost 4x on a 64 KB pod.
	jsontext.AllowDuplicateNames(true),
	// Invalid UTF-8 in strings reads as U+FFFD: refusing it would refuse
	// pods kube-apiserver accepted and stored.
	jsontext.AllowInvalidUTF8(true),
}

// reviewDecoder walks an AdmissionReview with jsontext's tokenizer. Field
// names match case-sensitively, as in sigs.k8s.io/json. A repeated key
// overwrites or merges like that decoder does with k8s.io/api types: the
// last scalar wins, a null clears a pointer, map or slice and leaves a
// string or a raw object as it is, objects merge into what is there.
type reviewDecoder struct {
	dec jsontext.Decoder
	// in hands body to dec without a copy: jsontext reads a bytes.Buffer
	// in place, so raw values alias body.
	in               bytes.Buffer
	body             []byte
	r                *Review
	apiVersion, kind string
	hasRequest       bool
	// envErr is the first mistyped field of the envelope; objErr that of
	// the last "object" member, which a typed decode reads second.
	envErr, objErr typeError
	// arena holds every string the review keeps: one or two allocations
	// per request instead of one per string. strings.Builder never
	// rewrites bytes it has handed out, so the strings outlive body.
	arena   strings.Builder
	scratch []byte          // unescaped strings, reused
	owner   *OwnerReference // the element ownerField fills
}

// decoders recycles decoder state (jsontext's stacks, scratch buffers);
// what a decode returns is allocated afresh each time.
var decoders = sync.Pool{New: func() any { return new(reviewDecoder) }}

func (d *reviewDecoder) start(body []byte) {
	d.body = body
	d.in = *bytes.NewBuffer(body)
	d.dec.Reset(&d.in, decodeOptions...)
	d.r = reviews.Get().(*Review)
	d.apiVersion, d.kind, d.hasRequest = "", "", false
	d.envErr, d.objErr = typeError{}, typeError{}
	d.arena = strings.Builder{}
	d.arena.Grow(arenaCapacity)
}

// release returns d to the pool without references to the request.
func (d *reviewDecoder) release() {
	d.in = bytes.Buffer{}
	d.dec.Reset(&d.in)
	d.body, d.r, d.owner = nil, nil, nil
	d.arena = strings.Builder{}
	// Keep no buffer a hostile request grew past what ordinary ones need.
	if cap(d.scratch) > 64<<10 {
		d.scratch = nil
	}
	decoders.Put(d)
}

// document reads the whole body: one envelope and nothing after it.
func (d *reviewDecoder) document() error {
	var err error
	switch k := d.dec.PeekKind(); k {
	case '{':
		err = d.members(d.envelopeField)
	case 'n':
		_, err = d.dec.ReadToken()
	default:
		err = d.mistyped(&d.envErr, "")
	}
	if err != nil {
		return err
	}
	if d.dec.PeekKind() != 0 {
		rest := bytes.TrimLeft(d.dec.UnreadBuffer(), " \t\r\n")
		return &syntaxError{c: rest[0], at: len(d.body) - len(rest)}
	}
	// The peek failed: at the end of input with io.EOF, else with the
	// trailing bytes' syntax error.
	if _, err = d.dec.ReadToken(); err != io.EOF {
		return err
	}
	return nil
}

func (d *reviewDecoder) envelopeField(name []byte) error {
	switch string(name) {
	case "apiVersion":
		return d.str(&d.apiVersion, &d.envErr, "apiVersion")
	case "kind":
		return d.str(&d.kind, &d.envErr, "kind")
	case "request":
		return d.request()
	}
	return d.skip()
}

func (d *reviewDecoder) request() error {
	switch d.dec.PeekKind() {
	case '{':
	case 'n':
		*d.r = Review{}
		d.objErr = typeError{}
		d.hasRequest = false
		return d.skip()
	default:
		return d.mistyped(&d.envErr, "request")
	}
	if !d.hasRequest {
		// A pointer that null cleared is allocated afresh.
		*d.r = Review{}
		d.objErr = typeError{}
		d.hasRequest = true
	}
	return d.members(d.requestField)
}

func (d *reviewDecoder) requestField(name []byte) error {
	r := d.r
	switch string(name) {
	case "uid":
		return d.str(&r.UID, &d.envErr, "request.uid")
	case "resource":
		switch d.dec.PeekKind() {
		case '{':
			return d.members(d.resourceField)
		case 'n':
			return d.skip()
		}
		return d.mistyped(&d.envErr, "request.resource")
	case "subResource":
		return d.str(&r.SubResource, &d.envErr, "request.subResource")
	case "namespace":
		return d.str(&r.Namespace, &d.envErr, "request.namespace")
	case "operation":
		return d.str(&r.Operation, &d.envErr, "request.operation")
	case "dryRun":
		return d.boolean(&r.DryRun, &d.envErr, "request.dryRun")
	case "object":
		return d.object()
	case "oldObject":
		if d.dec.PeekKind() == 'n' {
			return d.skip() // a null leaves runtime.RawExtension as it is
		}
		v, err := d.dec.ReadValue()
		r.RawOldObject = v
		return err
	}
	return d.skip()
}

func (d *reviewDecoder) resourceField(name []byte) error {
	r := d.r
	switch string(name) {
	case "group":
		return d.str(&r.Group, &d.envErr, "request.resource.group")
	case "version":
		return d.str(&r.Version, &d.envErr, "request.resource.version")
	case "resource":
		return d.str(&r.Resource, &d.envErr, "request.resource.resource")
	}
	return d.skip()
}

// object reads request.object, a runtime.RawExtension in k8s.io/api:
// each occurrence but null replaces the previous one whole, and its
// metadata is what a second decode of the raw bytes would read.
func (d *reviewDecoder) object() error {
	r := d.r
	k := d.dec.PeekKind()
	if k == 'n' {
		return d.skip()
	}
	r.Object = ObjectMeta{}
	r.ObjectAPIVersion, r.ObjectKind = "", ""
	d.objErr = typeError{}
	if k != '{' {
		// The object decode would fail on the value itself.
		d.objErr.record("", kindName(k))
		v, err := d.dec.ReadValue()
		r.RawObject = v
		return err
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	start := d.dec.InputOffset() - 1
	err := d.rest(d.objectField)
	if err == nil {
		r.RawObject = d.body[start:d.dec.InputOffset()]
	}
	return err
}

func (d *reviewDecoder) objectField(name []byte) error {
	r := d.r
	switch string(name) {
	case "apiVersion":
		return d.str(&r.ObjectAPIVersion, &d.objErr, "apiVersion")
	case "kind":
		return d.str(&r.ObjectKind, &d.objErr, "kind")
	case "metadata":
		switch d.dec.PeekKind() {
		case '{':
			return d.members(d.metadataField)
		case 'n':
			return d.skip()
		}
		return d.mistyped(&d.objErr, "metadata")
	}
	return d.skip()
}

func (d *reviewDecoder) metadataField(name []byte) error {
	m := &d.r.Object
	switch string(name) {
	case "name":
		return d.str(&m.Name, &d.objErr, "metadata.name")
	case "generateName":
		return d.str(&m.GenerateName, &d.objErr, "metadata.generateName")
	case "namespace":
		return d.str(&m.Namespace, &d.objErr, "metadata.namespace")
	case "labels":
		return d.stringMap(&m.Labels, "metadata.labels")
	case "annotations":
		return d.stringMap(&m.Annotations, "metadata.annotations")
	case "ownerReferences":
		return d.owners(&m.OwnerReferences)
	}
	return d.skip()
}
