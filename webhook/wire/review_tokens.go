package wire

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The value readers reviewDecoder's fields are made of. Each is entered
// with the decoder before a value and consumes all of it; a value of the
// wrong type is recorded, as a typed decode records its first type error
// and goes on, and skipped (still validated: a later syntax error wins).
// Strings are read with ReadValue, whose result aliases the body, so only
// what the review keeps is copied.

// members reads the object the decoder is at, calling field with each
// member's name and the decoder at the member's value.
func (d *reviewDecoder) members(field func(name []byte) error) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	return d.rest(field)
}

// rest reads the members of an object whose '{' was read, then its '}'.
func (d *reviewDecoder) rest(field func(name []byte) error) error {
	for d.dec.PeekKind() != '}' {
		// A failed peek is reported by the read.
		v, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		if err := field(d.name(v)); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// skip passes over one value. ReadValue validates it in a single scan and
// costs nothing more on a bytes.Buffer (the value aliases the input);
// SkipValue would walk a spec or managedFields token by token.
func (d *reviewDecoder) skip() error {
	_, err := d.dec.ReadValue()
	return err
}

// mistyped records a value of the wrong type for field and skips it.
func (d *reviewDecoder) mistyped(te *typeError, field string) error {
	if k := kindName(d.dec.PeekKind()); k != "" {
		te.record(field, k)
	}
	return d.skip()
}

// str reads a string or null (which leaves dst as it is) into dst.
func (d *reviewDecoder) str(dst *string, te *typeError, field string) error {
	switch d.dec.PeekKind() {
	case '"':
		v, err := d.dec.ReadValue()
		if err == nil {
			*dst = d.keep(v)
		}
		return err
	case 'n':
		return d.skip()
	}
	return d.mistyped(te, field)
}

// boolean reads true, false or null (false, as a nil *bool reads).
func (d *reviewDecoder) boolean(dst *bool, te *typeError, field string) error {
	switch k := d.dec.PeekKind(); k {
	case 't', 'f', 'n':
		*dst = k == 't'
		return d.skip()
	}
	return d.mistyped(te, field)
}

// stringMap reads a map[string]string (labels, annotations): null clears
// it, an object adds to it, a null member value stores "".
func (d *reviewDecoder) stringMap(m *map[string]string, field string) error {
	switch d.dec.PeekKind() {
	case '{':
	case 'n':
		*m = nil
		return d.skip()
	default:
		return d.mistyped(&d.objErr, field)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if *m == nil {
		*m = newStringMap()
	}
	for d.dec.PeekKind() != '}' {
		k, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		key := d.keep(k)
		var v string
		if err := d.str(&v, &d.objErr, field); err != nil {
			return err
		}
		(*m)[key] = v
	}
	_, err := d.dec.ReadToken()
	return err
}

// owners reads metadata.ownerReferences into refs the way encoding/json
// (and so sigs.k8s.io/json) fills a slice: elements are decoded into what
// is already there, then the slice is cut to the array's length.
func (d *reviewDecoder) owners(refs *[]OwnerReference) error {
	switch d.dec.PeekKind() {
	case '[':
	case 'n':
		*refs = nil
		return d.skip()
	default:
		return d.mistyped(&d.objErr, "metadata.ownerReferences")
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	list := *refs
	i := 0
	for {
		k := d.dec.PeekKind()
		if k == ']' {
			break
		}
		switch {
		case i >= cap(list): // then len(list) == i
			list = append(list, OwnerReference{})
		case i >= len(list):
			// Like reflect's SetLen, this re-exposes elements an earlier,
			// longer array left in the backing store.
			list = list[:i+1]
		}
		var err error
		switch k {
		case '{':
			d.owner = &list[i]
			err = d.members(d.ownerField)
		case 'n':
			err = d.skip()
		default:
			err = d.mistyped(&d.objErr, "metadata.ownerReferences")
		}
		if err != nil {
			return err
		}
		i++
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if i < len(list) {
		list = list[:i]
	}
	if i == 0 {
		list = []OwnerReference{}
	}
	*refs = list
	return nil
}

func (d *reviewDecoder) ownerField(name []byte) error {
	o := d.owner
	switch string(name) {
	case "kind":
		return d.str(&o.Kind, &d.objErr, "metadata.ownerReferences.kind")
	case "name":
		return d.str(&o.Name, &d.objErr, "metadata.ownerReferences.name")
	case "controller":
		return d.boolean(&o.Controller, &d.objErr, "metadata.ownerReferences.controller")
	}
	return d.skip()
}

// name returns a member name for matching against field names: it aliases
// the body, or the scratch buffer when the name holds escapes, so it is
// valid only until the next read.
func (d *reviewDecoder) name(v jsontext.Value) []byte {
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], v)
	return d.scratch
}

// keep copies the string v into the arena, decoded. The decoder has
// validated it; AppendUnquote's only complaints left are invalid UTF-8
// and unpaired surrogates, which it replaces with U+FFFD as encoding/json
// does.
func (d *reviewDecoder) keep(v jsontext.Value) string {
	raw := v[1 : len(v)-1]
	if len(raw) == 0 {
		return ""
	}
	n := d.arena.Len()
	if plain(raw) {
		d.arena.Write(raw)
	} else {
		d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], v)
		d.arena.Write(d.scratch)
	}
	return d.arena.String()[n:]
}

// plain reports whether a string's content reads as it is written: no
// escapes, valid UTF-8.
func plain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
		}
	}
	return true
}

// kindName names a JSON value's kind the way encoding/json's type errors
// do; "" for no value.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '0':
		return "number"
	}
	return ""
}

// syntaxError is input after the review, which jsontext, being a stream
// decoder, would read as a second value.
type syntaxError struct {
	c  byte
	at int
}

func (e *syntaxError) Error() string {
	q := strconv.QuoteRune(rune(e.c))
	return fmt.Sprintf("invalid character %s after top-level value (at byte %d)", q, e.at+1)
}
