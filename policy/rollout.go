package policy

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Rollout defaults.
const (
	// DefaultRolloutInterval is how often the leader measures the gates
	// while a step progresses or holds; a Prometheus scrape interval is
	// the natural floor.
	DefaultRolloutInterval = 30 * time.Second
	maxRolloutSteps        = 100
)

// FailureAction is what a rollout does when a gate fails.
type FailureAction string

// Failure actions a plan may name.
const (
	// OnFailurePause stops at the current weights until an operator acts.
	OnFailurePause FailureAction = "pause"
	// OnFailureRollback moves the weights back (RollbackTo) and lets the
	// migration move the affected workloads back.
	OnFailureRollback FailureAction = "rollback"
)

// RollbackTarget is where a rollback takes the weights.
type RollbackTarget string

// Rollback targets a plan may name.
const (
	// RollbackToZero takes the canary to weight 0: every workload moved
	// to it goes back to the stable targets.
	RollbackToZero RollbackTarget = "zero"
	// RollbackToLastPassed takes the weights to the last step whose gates
	// passed for its whole hold (zero when none did).
	RollbackToLastPassed RollbackTarget = "lastPassed"
)

var rolloutFields = []string{"canary", "onFailure", "rollbackTo", "interval", "steps", "gates"}
var stepFields = []string{"canary", "weights", "hold"}

// Rollout is the policy's optional self-driving plan (issue 17): ordered
// steps of weights, each held while gates are measured, and what to do
// when a gate fails. While it is present the leader walks it and the
// weights of the step in force (kept in the router's status object, never
// in this ConfigMap) override Targets' weights for routing and migration;
// Targets still names the revisions and is what routes before the leader's
// first step and after the block is removed.
//
// Changing the plan mid-rollout (see docs and controller/rollout):
//   - a change of Canary or of the targets' revisions is a new rollout: it
//     starts again at step 0;
//   - otherwise the step index in force is kept (clamped to the last step
//     of a shorter plan); when that step's weights changed the step is
//     entered again (its migration runs to the new weights and its hold
//     restarts); when they did not, its hold and gates follow the new plan
//     from the next measurement;
//   - a paused, rolled-back or complete rollout stays so: an edit never
//     restarts a rollout an operator or a gate stopped (use retry).
type Rollout struct {
	// Canary is the target being rolled out; by default the last target.
	Canary string `json:"canary"`
	// OnFailure says what a failed gate does (default pause).
	OnFailure FailureAction `json:"onFailure"`
	// RollbackTo is where a rollback takes the weights (default zero).
	RollbackTo RollbackTarget `json:"rollbackTo"`
	// Interval is how often gates are measured.
	Interval time.Duration `json:"interval"`
	// Steps are walked in order; each holds its weights for Hold.
	Steps []Step `json:"steps"`
	// Gates must pass before each advance and while a step holds.
	Gates Gates `json:"gates"`
}

// Step is one step of a rollout. Weights is always resolved to every
// target, in Targets order, whichever form the operator wrote.
type Step struct {
	Weights []Target `json:"weights"`
	// Hold is how long the weights are held, with gates passing, before
	// the next step; Manual waits for `canary-router rollout promote`.
	Hold   time.Duration `json:"hold"`
	Manual bool          `json:"manual,omitempty"`
}

// CanaryIndex is the index of the canary in Targets.
func (p *Policy) CanaryIndex() int {
	if p.Rollout == nil {
		return -1
	}
	for i, t := range p.Targets {
		if t.Revision == p.Rollout.Canary {
			return i
		}
	}
	return -1
}

// ZeroWeights returns the targets with the canary at 0 and its share
// given to the others in proportion to their policy weights: where a
// rollback to zero takes the routing.
func (p *Policy) ZeroWeights() []Target {
	return canaryWeights(p.Targets, p.CanaryIndex(), 0)
}

// canaryWeights gives the canary at index c weight w and shares 100-w
// among the others in proportion to their policy weights (evenly when
// those are all 0), so a plan written as canary percentages works with
// any number of stable targets.
func canaryWeights(targets []Target, c int, w float64) []Target {
	out := make([]Target, len(targets))
	var rest float64
	for i, t := range targets {
		out[i].Revision = t.Revision
		if i != c {
			rest += t.Weight
		}
	}
	others := float64(len(targets) - 1)
	for i, t := range targets {
		switch {
		case i == c:
			out[i].Weight = w
		case rest > 0:
			out[i].Weight = (100 - w) * t.Weight / rest
		case others > 0:
			out[i].Weight = (100 - w) / others
		}
	}
	return out
}

