package e2e

import (
	"fmt"
	"slices"
	"strings"
)

// The matrix's oracle: what each cell of TestNeverUnmeshedMatrix must
// give, and how a pod creation's result is compared with it.

// result is what happened to one pod creation.
type result struct {
	out   outcome
	rev   string // injected: the revision Istio recorded
	label string // admitted: the pod's istio.io/rev label
	code  int32  // refused: the HTTP status
	msg   string // refused: the error
}

func (r result) String() string {
	switch r.out {
	case outInjected:
		return fmt.Sprintf("injected by %s (label istio.io/rev=%q)", r.rev, r.label)
	case outRefused:
		return fmt.Sprintf("refused %d: %s", r.code, r.msg)
	}
	return string(r.out)
}

// expectation is the outcome a cell must have: a router that refuses too
// much fails it as surely as one that admits a pod bare.
type expectation struct {
	out outcome
	// rev, for injected: the revision that must inject the pod, or
	// routedRev: one of the policy's targets, the one the router
	// labelled the pod with.
	rev  string
	code int32  // refused: the HTTP status
	msg  string // refused: a part of the message
}

const routedRev = "<routed>"

func (e expectation) String() string {
	switch e.out {
	case outInjected:
		return "injected by " + e.rev
	case outRefused:
		return fmt.Sprintf("refused %d containing %q", e.code, e.msg)
	}
	return string(e.out)
}

// met reports whether r is what e expects.
func (e expectation) met(r result) bool {
	if r.out != e.out {
		return false
	}
	switch e.out {
	case outInjected:
		if e.rev == routedRev {
			return slices.Contains(routedRevisions, r.rev) && r.label == r.rev
		}
		return r.rev == e.rev
	case outRefused:
		return r.code == e.code && strings.Contains(r.msg, e.msg)
	}
	return true
}

// Messages of refusals by the API server when a webhook cannot be called.
const (
	routerUnreachable = `failed calling webhook "pods.canary-router.io"`
	istioUnreachable  = `failed calling webhook "rev.object.sidecar-injector.istio.io"`
)

// expect is the matrix's oracle, from Istio's selectors (a namespace
// label wins; a pod label is honoured only in a namespace with neither
// Istio label; an unknown value matches nothing) and the router's promise
// (in a namespace it manages: injected by a live revision or refused,
// naming the pin). nsRev is the namespace's istio.io/rev once settled.
func expect(tag bool, nsv variant, nsRev string, pv variant, routerUp bool) expectation {
	pin, pinned := pv.labels["istio.io/rev"]
	switch {
	case pv.labels["sidecar.istio.io/inject"] == "false":
		return expectation{out: outOptedOut}
	case nsRev != "":
		return expectation{out: outInjected, rev: nsRev}
	case nsv.name == "none":
		// Nobody manages the namespace: Istio's object selectors alone.
		switch {
		case pinned && slices.Contains(liveRevisions, pin):
			return expectation{out: outInjected, rev: pin}
		case pinned && pin == revDown:
			return expectation{out: outRefused, code: 500, msg: istioUnreachable}
		case !pinned && tag && pv.labels["sidecar.istio.io/inject"] == "true":
			return expectation{out: outInjected, rev: "stable"}
		}
		return expectation{out: outUnmanaged}
	case !routerUp:
		return expectation{out: outRefused, code: 500, msg: routerUnreachable}
	}
	// Opted in and without an Istio label: the router sees the pod.
	switch {
	case pinned && slices.Contains(liveRevisions, pin):
		return expectation{out: outInjected, rev: pin}
	case pinned && pin == revDown:
		return expectation{out: outRefused, code: 503, msg: "injected by revision " + revDown}
	case pinned:
		return expectation{out: outRefused, code: 403, msg: `pinned to revision "` + pin + `"`}
	case pv.annotations["inject.istio.io/templates"] == "gateway":
		// gateways: exclude keeps them on the default tag or, without
		// one, on the first target: stable either way.
		return expectation{out: outInjected, rev: "stable"}
	}
	return expectation{out: outInjected, rev: routedRev}
}

// tally counts outcomes and keeps the cells that missed.
type tally struct {
	counts map[outcome]int
	missed []string
}

func (ty *tally) add(r result, want expectation, what string) {
	if ty.counts == nil {
		ty.counts = map[outcome]int{}
	}
	ty.counts[r.out]++
	if !want.met(r) {
		ty.missed = append(ty.missed, fmt.Sprintf("%s: %s, want %s", what, r, want))
	}
}

func (ty *tally) merge(o tally) {
	if ty.counts == nil {
		ty.counts = map[outcome]int{}
	}
	for k, v := range o.counts {
		ty.counts[k] += v
	}
	ty.missed = append(ty.missed, o.missed...)
}
