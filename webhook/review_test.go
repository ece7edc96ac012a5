package webhook

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/test/podgen"
)

// sameDecode fails when decodeReview and the typed k8s.io/api oracle
// disagree on body: both must accept it with deeply equal reviews, or both
// reject it with the same uid and the same kind of error. A type error
// names the same field and JSON type; a syntax error is only compared as
// such, since the two decoders word their positions differently. A body
// the oracle refuses for a field the router does not read is not compared.
func sameDecode(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := decodeReview(body)
	want, inScope, wantErr := decodeReviewKube(body)
	if !inScope {
		return
	}
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q:\n decodeReview error: %v\n typed decode error: %v", body, gotErr, wantErr)
	}
	if wantErr != nil {
		var g, w *decodeError
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
			t.Fatalf("body %q: errors %T %T, want *decodeError", body, gotErr, wantErr)
		}
		if g.uid != w.uid || errorKind(g.msg) != errorKind(w.msg) {
			t.Fatalf("body %q:\n decodeReview: uid %q %s\n typed decode: uid %q %s", body, g.uid, g.msg, w.uid, w.msg)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\n decodeReview %#v\n typed decode %#v", body, got, want)
	}
}

func errorKind(msg string) string {
	if strings.Contains(msg, "cannot use a JSON") {
		return msg
	}
	if strings.HasPrefix(msg, notAReview) {
		return notAReview + "<syntax error>"
	}
	return msg
}

// edgeCases are bodies written to hit one rule each.
var edgeCases = []string{
	``, ` `, `null`, `true`, `"x"`, `1`, `[]`, `{}`, `{} {}`, `{}x`, "\ufeff{}",
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"DELETE"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"DELETE","object":null}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"metadata":null}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":5}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":[]}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"kind":5}}}`,
	// Repeated keys: last scalar wins, null leaves a string and a raw
	// object alone, maps and objects merge, null clears maps, slices and
	// the request.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":null,"object":{"metadata":{"labels":{"a":"1"},"labels":{"b":null}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{"a":"1"},"labels":null}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","resource":{"group":"g"},"resource":{"version":"v1"},"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":null}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":null,"request":{"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{}},"request":{"namespace":"n"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"name":"x"}},"object":{"metadata":{"labels":{"a":"b"}}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":5}},"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","dryRun":true,"dryRun":null,"object":{}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"name":"x"}},"object":null,"oldObject":{},"oldObject":null}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"kind":5},"object":null}}`,
	// Slices fill in place: stale elements of a longer earlier array
	// come back when a later array grows again.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[{"kind":"A","controller":true},{"name":"b"},{"kind":"C"}],"ownerReferences":[{"name":"x"}],"ownerReferences":[null,null,{"name":"z"}]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[{"kind":"A"}],"ownerReferences":[]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"ownerReferences":[5,{"controller":"yes"}]}}}}`,
	// Keys match case-sensitively, as kube-apiserver's decoder matches
	// them: other spellings are unknown fields. Escapes still spell a name.
	`{"APIVERSION":"admission.k8s.io/v1","\u212aind":"AdmissionReview","Request":{"\u0075id":"a","OBJECT":{"METADATA":{"LABELS":{"K":"V"},"name\u017f":"x","Name":"y"}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"\u0075id":"a","UID":"b","Object":5,"object":{"Metadata":5,"metadata":{"LABELS":{"K":"V"},"name\u017f":"x","Name":"y","n\u0061me":"z"}}}}`,
	// Wrong types in fields the router does not read are not its concern.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","userInfo":5,"object":{"metadata":{"uid":[],"managedFields":7}}}}`,
	// Strings: escapes, surrogates, invalid UTF-8 (U+FFFD, as encoding/json).
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"\\ud83d\\ude00\\ud800\\u0041\\udc00\\ud800\\ud800\xff\xc3\xed\xa0\x80\",\"object\":{\"metadata\":{\"labels\":{\"\xff\":\"\\u2028\",\"\\ufffd\":\"x\"}}}}}",
	// Wrong types: the first one is reported, envelope before object.
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":{"a":1},"name":true}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5,"dryRun":"x","object":{"metadata":{"labels":[]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","object":{"metadata":{"labels":[]}}},"kind":[1,}`,
	// Numbers and literals are checked even where they are skipped.
	`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":.5}`, `{"x":tru}`, `{"x":nul}`, `{"x":[1,]}`, `{"x":{"a":1,}}`, `{"x":"\u12"}`, "{\"x\":\"\x01\"}",
	`{"x":-0.0e+0,"y":1E-7,"z":[true,false,null,{}]}`,
}

func TestDecodeReviewMatchesTypedDecode(t *testing.T) {
	for _, c := range edgeCases {
		sameDecode(t, []byte(c))
	}
	for _, body := range fixtureBodies(t) {
		sameDecode(t, body)
	}
	n := 50000
	if testing.Short() {
		n = 5000
	}
	g := newReviewGen(1)
	for range n {
		sameDecode(t, g.review())
	}
}

func TestDecodeReviewDepthLimit(t *testing.T) {
	// The envelope is level 1; jsontext, like encoding/json, allows 10000
	// levels in all.
	for _, levels := range []int{maxDepth - 1, maxDepth} {
		for _, where := range []string{`{"x":%s}`, `{"request":{"uid":"a","object":{"metadata":{"labels":{"a":%s}}}}}`} {
			body := strings.Replace(where, "%s", strings.Repeat("[", levels)+strings.Repeat("]", levels), 1)
			sameDecode(t, []byte(body))
		}
	}
	if _, err := decodeReview([]byte(`{"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`)); err == nil {
		t.Fatal("nesting beyond the limit accepted")
	}
}

// fixtureBodies are the reviews the handler tests and the benchmarks send.
func fixtureBodies(t testing.TB) [][]byte {
	bodies := [][]byte{
		reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "5d8f7c", nil), false),
		reviewBody(t, "pods", "CREATE", "shop", deploymentPod("shop", "web", "5d8f7c", map[string]string{"istio.io/rev": "canary"}), true),
		reviewBody(t, "namespaces", "UPDATE", "", deploymentPod("shop", "web", "1", nil), false),
	}
	for _, s := range podgen.Shapes {
		bodies = append(bodies, podgen.Review(podgen.Pod(s, 0), "uid-1"))
	}
	return bodies
}

func FuzzDecodeReview(f *testing.F) {
	for _, c := range edgeCases {
		f.Add([]byte(c))
	}
	for _, b := range fixtureBodies(f) {
		f.Add(b)
	}
	g := newReviewGen(2)
	for range 200 {
		f.Add(g.review())
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecode(t, body)
	})
}