// rawStep is a step as written, resolved once the targets are known.
type rawStep struct {
	path       string
	canary     float64
	haveCanary bool
	weights    []Target // as written, in order
	weightPath string
	step       Step
}

// rawRollout is the block as written; resolveRollout finishes it.
type rawRollout struct {
	path  string
	out   Rollout
	steps []rawStep
}

// decodeRollout decodes the rollout block; resolveRollout checks what
// depends on the targets.
func decodeRollout(errs *ValidationError, path string, v any) *rawRollout {
	m, ok := asMapping(errs, path, v)
	if !ok {
		return nil
	}
	r := &rawRollout{path: path, out: Rollout{OnFailure: OnFailurePause, RollbackTo: RollbackToZero,
		Interval: DefaultRolloutInterval, Gates: defaultGates()}}
	haveSteps := false
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, rolloutFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "canary":
			if s, ok := asString(errs, fpath, it.Value); ok {
				if why := revisionReason(s); why != "" {
					errs.add(fpath, why)
				} else {
					r.out.Canary = s
				}
			}
		case "onFailure":
			if s, ok := asString(errs, fpath, it.Value); ok {
				switch FailureAction(s) {
				case OnFailurePause, OnFailureRollback:
					r.out.OnFailure = FailureAction(s)
				default:
					errs.add(fpath, "must be one of pause, rollback")
				}
			}
		case "rollbackTo":
			if s, ok := asString(errs, fpath, it.Value); ok {
				switch RollbackTarget(s) {
				case RollbackToZero, RollbackToLastPassed:
					r.out.RollbackTo = RollbackTarget(s)
				default:
					errs.add(fpath, "must be one of zero, lastPassed")
				}
			}
		case "interval":
			if d, ok := asDuration(errs, fpath, it.Value, time.Second); ok {
				r.out.Interval = d
			}
		case "steps":
			haveSteps = true
			r.steps = decodeSteps(errs, fpath, it.Value)
		case "gates":
			r.out.Gates = decodeGates(errs, fpath, it.Value)
		}
	}
	if !haveSteps {
		errs.add(path+".steps", "at least one step is required")
	}
	return r
}

func decodeSteps(errs *ValidationError, path string, v any) []rawStep {
	list, ok := asList(errs, path, v)
	if !ok {
		return nil
	}
	switch {
	case len(list) == 0:
		errs.add(path, "at least one step is required")
		return nil
	case len(list) > maxRolloutSteps:
		errs.add(path, "at most "+strconv.Itoa(maxRolloutSteps)+" steps, not "+strconv.Itoa(len(list)))
		return nil
	}
	out := make([]rawStep, 0, len(list))
	for i, item := range list {
		spath := path + "[" + strconv.Itoa(i) + "]"
		m, ok := asMapping(errs, spath, item)
		if !ok {
			continue
		}
		s := rawStep{path: spath}
		var haveHold bool
		seen := make(map[string]bool, len(m))
		for _, it := range m {
			key, fpath, ok := fieldKey(errs, spath, it.Key, stepFields, seen)
			if !ok || it.Value == nil {
				continue
			}
			switch key {
			case "canary":
				s.haveCanary = true
				if w, ok := asNumber(errs, fpath, it.Value); ok {
					if why := weightReason(w); why != "" {
						errs.add(fpath, why)
					}
					s.canary = w
				}
			case "weights":
				s.weightPath = fpath
				s.weights = decodeStepWeights(errs, fpath, it.Value)
			case "hold":
				haveHold = true
				if it.Value == "manual" {
					s.step.Manual = true
				} else if d, ok := asDuration(errs, fpath, it.Value, 0); ok {
					s.step.Hold = d
				}
			}
		}
		switch {
		case s.haveCanary && s.weightPath != "":
			errs.add(spath, "canary and weights are exclusive: give the canary's weight or every target's")
		case !s.haveCanary && s.weightPath == "":
			errs.add(spath, "required: canary (the canary's weight) or weights (every target's)")
		}
		if !haveHold && i < len(list)-1 {
			// Only the last step may end without a hold: it completes the
			// rollout once its migration is done and its gates pass.
			errs.add(spath+".hold", `required (a duration such as "5m", or manual) on every step but the last`)
		}
		out = append(out, s)
	}
	return out
}

