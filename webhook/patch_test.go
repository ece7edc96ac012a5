package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/webhook/wire"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "canary", `a"b\c`, "tab\there", "nul\x00", "ü-ñ-日本", "bad\xffutf8", "\u2028", "<>&", "cut\xe6\x97", "end\xf0",
		strings.Repeat("x", 31) + "日本語" + strings.Repeat("\x80", 40) + "\u2028" + strings.Repeat("é", 20)} {
		got := wire.AppendJSONString(nil, s)
		if b := wire.AppendJSONBytes(nil, []byte(s)); string(b) != string(got) {
			t.Errorf("%q: AppendJSONBytes gives %s, AppendJSONString %s", s, b, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-trips to %q, encoding/json gives %q", s, back, wantBack)
		}
	}
}

func TestPatchPaths(t *testing.T) {
	cases := []struct {
		name string
		meta wire.ObjectMeta
		ops  func(p *patchBuilder)
		want string
	}{
		{"escapes slash and tilde", wire.ObjectMeta{Labels: map[string]string{}},
			func(p *patchBuilder) { p.setLabel("istio.io/rev", "a"); p.setLabel("x~y", "b") },
			`[{"op":"add","path":"/metadata/labels/istio.io~1rev","value":"a"},{"op":"add","path":"/metadata/labels/x~0y","value":"b"}]`},
		{"creates missing maps once", wire.ObjectMeta{},
			func(p *patchBuilder) {
				p.setLabel("a", "1")
				p.setLabel("b", "2")
				p.setAnnotation("c", "3")
			},
			`[{"op":"add","path":"/metadata/labels","value":{"a":"1"}},{"op":"add","path":"/metadata/labels/b","value":"2"},{"op":"add","path":"/metadata/annotations","value":{"c":"3"}}]`},
		{"remove", wire.ObjectMeta{Labels: map[string]string{"istio-injection": "enabled"}},
			func(p *patchBuilder) { p.removeLabel("istio-injection") },
			`[{"op":"remove","path":"/metadata/labels/istio-injection"}]`},
		{"nothing", wire.ObjectMeta{}, func(*patchBuilder) {}, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPatch(&c.meta)
			c.ops(p)
			if got := string(p.bytes()); got != c.want {
				t.Errorf("patch\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
