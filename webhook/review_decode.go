package webhook

import (
	"strings"
	"sync"
)

// reviewDecoder walks an AdmissionReview. Field names match the way
// encoding/json matches them (case-insensitively), and a repeated key
// overwrites or merges like encoding/json does: the last scalar wins, a
// null clears a pointer, map or slice, objects merge into what is there.
type reviewDecoder struct {
	scanner
	r                *review
	apiVersion, kind string
	hasRequest       bool
	// envErr is the first mistyped field of the envelope; objErr that of
	// the last "object" member, which encoding/json would decode second.
	envErr, objErr typeError
	fold           []byte // folded key, reused
}

// decoders recycles decoder state (the scanner's stacks and scratch
// buffers); what a decode returns is allocated afresh each time.
var decoders = sync.Pool{New: func() any { return new(reviewDecoder) }}

func (d *reviewDecoder) start(body []byte) {
	d.reset(body)
	d.r = new(review)
	d.apiVersion, d.kind, d.hasRequest = "", "", false
	d.envErr, d.objErr = typeError{}, typeError{}
	// The returned strings live in the arena, so each decode needs its own.
	d.arena = strings.Builder{}
	d.arena.Grow(arenaCapacity)
}

// release returns d to the pool without references to the request.
func (d *reviewDecoder) release() {
	d.data, d.r = nil, nil
	d.arena = strings.Builder{}
	// Keep no buffer a hostile request grew (a huge escaped key, deep
	// nesting) past what ordinary ones need.
	if cap(d.scratch) > 64<<10 {
		d.scratch = nil
	}
	if cap(d.stack) > 1<<10 {
		d.stack = nil
	}
	decoders.Put(d)
}

// document reads the whole body: one envelope and nothing after it.
func (d *reviewDecoder) document() error {
	d.ws()
	switch d.peek() {
	case '{':
		if err := d.envelope(); err != nil {
			return err
		}
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
	default:
		if k := d.kindName(); k != "" {
			d.envErr.record("", k)
		}
		if err := d.skipValue(0); err != nil {
			return err
		}
	}
	d.ws()
	if d.pos < len(d.data) {
		return d.invalid("after top-level value")
	}
	return nil
}

func (d *reviewDecoder) envelope() error {
	o, err := d.openObject(1)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = o.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "APIVERSION":
			err = d.str(&d.apiVersion, 1, &d.envErr, "apiVersion")
		case "KIND":
			err = d.str(&d.kind, 1, &d.envErr, "kind")
		case "REQUEST":
			err = d.request()
		default:
			err = d.skipValue(1)
		}
	}
	return err
}

func (d *reviewDecoder) request() error {
	switch d.peek() {
	case '{':
	case 'n':
		d.clearRequest()
		d.hasRequest = false
		return d.literal("null")
	default:
		return d.mistyped(1, &d.envErr, "request")
	}
	if !d.hasRequest {
		d.clearRequest()
		d.hasRequest = true
	}
	r := d.r
	o, err := d.openObject(2)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = o.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "UID":
			err = d.str(&r.UID, 2, &d.envErr, "request.uid")
		case "RESOURCE":
			err = d.resource()
		case "SUBRESOURCE":
			err = d.str(&r.SubResource, 2, &d.envErr, "request.subResource")
		case "NAMESPACE":
			err = d.str(&r.Namespace, 2, &d.envErr, "request.namespace")
		case "OPERATION":
			err = d.str(&r.Operation, 2, &d.envErr, "request.operation")
		case "DRYRUN":
			err = d.boolean(&r.DryRun, 2, &d.envErr, "request.dryRun")
		case "OBJECT":
			err = d.object()
		case "OLDOBJECT":
			start := d.pos
			err = d.skipValue(2)
			r.RawOldObject = d.data[start:d.pos]
		default:
			err = d.skipValue(2)
		}
	}
	return err
}

func (d *reviewDecoder) clearRequest() {
	*d.r = review{}
	d.objErr = typeError{}
}

func (d *reviewDecoder) resource() error {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	default:
		return d.mistyped(2, &d.envErr, "request.resource")
	}
	r := d.r
	o, err := d.openObject(3)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = o.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "GROUP":
			err = d.str(&r.Group, 3, &d.envErr, "request.resource.group")
		case "VERSION":
			err = d.str(&r.Version, 3, &d.envErr, "request.resource.version")
		case "RESOURCE":
			err = d.str(&r.Resource, 3, &d.envErr, "request.resource.resource")
		default:
			err = d.skipValue(3)
		}
	}
	return err
}

// object reads request.object. Each occurrence replaces the previous one
// whole, as the raw message encoding/json keeps for a second decode would.
func (d *reviewDecoder) object() error {
	r := d.r
	r.Object = objectMeta{}
	r.ObjectAPIVersion, r.ObjectKind = "", ""
	d.objErr = typeError{}
	start := d.pos
	var err error
	switch d.peek() {
	case '{':
		err = d.objectFields()
	case 'n':
		err = d.literal("null")
	default:
		// The object decode would fail on the value itself.
		err = d.mistyped(2, &d.objErr, "")
	}
	r.RawObject = d.data[start:d.pos]
	return err
}

