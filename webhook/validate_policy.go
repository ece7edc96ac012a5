package webhook

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/webhook/wire"
)

// PathPolicy is where the apiserver sends policy ConfigMap writes for
// validation.
const PathPolicy = "/validate-policy"

const resourceConfigMaps = "configmaps"

// weightJumpWarning is the weight change, in points, past which an edit
// earns a warning: a jump that large moves most of the fleet at once.
const weightJumpWarning = 50

// RevisionLister tells whether an Istio revision or revision tag exists.
// synced is false while the answer is not known yet.
type RevisionLister interface {
	Exists(name string) (exists, synced bool)
}

// PolicyValidator rejects an invalid policy ConfigMap at `kubectl apply`
// time with every bad field named, and warns on valid but risky edits.
type PolicyValidator struct {
	Namespace string
	Name      string
	// Revisions, when set, lets the validator warn about targets (and a
	// gatewayRevision) that do not exist yet.
	Revisions RevisionLister
	// PrometheusAllowed is the router's allowlist of Prometheus URLs
	// (serve --prometheus-allowed-url): a policy whose rollout gates name
	// another is refused. Empty allows none.
	PrometheusAllowed []string
	// Restarts, when set, dry-runs each edit's migration plan, and the
	// validator warns when it moves more than WarnRestartShare of the
	// workloads the router places (serve --warn-restart-share).
	Restarts         RestartEstimator
	WarnRestartShare float64
	// inforce.Overlay, when set, is the rollout's weights in force
	// (inforce.Snapshot.Rollout): the dry run plans both policies through it, as
	// the router would route them.
	Overlay func() *inforce.Overlay
	// parse is policy.Parse when nil; tests slow it down.
	parse func([]byte) (*policy.Policy, error)
}

// PolicyHandler serves the validating webhook for the policy ConfigMap.
// Validations run on a pool of their own, never on the pod admission
// workers (policyPool).
func (a *Admitter) PolicyHandler(v *PolicyValidator) http.Handler {
	return a.handler(resourceConfigMaps, v.admit, policyPool)
}

type configMapData struct {
	Data map[string]string `json:"data"`
}

func (v *PolicyValidator) admit(r *wire.Review) wire.Response {
	if r.Operation != "CREATE" && r.Operation != "UPDATE" {
		return wire.Allowed(r.UID, nil)
	}
	ns := r.Namespace
	if ns == "" {
		ns = r.Object.Namespace
	}
	if ns != v.Namespace || r.Object.Name != v.Name {
		return wire.Allowed(r.UID, nil)
	}
	var cm configMapData
	if err := json.Unmarshal(r.RawObject, &cm); err != nil {
		return wire.Denied(r.UID, http.StatusBadRequest, "request object is not a ConfigMap: "+err.Error())
	}
	where := fmt.Sprintf("ConfigMap %s/%s", v.Namespace, v.Name)
	doc, ok := cm.Data[PolicyKey]
	if !ok {
		return invalid(r.UID, where, []string{"data." + PolicyKey + ": required: the router reads its policy from this key"})
	}
	parse := v.parse
	if parse == nil {
		parse = policy.Parse
	}
	p, err := parse([]byte(doc))
	if err != nil {
		return invalid(r.UID, where, fieldMessages(err))
	}
	if p.Rollout != nil && p.Rollout.Gates.Prometheus != nil && !policy.PrometheusURLAllowed(p.Rollout.Gates.Prometheus.URL, v.PrometheusAllowed) {
		return invalid(r.UID, where, []string{"rollout.gates.prometheus.url: " + policy.PrometheusNotAllowed(p.Rollout.Gates.Prometheus.URL, v.PrometheusAllowed)})
	}
	var warnings []string
	var old *policy.Policy
	if r.Operation == "UPDATE" {
		old = previousPolicy(r.RawOldObject)
		warnings = editWarnings(old, p)
	}
	warnings = append(warnings, v.missingTargets(p)...)
	warnings = append(warnings, v.restartWarnings(old, p)...)
	return wire.Allowed(r.UID, warnings)
}

