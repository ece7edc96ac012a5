package webhook

import (
	"strings"

	"github.com/canary-router/canary-router/webhook/wire"
)

// patchBuilder appends RFC 6902 operations on an object's labels and
// annotations. It never touches any other path: the router only routes.
type patchBuilder struct {
	buf []byte
	// hasLabels and hasAnnotations say whether the object already has the
	// map; a JSON Patch "add" into a missing map fails, so the first add
	// creates the map instead.
	hasLabels, hasAnnotations bool
}

func newPatch(m *wire.ObjectMeta) *patchBuilder {
	return &patchBuilder{
		buf:            make([]byte, 0, 512),
		hasLabels:      m.Labels != nil,
		hasAnnotations: m.Annotations != nil,
	}
}

// setLabel adds or replaces a label ("add" replaces an existing member).
func (p *patchBuilder) setLabel(key, value string) {
	p.set("/metadata/labels", &p.hasLabels, key, value)
}

// setAnnotation adds or replaces an annotation.
func (p *patchBuilder) setAnnotation(key, value string) {
	p.set("/metadata/annotations", &p.hasAnnotations, key, value)
}

// removeLabel removes a label the caller knows is present.
func (p *patchBuilder) removeLabel(key string) {
	p.open()
	p.buf = append(p.buf, `{"op":"remove","path":"/metadata/labels/`...)
	p.buf = appendPointerToken(p.buf, key)
	p.buf = append(p.buf, `"}`...)
}

// setAnnotationBytes is setAnnotation for a value held as bytes.
func (p *patchBuilder) setAnnotationBytes(key string, value []byte) {
	p.setOp("/metadata/annotations", &p.hasAnnotations, key)
	p.buf = wire.AppendJSONBytes(p.buf, value)
	p.closeOp(&p.hasAnnotations)
}

func (p *patchBuilder) set(mapPath string, has *bool, key, value string) {
	p.setOp(mapPath, has, key)
	p.buf = wire.AppendJSONString(p.buf, value)
	p.closeOp(has)
}

// setOp opens an "add" of key into the map at mapPath, up to its value:
// the map itself, holding key, when the object has none yet (*has).
func (p *patchBuilder) setOp(mapPath string, has *bool, key string) {
	p.open()
	p.buf = append(p.buf, `{"op":"add","path":"`...)
	p.buf = append(p.buf, mapPath...)
	if !*has {
		p.buf = append(p.buf, `","value":{`...)
		p.buf = wire.AppendJSONString(p.buf, key)
		p.buf = append(p.buf, ':')
		return
	}
	p.buf = append(p.buf, '/')
	p.buf = appendPointerToken(p.buf, key)
	p.buf = append(p.buf, `","value":`...)
}

// closeOp closes what setOp opened; the map now exists.
func (p *patchBuilder) closeOp(has *bool) {
	if !*has {
		*has = true
		p.buf = append(p.buf, '}')
	}
	p.buf = append(p.buf, '}')
}

func (p *patchBuilder) open() {
	if len(p.buf) == 0 {
		p.buf = append(p.buf, '[')
	} else {
		p.buf = append(p.buf, ',')
	}
}

// bytes returns the patch document, or nil when no operation was added.
func (p *patchBuilder) bytes() []byte {
	if len(p.buf) == 0 {
		return nil
	}
	return append(p.buf, ']')
}

// appendPointerToken escapes a map key as a JSON Pointer token (RFC 6901:
// "~" as "~0", "/" as "~1"), so istio.io/rev becomes istio.io~1rev. The
// token sits inside a JSON string, so it is JSON-escaped as well.
func appendPointerToken(dst []byte, key string) []byte {
	for {
		i := strings.IndexAny(key, "~/")
		if i < 0 {
			return wire.AppendJSONChars(dst, key)
		}
		dst = wire.AppendJSONChars(dst, key[:i])
		if key[i] == '~' {
			dst = append(dst, "~0"...)
		} else {
			dst = append(dst, "~1"...)
		}
		key = key[i+1:]
	}
}
