package wire_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/test/wiretest"
	"github.com/canary-router/canary-router/webhook/wire"
)

// sameDecode fails when wire.DecodeReview and the typed k8s.io/api oracle
// disagree on body: both must accept it with deeply equal reviews, or both
// reject it with the same uid and the same kind of error. A type error
// names the same field and JSON type; a syntax error is only compared as
// such, since the two decoders word their positions differently. A body
// the oracle refuses for a field the router does not read is not compared.
func sameDecode(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := wire.DecodeReview(body)
	want, inScope, wantErr := wiretest.DecodeKube(body)
	if !inScope {
		return
	}
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q:\n wire.DecodeReview error: %v\n typed decode error: %v", body, gotErr, wantErr)
	}
	if wantErr != nil {
		var g *wire.DecodeError
		var w *wiretest.DecodeError
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
			t.Fatalf("body %q: errors %T %T, want *wire.DecodeError and *wiretest.DecodeError", body, gotErr, wantErr)
		}
		if g.UID != w.UID || errorKind(g.Error()) != errorKind(w.Msg) {
			t.Fatalf("body %q:\n wire.DecodeReview: uid %q %s\n typed decode: uid %q %s", body, g.UID, g.Error(), w.UID, w.Msg)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\n wire.DecodeReview %#v\n typed decode %#v", body, got, want)
	}
}

func errorKind(msg string) string {
	if strings.Contains(msg, "cannot use a JSON") {
		return msg
	}
	if strings.HasPrefix(msg, wiretest.NotAReview) {
		return wiretest.NotAReview + "<syntax error>"
	}
	return msg
}

func TestDecodeReviewMatchesTypedDecode(t *testing.T) {
	for _, c := range wiretest.EdgeCases {
		sameDecode(t, []byte(c))
	}
	for _, body := range wiretest.FixtureBodies(t) {
		sameDecode(t, body)
	}
	n := 50000
	if testing.Short() {
		n = 5000
	}
	g := wiretest.NewGen(1)
	for range n {
		sameDecode(t, g.Review())
	}
}

func TestDecodeReviewDepthLimit(t *testing.T) {
	// The envelope is level 1; jsontext, like encoding/json, allows 10000
	// levels in all.
	for _, levels := range []int{wire.MaxDepth - 1, wire.MaxDepth} {
		for _, where := range []string{`{"x":%s}`, `{"request":{"uid":"a","object":{"metadata":{"labels":{"a":%s}}}}}`} {
			body := strings.Replace(where, "%s", strings.Repeat("[", levels)+strings.Repeat("]", levels), 1)
			sameDecode(t, []byte(body))
		}
	}
	if _, err := wire.DecodeReview([]byte(`{"x":` + strings.Repeat("[", wire.MaxDepth) + strings.Repeat("]", wire.MaxDepth) + `}`)); err == nil {
		t.Fatal("nesting beyond the limit accepted")
	}
}

func FuzzDecodeReview(f *testing.F) {
	for _, c := range wiretest.EdgeCases {
		f.Add([]byte(c))
	}
	for _, b := range wiretest.FixtureBodies(f) {
		f.Add(b)
	}
	g := wiretest.NewGen(2)
	for range 200 {
		f.Add(g.Review())
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecode(t, body)
	})
}
