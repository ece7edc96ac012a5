package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"sync"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// floorPatch is the size and shape of the router's answer for a routed
// pod (a label and the decision annotation), so the client does the same
// work checking either server.
const floorPatch = `[{"op":"add","path":"/metadata/labels/istio.io~1rev","value":"stable"},` +
	`{"op":"add","path":"/metadata/annotations/canary-router.io~1decision","value":"{\"revision\":\"stable\",\"reason\":\"sticky\",\"unit\":\"Deployment/web\",\"generation\":1,\"policy\":\"0a1b2c3d\"}"}]`

// floor serves the no-decode floor: the router's server stack
// (controller-runtime's webhook server, same TLS settings, HTTP/2) with a
// handler that reads the body and writes a canned AdmissionReview.
func floor(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "TLS port")
	certDir := fs.String("cert-dir", "", "directory with tls.crt and tls.key")
	echoUID := fs.Bool("echo-uid", false, "copy the request uid into the answer, as kube-apiserver requires (a byte search, no decoding)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	crlog.SetLogger(zapr.NewLogger(zap.NewNop()))
	canned, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{
			UID: "floor", Allowed: true, Patch: []byte(floorPatch), PatchType: ptr(admissionv1.PatchTypeJSONPatch),
		},
	})
	if err != nil {
		return err
	}
	srv := crwebhook.NewServer(crwebhook.Options{
		Host: "127.0.0.1", Port: *port, CertDir: *certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	h := cannedHandler(canned)
	if *echoUID {
		h = echoHandler(canned)
	}
	srv.Register("/mutate-pods", h)
	return srv.Start(ctx)
}

var floorBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// cannedHandler drains the request body into a pooled buffer, as any
// server must, and answers with canned.
func cannedHandler(canned []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		bp := floorBuffers.Get().(*[]byte)
		buf, _ := readBody(req.Body, (*bp)[:0])
		*bp = buf[:0]
		floorBuffers.Put(bp)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(canned)
	})
}

// echoHandler answers like cannedHandler but with the request's uid:
// kube-apiserver rejects an answer for another uid. kube-apiserver writes
// request.uid as the first "uid" of the body, so finding it is a byte
// search, not a decode.
func echoHandler(canned []byte) http.Handler {
	before, after, _ := bytes.Cut(canned, []byte(`"uid":"floor"`))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		bp := floorBuffers.Get().(*[]byte)
		body, _ := readBody(req.Body, (*bp)[:0])
		uid := []byte{}
		if _, rest, ok := bytes.Cut(body, []byte(`"uid":"`)); ok {
			if i := bytes.IndexByte(rest, '"'); i >= 0 {
				uid = rest[:i]
			}
		}
		w.Header().Set("Content-Type", "application/json")
		// The writes are buffered by the server: one response frame.
		_, _ = w.Write(before)
		_, _ = w.Write([]byte(`"uid":"`))
		_, _ = w.Write(uid)
		_, _ = w.Write([]byte(`"`))
		_, _ = w.Write(after)
		*bp = body[:0]
		floorBuffers.Put(bp)
	})
}

// readBody reads r to its end into buf.
func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func ptr[T any](v T) *T { return &v }
