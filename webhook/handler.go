package webhook

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/webhook/wire"
)

const (
	resourcePods       = "pods"
	resourceNamespaces = "namespaces"
)

// admitFunc decides one decoded request.
type admitFunc func(r *wire.Review) wire.Response

// Admitter turns admission requests into routing decisions, reading one
// policy snapshot per request.
type Admitter struct {
	store   *inforce.Store
	metrics *Metrics
	log     *zap.Logger
	// draw supplies random bits for per-pod choices; it must be safe for
	// concurrent use.
	draw         func() uint64
	ownNamespace string
	policyRef    string
	// noPolicy is the refusal of a pod while no policy is valid, rendered
	// once: the refusal path allocates no message of its own.
	noPolicy string
	cluster  clusterView
}

// AdmitterConfig holds an Admitter's collaborators.
type AdmitterConfig struct {
	Store   *inforce.Store
	Metrics *Metrics
	Log     *zap.Logger
	// Draw returns uniformly random bits; it is called from concurrent
	// requests.
	Draw func() uint64
	// OwnNamespace is the router's namespace, never routed.
	OwnNamespace string
	// PolicyRef names the policy ConfigMap (namespace/name) in refusals;
	// "" is the default install's, canary-router-system/canary-router-policy.
	PolicyRef string
	// Istio is the live view of Istio's revisions, tags and istiod health
	// that gates every write. nil takes every target as available: only
	// for tests and tools that run without a cluster.
	Istio IstioState
	// Pods balances pod-granularity pods by live counts; nil places them
	// by draw.
	Pods PodPlacer
	// Namespaces supplies namespace labels for the injection check; nil
	// takes every namespace as the pod webhook's selector matched it.
	Namespaces NamespaceLabels
}

// NewAdmitter returns an Admitter for c.
func NewAdmitter(c AdmitterConfig) *Admitter {
	if c.PolicyRef == "" {
		c.PolicyRef = "canary-router-system/canary-router-policy"
	}
	return &Admitter{store: c.Store, metrics: c.Metrics, log: c.Log, draw: c.Draw, ownNamespace: c.OwnNamespace, policyRef: c.PolicyRef, noPolicy: noPolicyMessage(c.PolicyRef),
		cluster: clusterView{istio: c.Istio, pods: c.Pods, namespaces: c.Namespaces}}
}

// PodHandler serves the mutating webhook for Pod CREATE.
func (a *Admitter) PodHandler() http.Handler { return a.handler(resourcePods, a.admitPod, nil) }

// NamespaceHandler serves the mutating webhook for Namespace CREATE and
// UPDATE.
func (a *Admitter) NamespaceHandler() http.Handler {
	return a.handler(resourceNamespaces, a.admitNamespace, nil)
}

func (a *Admitter) handler(resource string, admit admitFunc, side *sidePool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a.serve(w, req, resource, admit, side)
	})
}

// serve is the one HTTP adapter: limits, content type, the body, and a
// well-formed AdmissionReview for every outcome, panics and deadlines
// included. It does the I/O on the request's goroutine and hands the CPU
// work (decode, checks, decision) to a worker (see workers.go), or to
// side when that is set.
func (a *Admitter) serve(w http.ResponseWriter, req *http.Request, resource string, admit admitFunc, side *sidePool) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic while answering an admission request", zap.String("resource", resource),
				zap.Any("panic", p), zap.StackSkip("stack", 1))
			a.metrics.reject(resource, causeInternal)
			resp := wire.Denied("", http.StatusInternalServerError, "canary-router: internal error while handling the request")
			wire.WriteResponse(w, http.StatusInternalServerError, &resp)
		}
	}()

	if code, msg := checkRequest(req); code != 0 {
		a.refuse(w, resource, "", code, msg)
		return
	}
	buf := wire.GetBuffer()
	defer wire.PutBuffer(buf)
	body, err := wire.ReadAll(req.Body, *buf, req.ContentLength)
	// The review's raw objects alias body: the buffer goes back to the
	// pool only when this function returns, after the response is written.
	*buf = body[:0]
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			wire.Drain(req.Body)
			a.refuse(w, resource, "", http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		a.refuse(w, resource, "", http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if side != nil {
		code, resp, ok := side.run(a, body, resource, admit, admissionDeadline-time.Since(start))
		if !ok {
			// The work may still read body: the pool must not have it.
			*buf = nil
			a.timedOut(w, resource, body)
			return
		}
		wire.WriteResponseWith(w, code, &resp, buf)
		if code == http.StatusOK {
			a.metrics.observe(resource, start)
		}
		return
	}
	t, held := runOnWorker(a, body, resource, admit, start.UnixNano()+int64(admissionDeadline))
	if t == nil {
		if held {
			*buf = nil
		}
		a.timedOut(w, resource, body)
		return
	}
	// The answer holds no part of body, so it is encoded over it.
	wire.WriteResponseWith(w, t.code, &t.resp, buf)
	if t.code == http.StatusOK {
		a.metrics.observe(resource, start)
	}
	releaseTask(t)
}

// answer decodes body, checks it and decides it: the CPU work of one
// admission, run on a worker. It never writes to the connection.
func (a *Admitter) answer(body []byte, resource string, admit admitFunc) (code int, resp wire.Response) {
	uid := ""
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic while handling an admission request", zap.String("uid", uid),
				zap.String("resource", resource), zap.Any("panic", p), zap.StackSkip("stack", 1))
			a.metrics.reject(resource, causeInternal)
			code = http.StatusInternalServerError
			resp = wire.Denied(uid, http.StatusInternalServerError, "canary-router: internal error while handling the request")
		}
	}()
	r, err := wire.DecodeReview(body)
	if err != nil {
		var de *wire.DecodeError
		if errors.As(err, &de) {
			uid = de.UID
		}
		return a.refusal(resource, uid, http.StatusBadRequest, err.Error())
	}
	// Nothing of the review outlives the answer: its strings are copies,
	// and no decision keeps a map it was given.
	defer r.Release()
	uid = r.UID
	if r.Group != "" || r.Version != "v1" || r.Resource != resource {
		return a.refusal(resource, uid, http.StatusBadRequest,
			fmt.Sprintf("this endpoint admits core/v1 %s, got %s/%s %s", resource, r.Group, r.Version, r.Resource))
	}
	if msg := checkReview(r, resource); msg != "" {
		return a.refusal(resource, uid, http.StatusBadRequest, msg)
	}
	return http.StatusOK, admit(r)
}