// invalid refuses a policy; kubectl prints the message after "denied the
// request:", so it names the object once and then every bad field.
func invalid(uid, where string, problems []string) wire.Response {
	msg := fmt.Sprintf("invalid policy in %s, key %s (the policy in force is unchanged): %s",
		where, PolicyKey, strings.Join(problems, "; "))
	return wire.Denied(uid, http.StatusUnprocessableEntity, msg)
}

// fieldMessages lists a parse error's problems, one per bad field.
func fieldMessages(err error) []string {
	if verr, ok := err.(policy.ValidationError); ok {
		out := make([]string, len(verr))
		for i, fe := range verr {
			out[i] = fe.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// previousPolicy parses the policy an UPDATE replaces; nil when there was
// none or it was invalid, so nothing is compared against it.
func previousPolicy(raw []byte) *policy.Policy {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var cm configMapData
	if json.Unmarshal(raw, &cm) != nil {
		return nil
	}
	doc, ok := cm.Data[PolicyKey]
	if !ok {
		return nil
	}
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		return nil
	}
	return p
}

// editWarnings names the risky parts of a valid edit.
func editWarnings(old, cur *policy.Policy) []string {
	if old == nil {
		return nil
	}
	var w []string
	if old.Seed != cur.Seed {
		w = append(w, fmt.Sprintf("seed changed from %q to %q: every sticky namespace and workload choice is reshuffled when its pods are next created", old.Seed, cur.Seed))
	}
	// Between pod and workload granularity only how new pods are drawn
	// changes; to or from namespace granularity, namespace labels are
	// involved, which is what the README warns about.
	if old.Granularity != cur.Granularity && (old.Granularity == policy.GranularityNamespace || cur.Granularity == policy.GranularityNamespace) {
		w = append(w, fmt.Sprintf("granularity changed from %s to %s: existing namespaces keep their labels; see the README before switching", old.Granularity, cur.Granularity))
	}
	if old.Rollout != nil && cur.Rollout == nil && len(old.Rollout.Steps) > 0 {
		last := old.Rollout.Steps[len(old.Rollout.Steps)-1].Weights
		w = append(w, fmt.Sprintf("rollout block removed: if the rollout completed, routing stays at its final weights (%s) until targets say the same; "+
			"if it did not, targets route again and the migration moves workloads to them", formatTargets(last)))
	}
	before := map[string]float64{}
	for _, t := range old.Targets {
		before[t.Revision] = t.Weight
	}
	for i, t := range cur.Targets {
		if d := t.Weight - before[t.Revision]; math.Abs(d) > weightJumpWarning {
			w = append(w, fmt.Sprintf("targets[%d] (%s): weight jumps from %g to %g, more than %d points at once", i, t.Revision, before[t.Revision], t.Weight, weightJumpWarning))
		}
		delete(before, t.Revision)
	}
	for rev, weight := range before {
		if weight > weightJumpWarning {
			w = append(w, fmt.Sprintf("target %s removed: its weight drops from %g to 0, more than %d points at once", rev, weight, weightJumpWarning))
		}
	}
	return w
}

// missingTargets warns about targets no Istio injector answers to yet:
// valid, since an operator may write the policy before installing the
// revision, but pods routed there would be refused or unmeshed.
func (v *PolicyValidator) missingTargets(p *policy.Policy) []string {
	if v.Revisions == nil {
		return nil
	}
	var w []string
	for i, t := range p.Targets {
		if t.Weight == 0 {
			continue
		}
		if exists, synced := v.Revisions.Exists(t.Revision); synced && !exists {
			w = append(w, fmt.Sprintf("targets[%d].revision: no Istio revision or tag named %q exists yet (no injector webhook configuration labelled istio.io/rev or istio.io/tag=%s)", i, t.Revision, t.Revision))
		}
	}
	if g := p.GatewayRevision; g != "" {
		if exists, synced := v.Revisions.Exists(g); synced && !exists {
			w = append(w, fmt.Sprintf("gatewayRevision: no Istio revision or tag named %q exists (no injector webhook configuration labelled istio.io/rev or istio.io/tag=%s): every gateway pod would be refused, an ingress outage", g, g))
		}
	}
	return w
}

func formatTargets(ts []policy.Target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s=%g", t.Revision, t.Weight)
	}
	return strings.Join(parts, " ")
}