// decodeStepWeights reads weights: {revision: weight, ...}.
func decodeStepWeights(errs *ValidationError, path string, v any) []Target {
	m, ok := asMapping(errs, path, v)
	if !ok {
		return nil
	}
	out := make([]Target, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		rev, isString := it.Key.(string)
		if !isString {
			errs.add(path, "keys must be target revisions")
			continue
		}
		fpath := path + "." + rev
		if seen[rev] {
			errs.add(fpath, "duplicate field")
			continue
		}
		seen[rev] = true
		w, ok := asNumber(errs, fpath, it.Value)
		if !ok {
			continue
		}
		if why := weightReason(w); why != "" {
			errs.add(fpath, why)
			continue
		}
		out = append(out, Target{Revision: rev, Weight: w})
	}
	return out
}

// resolveRollout checks the plan against the targets and resolves every
// step to full weights. It runs after the whole document is read, so the
// order of the blocks does not matter.
func resolveRollout(errs *ValidationError, p *Policy, r *rawRollout) *Rollout {
	if r == nil {
		return nil
	}
	out := r.out
	known := make(map[string]bool, len(p.Targets))
	for _, t := range p.Targets {
		known[t.Revision] = true
	}
	switch {
	case len(p.Targets) < 2:
		errs.add(r.path, "needs at least two targets (the stable revision and the canary)")
		return nil
	case out.Canary == "":
		out.Canary = p.Targets[len(p.Targets)-1].Revision
	case !known[out.Canary]:
		errs.add(r.path+".canary", strconv.Quote(out.Canary)+" is not one of the targets")
		return nil
	}
	if p.Migration != nil && !p.Migration.Enabled {
		errs.add(r.path, "needs the migration (each step moves running workloads): remove migration.enabled: false")
	}
	c := -1
	for i, t := range p.Targets {
		if t.Revision == out.Canary {
			c = i
		}
	}
	for _, s := range r.steps {
		switch {
		case s.haveCanary:
			s.step.Weights = canaryWeights(p.Targets, c, s.canary)
		case s.weights != nil: // nil: not a mapping, already reported
			s.step.Weights = resolveWeights(errs, s.weightPath, p.Targets, s.weights)
		}
		out.Steps = append(out.Steps, s.step)
	}
	return &out
}

// resolveWeights turns a weights mapping into every target's weight; it
// must name each target once and sum to 100.
func resolveWeights(errs *ValidationError, path string, targets []Target, written []Target) []Target {
	m := make(map[string]float64, len(written))
	for _, t := range written {
		m[t.Revision] = t.Weight
	}
	out := make([]Target, len(targets))
	var sum float64
	ok := true
	for i, t := range targets {
		w, have := m[t.Revision]
		if !have {
			errs.add(path+"."+t.Revision, "required (every target needs a weight)")
			ok = false
		}
		out[i] = Target{Revision: t.Revision, Weight: w}
		sum += w
	}
	for _, w := range written {
		found := false
		for _, t := range targets {
			found = found || t.Revision == w.Revision
		}
		if !found {
			errs.add(path+"."+w.Revision, "not one of the targets")
			ok = false
		}
	}
	if ok && math.Abs(sum-100) > weightTolerance {
		errs.add(path, "weights sum to "+strconv.FormatFloat(math.Round(sum*1e6)/1e6, 'f', -1, 64)+", must sum to 100")
	}
	return out
}

// RolloutID identifies a rollout: its canary and the targets' revisions,
// in order. Weights in force recorded for another ID do not apply, and a
// plan whose ID changes starts again at step 0 (see Rollout).
func (p *Policy) RolloutID() string {
	if p.Rollout == nil {
		return ""
	}
	id := p.Rollout.Canary + ":"
	for i, t := range p.Targets {
		if i > 0 {
			id += ","
		}
		id += t.Revision
	}
	return id
}

// WithWeights returns a copy of p routing by weights instead of its own:
// the same revisions in the same order, weights from 0 to 100 summing to
// 100. ok is false, and p unchanged, for anything else, so a damaged
// status object can never route by weights Parse would reject.
func (p *Policy) WithWeights(weights []Target) (*Policy, bool) {
	if len(weights) != len(p.Targets) {
		return p, false
	}
	var sum float64
	for i, w := range weights {
		if w.Revision != p.Targets[i].Revision || weightReason(w.Weight) != "" || math.IsNaN(w.Weight) {
			return p, false
		}
		sum += w.Weight
	}
	if math.Abs(sum-100) > weightTolerance {
		return p, false
	}
	cp := *p
	cp.Targets = slices.Clone(weights)
	return &cp, true
}
