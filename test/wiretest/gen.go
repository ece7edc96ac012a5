package wiretest

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// Gen writes random AdmissionReview-shaped JSON by hand, so it can
// produce what a marshaller never would: keys in other cases (unknown to
// kube's case-sensitive decoder) or spelled with escapes, repeated keys, nulls and wrong types in
// every field, escapes, surrogates and invalid UTF-8 in strings, odd
// whitespace, deep nesting, and byte-level damage.
type Gen struct {
	r *rand.Rand
	b []byte
	// wild is set for a share of the reviews: only those drop members,
	// use unmatched keys, put wrong types and broken strings anywhere and
	// get byte-level damage; the others mostly decode, so the values
	// decoded are compared too, not only the errors.
	wild bool
}

// NewGen returns a generator whose sequence of bodies is fixed by seed.
func NewGen(seed uint64) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Review returns one generated body.
func (g *Gen) Review() []byte {
	g.b = g.b[:0]
	g.wild = g.chance(3)
	g.ws()
	switch g.r.IntN(40) {
	case 0:
		g.junk(2)
	case 1:
		g.lit("null")
	default:
		g.object(g.envelopeMembers())
	}
	g.ws()
	if g.wild && g.chance(2) {
		g.damage()
	}
	return append([]byte(nil), g.b...)
}

func (g *Gen) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *Gen) lit(s string) { g.b = append(g.b, s...) }

func (g *Gen) ws() {
	if g.chance(6) {
		for range 1 + g.r.IntN(3) {
			g.b = append(g.b, " \t\n\r"[g.r.IntN(4)])
		}
	}
}

// member is one object member: a key and a function writing its value.
type member struct {
	key   string
	value func()
}

// object writes members in random order, some twice, some dropped, with
// junk members in between.
func (g *Gen) object(ms []member) {
	var all []member
	for _, m := range ms {
		if g.wild && g.chance(12) {
			continue
		}
		all = append(all, m)
		if g.chance(10) {
			all = append(all, m)
		}
	}
	for range g.r.IntN(3) {
		// Names no k8s.io/api type in the review gives a type, or
		// runtime.RawExtension (options), which takes anything.
		all = append(all, member{g.pick("extra", "spec", "status", "options", "x"), func() { g.junk(3) }})
	}
	g.r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	g.lit("{")
	for i, m := range all {
		if i > 0 {
			g.ws()
			g.lit(",")
		}
		g.ws()
		g.key(m.key)
		g.ws()
		g.lit(":")
		g.ws()
		m.value()
	}
	g.ws()
	g.lit("}")
}