// checkRequest returns a non-zero HTTP status for a request that is not an
// admission call at all.
func checkRequest(req *http.Request) (int, string) {
	if req.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "admission requests must use POST, got " + req.Method
	}
	ct := req.Header.Get("Content-Type")
	if ct == "application/json" {
		// What kube-apiserver sends; parsing it would allocate.
		return 0, ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, fmt.Sprintf("content type must be application/json, got %q", ct)
	}
	return 0, ""
}

// checkReview refuses a decoded review no kube-apiserver sends: an
// operation admission/v1 does not define, or an object whose own type is
// not the resource's. A subresource request carries the subresource's
// type (policy/v1 Eviction for pods/eviction, v1 Binding for
// pods/binding), and an object without type fields passes: the apiserver
// always sets them, and the metadata the router reads is the same for
// every kind. Known operations the endpoint does not act on
// (a DELETE, say) are not refused here: they are allowed unchanged, so a
// webhook rule wider than needed never blocks them.
func checkReview(r *wire.Review, resource string) string {
	switch r.Operation {
	case "CREATE", "UPDATE", "DELETE", "CONNECT":
	default:
		return fmt.Sprintf("unknown operation %q: admission/v1 defines CREATE, UPDATE, DELETE and CONNECT", r.Operation)
	}
	if r.SubResource != "" {
		return ""
	}
	kind := ""
	switch resource {
	case resourcePods:
		kind = "Pod"
	case resourceNamespaces:
		kind = "Namespace"
	case resourceConfigMaps:
		kind = "ConfigMap"
	}
	if (r.ObjectKind != "" && r.ObjectKind != kind) || (r.ObjectAPIVersion != "" && r.ObjectAPIVersion != "v1") {
		return fmt.Sprintf("request object is %q %q, but the request is for core/v1 %s (kind %s)", r.ObjectAPIVersion, r.ObjectKind, resource, kind)
	}
	return ""
}

// refuse answers a request the router cannot act on.
func (a *Admitter) refuse(w http.ResponseWriter, resource, uid string, code int, msg string) {
	code, resp := a.refusal(resource, uid, code, msg)
	wire.WriteResponse(w, code, &resp)
}

// refusal is the answer to a request the router cannot act on.
func (a *Admitter) refusal(resource, uid string, code int, msg string) (int, wire.Response) {
	a.metrics.reject(resource, causeBadRequest)
	a.log.Info("refusing malformed admission request", zap.String("uid", uid),
		zap.String("resource", resource), zap.Int("code", code), zap.String("reason", msg))
	return code, wire.Denied(uid, int32(code), msg)
}

// requestLog returns a logger carrying the request's identity; built only
// when something is logged, so the hot path pays nothing for it.
func (a *Admitter) requestLog(r *wire.Review) *zap.Logger {
	return a.log.With(zap.String("uid", r.UID), zap.String("resource", r.Resource),
		zap.String("namespace", r.Namespace), zap.String("operation", r.Operation))
}