func (d *reviewDecoder) objectFields() error {
	r := d.r
	o, err := d.openObject(3)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = o.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "APIVERSION":
			err = d.str(&r.ObjectAPIVersion, 3, &d.objErr, "apiVersion")
		case "KIND":
			err = d.str(&r.ObjectKind, 3, &d.objErr, "kind")
		case "METADATA":
			err = d.metadata()
		default:
			err = d.skipValue(3)
		}
	}
	return err
}

func (d *reviewDecoder) metadata() error {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	default:
		return d.mistyped(3, &d.objErr, "metadata")
	}
	m := &d.r.Object
	o, err := d.openObject(4)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = o.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "NAME":
			err = d.str(&m.Name, 4, &d.objErr, "metadata.name")
		case "GENERATENAME":
			err = d.str(&m.GenerateName, 4, &d.objErr, "metadata.generateName")
		case "NAMESPACE":
			err = d.str(&m.Namespace, 4, &d.objErr, "metadata.namespace")
		case "LABELS":
			err = d.stringMap(&m.Labels, 4, "metadata.labels")
		case "ANNOTATIONS":
			err = d.stringMap(&m.Annotations, 4, "metadata.annotations")
		case "OWNERREFERENCES":
			err = d.owners(&m.OwnerReferences)
		default:
			err = d.skipValue(4)
		}
	}
	return err
}

// owners reads metadata.ownerReferences into refs the way encoding/json
// fills a slice: elements are decoded into what is already there, then
// the slice is cut to the array's length.
func (d *reviewDecoder) owners(refs *[]ownerReference) error {
	switch d.peek() {
	case '[':
	case 'n':
		*refs = nil
		return d.literal("null")
	default:
		return d.mistyped(4, &d.objErr, "metadata.ownerReferences")
	}
	list := *refs
	i := 0
	a, err := d.openArray(5)
	for err == nil {
		var ok bool
		if ok, err = a.next(); !ok || err != nil {
			break
		}
		switch {
		case i >= cap(list): // then len(list) == i
			list = append(list, ownerReference{})
		case i >= len(list):
			// Like reflect's SetLen, this re-exposes elements an earlier,
			// longer array left in the backing store.
			list = list[:i+1]
		}
		err = d.owner(&list[i])
		i++
	}
	if i < len(list) {
		list = list[:i]
	}
	if i == 0 {
		list = []ownerReference{}
	}
	*refs = list
	return err
}

func (d *reviewDecoder) owner(o *ownerReference) error {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	default:
		return d.mistyped(5, &d.objErr, "metadata.ownerReferences")
	}
	obj, err := d.openObject(6)
	for err == nil {
		var key []byte
		var ok bool
		if key, ok, err = obj.next(); !ok || err != nil {
			break
		}
		switch string(d.folded(key)) {
		case "KIND":
			err = d.str(&o.Kind, 6, &d.objErr, "metadata.ownerReferences.kind")
		case "NAME":
			err = d.str(&o.Name, 6, &d.objErr, "metadata.ownerReferences.name")
		case "CONTROLLER":
			err = d.boolean(&o.Controller, 6, &d.objErr, "metadata.ownerReferences.controller")
		default:
			err = d.skipValue(6)
		}
	}
	return err
}

// stringMap reads a map[string]string (labels, annotations): null clears
// it, an object adds to it, a null member value stores "".
func (d *reviewDecoder) stringMap(m *map[string]string, depth int, field string) error {
	switch d.peek() {
	case '{':
	case 'n':
		*m = nil
		return d.literal("null")
	default:
		return d.mistyped(depth, &d.objErr, field)
	}
	if *m == nil {
		*m = make(map[string]string)
	}
	o, err := d.openObject(depth + 1)
	for err == nil {
		var ok bool
		if ok, err = o.nextMember(); !ok || err != nil {
			break
		}
		var k, v string
		if k, err = d.readString(); err != nil {
			break
		}
		if err = d.colon(); err != nil {
			break
		}
		if err = d.str(&v, depth+1, &d.objErr, field); err == nil {
			(*m)[k] = v
		}
	}
	return err
}

// str reads a string or null (which leaves dst as it is) into dst.
func (d *reviewDecoder) str(dst *string, depth int, te *typeError, field string) error {
	switch d.peek() {
	case '"':
		s, err := d.readString()
		*dst = s
		return err
	case 'n':
		return d.literal("null")
	}
	return d.mistyped(depth, te, field)
}

// boolean reads true, false or null (false, as a nil *bool reads).
func (d *reviewDecoder) boolean(dst *bool, depth int, te *typeError, field string) error {
	switch d.peek() {
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	case 'n':
		*dst = false
		return d.literal("null")
	}
	return d.mistyped(depth, te, field)
}

// mistyped records a value of the wrong type for field and skips it.
func (d *reviewDecoder) mistyped(depth int, te *typeError, field string) error {
	if k := d.kindName(); k != "" {
		te.record(field, k)
	}
	return d.skipValue(depth)
}

// folded returns key folded the way encoding/json folds names for its
// case-insensitive field match (upper case after lower case, rune by
// rune), so "Kind", "KIND" and "\u212aind" (Kelvin sign) all name kind.
// The result is valid until the next call.
func (d *reviewDecoder) folded(key []byte) []byte {
	d.fold = appendFolded(d.fold[:0], key)
	return d.fold
}
