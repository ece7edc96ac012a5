package webhook

import (
	"strings"
	"sync/atomic"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
)

// IstioState is the router's current view of Istio's control planes:
// which targets exist and have a ready istiod, and the webhook order.
type IstioState interface {
	// Current returns the State in force, nil before the first lists.
	Current() *istio.State
}

// PodPlacer places a pod by the live pod counts of its controller (see
// podview.View.Place).
type PodPlacer interface {
	Place(k podview.Key, p *policy.Policy, down []bool, draw uint64, reserve bool) (choice, preferred int, ok bool)
	// Synced tells why Place declined: before the first list of pods, or
	// (once synced) because the cap on reserving units was reached.
	Synced() bool
}

var (
	_ IstioState = (*istio.Watcher)(nil)
	_ PodPlacer  = (*podview.View)(nil)
)

// notSyncedDetail explains CauseUnknown.
const notSyncedDetail = "canary-router has not read the cluster's MutatingWebhookConfigurations and istiod EndpointSlices yet"

// clusterView is what the Admitter knows of the cluster beyond the request.
type clusterView struct {
	// istio nil takes every target as available: only for tests and tools
	// that run without a cluster.
	istio IstioState
	// pods nil places pod-granularity pods by draw.
	pods PodPlacer
	// namespaces nil takes a pod's namespace as the pod webhook's
	// namespaceSelector matched it.
	namespaces NamespaceLabels
	cache      atomic.Pointer[routes]
}

// routes is what one policy snapshot meets in the cluster: per target,
// whether it can be written and why not, and the messages that follow.
// Built once per (policy, Istio state) pair and shared by every request
// until either changes, so the hot path does no lookups or string work.
type routes struct {
	snap  *inforce.Snapshot
	state *istio.State
	// status is indexed like snap.Policy.Targets.
	status []istio.Status
	// down is nil when every target is available, else indexed like
	// snap.Policy.Targets (policy.PodSubject.Down).
	down []bool
	// unavailable lists every down target with its cause, for refusals.
	unavailable string
	// order is the admission warning about the webhook order, "" when the
	// order is right.
	order string
	// gatewayRev is where excluded gateway pods stay
	// (policy.GatewayPlacement); gatewayWarning tells the user when the
	// router chose it.
	gatewayRev, gatewayWarning string
	// rollout warns about a stopped rollout (inforce.Overlay.Warning).
	rollout string
}

// istioState returns the Istio state in force, nil without a view.
func (c *clusterView) istioState() *istio.State {
	if c.istio == nil {
		return nil
	}
	return c.istio.Current()
}

// routesFor returns the routes of snap in the current Istio state.
func (c *clusterView) routesFor(snap *inforce.Snapshot) *routes {
	var state *istio.State
	if c.istio != nil {
		state = c.istio.Current()
	}
	if r := c.cache.Load(); r != nil && r.snap == snap && r.state == state {
		return r
	}
	// Two requests may build the same routes at once; either result is
	// right, and the later store wins.
	r := buildRoutes(snap, state, c.istio != nil)
	c.cache.Store(r)
	return r
}

// buildRoutes resolves every target of snap in state. gated is false when
// the router has no Istio view at all (tests): every target is available.
func buildRoutes(snap *inforce.Snapshot, state *istio.State, gated bool) *routes {
	targets := snap.Policy.Targets
	r := &routes{snap: snap, state: state, status: make([]istio.Status, len(targets))}
	var causes []string
	for i, t := range targets {
		switch {
		case !gated:
			r.status[i] = istio.Status{Revision: t.Revision}
		case state == nil:
			r.status[i] = istio.Status{Cause: istio.CauseUnknown, Detail: notSyncedDetail}
		default:
			r.status[i] = state.Target(t.Revision)
		}
		// A target of weight 0 counts too: it may stand in for the others
		// as the last resort (policy.Balance), so it must be live.
		if !r.status[i].Available() {
			if r.down == nil {
				r.down = make([]bool, len(targets))
			}
			r.down[i] = true
			causes = append(causes, t.Revision+" ("+string(r.status[i].Cause)+"): "+r.status[i].Detail)
		}
	}
	r.unavailable = strings.Join(causes, "; ")
	r.rollout = snap.Rollout.Warning()
	defaultLive := !gated || (state != nil && state.Target(policy.DefaultRevision).Available())
	rev, chosen := snap.Policy.GatewayPlacement(defaultLive, r.down)
	r.gatewayRev = rev
	if chosen && rev != "" {
		r.gatewayWarning = "canary-router kept this gateway pod on revision " + rev +
			" (gateways: exclude keeps gateways out of the split; set gatewayRevision in the policy to choose their revision)"
	}
	if state != nil {
		if p := state.OrderProblem(); p != "" {
			r.order = "canary-router: " + p + ". This pod may be injected by the wrong revision, twice, or not at all."
		}
	}
	return r
}

// statusOf returns the status of the target named rev.
func (r *routes) statusOf(rev string) istio.Status {
	for i, t := range r.snap.Policy.Targets {
		if t.Revision == rev {
			return r.status[i]
		}
	}
	return istio.Status{Revision: rev}
}

// refusal explains why an object that needs routing is refused: every
// target is unavailable, each named with its cause; policyRef names the
// policy ConfigMap (namespace/name).
func (r *routes) refusal(what, policyRef string) string {
	return "canary-router: no routing target is available, so " + what +
		" is refused rather than admitted without a sidecar: " + r.unavailable +
		". Fix the Istio control plane or the policy (ConfigMap " + policyRef + ")"
}

// fallbackWarning tells the user their object went to revision because
// avoided, the policy's choice, is unavailable.
func (r *routes) fallbackWarning(what, revision, avoided string) string {
	return "canary-router routed " + what + " to " + revision + " instead of " + avoided + ": " + r.statusOf(avoided).Detail
}

// tagRevision returns the revision a target resolves to when it is a
// revision tag, else "".
func (r *routes) tagRevision(rev string) string {
	if s := r.statusOf(rev); s.Tag {
		return s.Revision
	}
	return ""
}