func (g *Gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// sometimes returns good, or now and then in a wild review bad.
func (g *Gen) sometimes(good, bad string) string {
	if g.wild && g.chance(4) {
		return bad
	}
	return good
}

// key writes a field name, sometimes in a spelling that names another
// field for a case-sensitive decoder (encoding/json would fold it), or
// with an escape that still spells it.
func (g *Gen) key(name string) {
	switch g.r.IntN(14) {
	case 0:
		name = strings.ToUpper(name)
	case 1:
		name = strings.ToLower(name)
	case 2: // Kelvin sign and long s fold to k and s.
		name = strings.NewReplacer("k", "\u212a", "s", "\u017f").Replace(name)
	case 3:
		if name != "" {
			g.b = append(g.b, `"\u`...)
			g.b = append(g.b, []byte(strconv.FormatInt(int64(0x10000+int(name[0])), 16))[1:]...)
			g.b = append(g.b, name[1:]...)
			g.b = append(g.b, '"')
			return
		}
	case 4:
		if g.wild {
			name += "x"
		}
	}
	g.b = append(g.b, '"')
	g.b = append(g.b, name...)
	g.b = append(g.b, '"')
}

// fragments are pieces of string literals, as JSON source text.
var fragments = []string{
	"a", "web", "istio.io/rev", "canary", "stable", "-", " ",
	`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0041`, `\u00e9`, `\u2028`,
	`\ud83d\ude00`, `\ud800`, `\udc00`, `\ud800\u0041`, `\ud800\ud800`, `\uDFFF`, `\u0000`,
	"é", "日本", "😀", "\u2029", "<>&", "\x7f",
	"\xff", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
}

// broken are fragments that make a string literal invalid.
var broken = []string{"\x01", `\x`, `\u12`, `\u12g4`, "\n", `\`}

func (g *Gen) str() {
	g.b = append(g.b, '"')
	for range g.r.IntN(5) {
		g.b = append(g.b, fragments[g.r.IntN(len(fragments))]...)
	}
	if g.wild && g.chance(100) {
		g.b = append(g.b, broken[g.r.IntN(len(broken))]...)
	}
	g.b = append(g.b, '"')
}

// quoted writes s as a plain string literal.
func (g *Gen) quoted(s string) {
	g.b = append(g.b, '"')
	g.b = append(g.b, s...)
	g.b = append(g.b, '"')
}

var numbers = []string{"0", "-0", "1", "-12", "3.25", "1e3", "1E+2", "-4.5e-6", "123456789012345678901234567890", "0.0"}

// junk writes any JSON value, nested at most depth levels.
func (g *Gen) junk(depth int) {
	n := 6
	if depth > 0 {
		n = 8
	}
	switch g.r.IntN(n) {
	case 0:
		g.str()
	case 1:
		g.lit(numbers[g.r.IntN(len(numbers))])
	case 2:
		g.lit(g.pick("true", "false"))
	case 3:
		g.lit("null")
	case 4:
		g.lit("{}")
	case 5:
		g.lit("[ ]")
	case 6:
		g.lit("[")
		for i := range g.r.IntN(4) {
			if i > 0 {
				g.lit(",")
			}
			g.ws()
			g.junk(depth - 1)
		}
		g.lit("]")
	case 7:
		var ms []member
		for range g.r.IntN(4) {
			ms = append(ms, member{g.pick("a", "b", "metadata", "labels"), func() { g.junk(depth - 1) }})
		}
		g.object(ms)
	}
}

// typed writes a value of the expected type most of the time, else null
// or a value of another type.
func (g *Gen) typed(want func()) func() {
	return func() {
		switch n := g.r.IntN(40); {
		case n < 2:
			g.lit("null")
		case n < 4 && g.wild, n < 1 && !g.wild:
			g.junk(2)
		default:
			want()
		}
	}
}

func (g *Gen) text(common ...string) func() {
	return g.typed(func() {
		if len(common) > 0 && (!g.wild || !g.chance(4)) {
			g.quoted(common[g.r.IntN(len(common))])
			return
		}
		g.str()
	})
}

func (g *Gen) envelopeMembers() []member {
	return []member{
		{"apiVersion", g.text(g.sometimes("admission.k8s.io/v1", "admission.k8s.io/v1beta1"))},
		{"kind", g.text(g.sometimes("AdmissionReview", "Pod"))},
		{"request", g.typed(func() { g.object(g.requestMembers()) })},
	}
}

func (g *Gen) requestMembers() []member {
	return []member{
		{"uid", g.text("705ab4f5-6393-11e8-b7cc-42010a800002", "u")},
		{"kind", func() { g.lit(`{"group":"","version":"v1","kind":"Pod"}`) }},
		{"resource", g.typed(func() {
			g.object([]member{
				{"group", g.text("", "apps")},
				{"version", g.text("v1")},
				{"resource", g.text("pods", "namespaces")},
			})
		})},
		{"subResource", g.text("", "status")},
		{"namespace", g.text("shop", "")},
		{"operation", g.text("CREATE", "UPDATE", "DELETE")},
		{"dryRun", g.typed(func() { g.lit(g.pick("true", "false")) })},
		{"object", g.typed(func() { g.object(g.objectMembers()) })},
		{"oldObject", func() { g.junk(3) }},
	}
}

func (g *Gen) objectMembers() []member {
	return []member{
		{"apiVersion", g.text("v1")},
		{"kind", g.text("Pod")},
		{"metadata", g.typed(func() { g.object(g.metaMembers()) })},
		{"spec", func() { g.junk(4) }},
	}
}

func (g *Gen) metaMembers() []member {
	return []member{
		{"name", g.text("web-0", "")},
		{"generateName", g.text("web-5d8f7c-")},
		{"namespace", g.text("shop")},
		{"labels", g.typed(g.stringMap)},
		{"annotations", g.typed(g.stringMap)},
		{"ownerReferences", g.typed(func() {
			g.lit("[")
			for i := range g.r.IntN(4) {
				if i > 0 {
					g.lit(",")
				}
				g.ws()
				g.typed(func() {
					g.object([]member{
						{"apiVersion", g.text("apps/v1")},
						{"kind", g.text("ReplicaSet", "StatefulSet")},
						{"name", g.text("web-5d8f7c")},
						{"uid", g.text("rs-uid")},
						{"controller", g.typed(func() { g.lit(g.pick("true", "false")) })},
					})
				})()
			}
			g.lit("]")
		})},
		{"managedFields", g.typed(g.managedFields)},
		{"creationTimestamp", func() { g.lit("null") }},
	}
}

// managedFields writes entries typed as k8s.io/api types them, with
// fieldsV1 (raw JSON) deep and odd: the bulk a decoder skips.
func (g *Gen) managedFields() {
	g.lit("[")
	for i := range g.r.IntN(3) {
		if i > 0 {
			g.lit(",")
		}
		g.object([]member{
			{"manager", g.text("kubectl", "kube-controller-manager")},
			{"operation", g.text("Update", "Apply")},
			{"apiVersion", g.text("v1")},
			{"time", func() { g.quoted("2026-12-01T10:00:00Z") }},
			{"fieldsType", g.text("FieldsV1")},
			{"fieldsV1", func() { g.junk(5) }},
		})
	}
	g.lit("]")
}

// stringMap writes labels or annotations; keys are data here, so they
// are written as they are, duplicates included.
func (g *Gen) stringMap() {
	g.lit("{")
	for i := range g.r.IntN(5) {
		if i > 0 {
			g.lit(",")
		}
		g.ws()
		if g.chance(3) {
			g.str()
		} else {
			g.quoted(g.pick("app", "istio.io/rev", "sidecar.istio.io/inject", "pod-template-hash", ""))
		}
		g.ws()
		g.lit(":")
		g.ws()
		g.text("web", "canary", "false", "")()
	}
	g.lit("}")
}

// damage applies one byte-level mutation.
func (g *Gen) damage() {
	if len(g.b) == 0 {
		return
	}
	i := g.r.IntN(len(g.b))
	const noise = ",:{}[]\"\\ \x00ae0-n\xff"
	switch g.r.IntN(4) {
	case 0:
		g.b = g.b[:i]
	case 1:
		g.b = append(g.b[:i], g.b[i+1:]...)
	case 2:
		g.b = append(g.b[:i], append([]byte{noise[g.r.IntN(len(noise))]}, g.b[i:]...)...)
	case 3:
		g.b[i] = noise[g.r.IntN(len(noise))]
	}
}
