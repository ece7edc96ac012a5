package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/canary-router/canary-router/webhook/wire"
)

// admissionDeadline is how long an admission may take, from the start of
// its request to the answer. The webhooks' timeoutSeconds is 5
// (deploy/base/webhooks.yaml, TestAdmissionDeadlineUnderTimeout): the
// answer must reach the apiserver before that, across the network, or
// the apiserver answers for the router with its failure policy and a
// bare "context deadline exceeded". It is a variable for tests.
var admissionDeadline = 3 * time.Second

// policyValidations bounds the policy validations in flight at once, in
// the whole process.
const policyValidations = 2

// policyPool runs the policy validator. A validation parses a policy
// document of up to 64 KiB, which was once unbounded work (gate queries
// were Go templates), and is written by whoever may write the ConfigMap:
// on the admission workers, a handful of them in flight starved every
// pod admission behind them.
var policyPool = &sidePool{slots: make(chan struct{}, policyValidations)}

// sidePool runs admissions that must not hold the admission workers,
// each on a goroutine of its own, at most cap(slots) at once. A request
// that finds no slot free waits for one until its deadline.
type sidePool struct {
	slots chan struct{}
}

type sideAnswer struct {
	code int
	resp wire.Response
}

// run answers body within wait, or reports ok false; a slot stays taken
// until its work ends, deadline or not, so abandoned work still counts
// against the bound. body is the work's until it ends.
func (p *sidePool) run(a *Admitter, body []byte, resource string, admit admitFunc, wait time.Duration) (code int, resp wire.Response, ok bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-timer.C:
		return 0, wire.Response{}, false
	}
	done := make(chan sideAnswer, 1)
	go func() {
		defer func() { <-p.slots }()
		c, r := a.answer(body, resource, admit)
		done <- sideAnswer{c, r}
	}()
	select {
	case r := <-done:
		return r.code, r.resp, true
	case <-timer.C:
		return 0, wire.Response{}, false
	}
}

// timedOut answers an admission that found no answer by its deadline,
// with a well-formed review as each webhook's failure policy would have
// it, but in time and with a message of the router's own: a pod is
// refused (failurePolicy Fail: never admitted unrouted), a policy edit
// too (it could not be checked, and the policy in force stays), and a
// namespace admitted unchanged with a warning (failurePolicy Ignore).
func (a *Admitter) timedOut(w http.ResponseWriter, resource string, body []byte) {
	uid := reviewUID(body)
	a.metrics.reject(resource, causeTimeout)
	a.log.Warn("admission not answered by its deadline", zap.String("uid", uid),
		zap.String("resource", resource), zap.Duration("deadline", admissionDeadline))
	within := "within " + admissionDeadline.String()
	var resp wire.Response
	switch resource {
	case resourceNamespaces:
		resp = wire.Allowed(uid, []string{"canary-router: no routing decision " + within +
			" (the replica is overloaded); the namespace is admitted unchanged"})
	case resourceConfigMaps:
		resp = wire.Denied(uid, http.StatusServiceUnavailable, "canary-router: the policy could not be validated "+within+
			" (at most "+strconv.Itoa(policyValidations)+" validations run at once per replica); the policy in force is unchanged: retry")
	default:
		resp = wire.Denied(uid, http.StatusServiceUnavailable, "canary-router: no routing decision "+within+
			" (the replica is overloaded); the pod is refused rather than admitted without its sidecar: retry")
	}
	wire.WriteResponse(w, http.StatusOK, &resp)
}

// reviewUID is the request's uid, which the apiserver requires in the
// answer; "" when the body has none.
func reviewUID(body []byte) string {
	r, err := wire.DecodeReview(body)
	if err != nil {
		var de *wire.DecodeError
		if errors.As(err, &de) {
			return de.UID
		}
		return ""
	}
	defer r.Release()
	return r.UID
}
