package migrate

import (
	"fmt"
	"slices"

	"github.com/canary-router/canary-router/policy"
)

// SkipReason says why a drifted workload is not restarted; the set is
// closed so it can label metrics.
type SkipReason string

// Reasons a drifted unit is left alone.
const (
	SkipOptedOut    SkipReason = "opted-out" // annotation canary-router.io/migrate: "false"
	SkipPaused      SkipReason = "paused"    // spec.paused
	SkipZero        SkipReason = "zero-replicas"
	SkipUnavailable SkipReason = "unavailable"       // not fully available before its restart: never made worse
	SkipTargetDown  SkipReason = "target-down"       // the revision it belongs on is not live
	SkipRestarted   SkipReason = "already-restarted" // restarted for this policy already and still off
	ReportOnly      SkipReason = "not-restartable"   // bare pods, Jobs, CronJobs: reported, never deleted
)

// Move is one workload the plan restarts.
type Move struct {
	Ref
	// To is the target it moves to ("" in pod granularity: a new split).
	To  string `json:"to,omitempty"`
	Why string `json:"why"`
}

// Skip is a drifted unit the plan leaves alone, and why.
type Skip struct {
	Ref
	Reason SkipReason `json:"reason"`
	Why    string     `json:"why"`
}

// NamespaceMove relabels a namespace in namespace granularity: its
// istio.io/rev goes From -> To before its workloads restart.
type NamespaceMove struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Plan is what a migration does now, computed from scratch on each pass.
type Plan struct {
	Digest     string          `json:"digest"`
	BatchSize  int             `json:"batchSize"`
	Namespaces []NamespaceMove `json:"namespaces,omitempty"`
	// Moves are the restarts in order; batch i is
	// Moves[i*BatchSize:(i+1)*BatchSize].
	Moves    []Move `json:"moves"`
	Skipped  []Skip `json:"skipped,omitempty"`
	Reported []Skip `json:"reported,omitempty"`
	// Done are workloads already restarted for this policy that now sit
	// where it routes them.
	Done []Ref `json:"done,omitempty"`
	// Pending counts the moves by destination target ("split" in pod
	// granularity), for status and metrics.
	Pending map[string]int `json:"pending"`
	// StalePins are workloads their owners pinned to a revision that is
	// not live or is being retired. The migration never moves a pinned
	// workload, so the operator has to.
	StalePins []StalePin `json:"stalePins,omitempty"`
}

// Batches returns the moves cut into batches.
func (p Plan) Batches() [][]Move {
	var out [][]Move
	for i := 0; i < len(p.Moves); i += p.BatchSize {
		out = append(out, p.Moves[i:min(i+p.BatchSize, len(p.Moves))])
	}
	return out
}

// restartable are the kinds the migration restarts; others are reported.
var restartable = map[string]bool{KindDeployment: true, KindStatefulSet: true, KindDaemonSet: true, KindRollout: true}

// NewPlan computes the plan for in. It reads no clock and does no I/O, so
// the leader, the CLI and the tests compute the same plan from the same
// view. Units are ordered by namespace, kind and name, so batches are
// stable between passes.
func NewPlan(in Input, batchSize int) Plan {
	plan := Plan{Digest: in.Digest, BatchSize: max(batchSize, 1), Pending: map[string]int{}}
	p := in.Policy
	if p == nil {
		return plan
	}
	plan.StalePins = stalePins(in)
	targets := managedNamespaces(in, &plan)
	seen := make(map[Ref]bool, len(in.Workloads))
	for _, w := range in.Workloads {
		seen[w.Ref] = true
		target, managed := targets[w.Namespace]
		if !managed || w.Pinned || !restartable[w.Kind] {
			continue
		}
		d := unitDrift(in, target, w.Ref)
		if !d.Drifted {
			if w.Migrated == in.Digest && in.Digest != "" {
				plan.Done = append(plan.Done, w.Ref)
			}
			continue
		}
		if reason, why := skipReason(w, d, in.Digest); reason != "" {
			plan.Skipped = append(plan.Skipped, Skip{Ref: w.Ref, Reason: reason, Why: why})
			continue
		}
		plan.Moves = append(plan.Moves, Move{Ref: w.Ref, To: d.To, Why: d.Why})
		plan.Pending[pendingKey(d.To)]++
	}
	for ref := range in.Pods {
		target, managed := targets[ref.Namespace]
		if seen[ref] || !managed || restartable[ref.Kind] {
			continue
		}
		if d := unitDrift(in, target, ref); d.Drifted {
			plan.Reported = append(plan.Reported, Skip{Ref: ref, Reason: ReportOnly, Why: d.Why})
		}
	}
	sortRefs(plan.Moves, func(m Move) Ref { return m.Ref })
	sortRefs(plan.Skipped, func(s Skip) Ref { return s.Ref })
	sortRefs(plan.Reported, func(s Skip) Ref { return s.Ref })
	sortRefs(plan.Done, func(r Ref) Ref { return r })
	return plan
}

// stalePins lists the Input's stale pins, nil when it has none or lacks
// the pins or Istio's state.
func stalePins(in Input) []StalePin {
	if in.Pins == nil || in.Istio == nil {
		return nil
	}
	names := make([]string, 0, len(in.Policy.Targets))
	for _, t := range in.Policy.Targets {
		names = append(names, t.Revision)
	}
	labelled := make(map[string]bool, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		labelled[ns.Name] = IstioLabelled(ns.Labels)
	}
	out := StalePins(in.Pins, in.Istio, names, func(ns string) bool { return labelled[ns] })
	if len(out) == 0 {
		return nil
	}
	return out
}

// managedNamespaces returns, for each namespace whose pods the router
// places, the target its workloads are judged against: the namespace's
// choice in namespace granularity, "" otherwise (each workload has its
// own). Namespaces whose label must change first go into plan.Namespaces.
func managedNamespaces(in Input, plan *Plan) map[string]string {
	p := in.Policy
	out := make(map[string]string, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		d := p.DecideNamespace(policy.NamespaceSubject{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations})
		if d.Action != policy.NamespaceNone {
			// Not converted yet: the namespace reconciler's job comes first.
			continue
		}
		if p.Granularity != policy.GranularityNamespace {
			if d.Reason == policy.ReasonPolicy {
				out[ns.Name] = ""
			}
			continue
		}
		cur := ns.Labels[policy.LabelIstioRev]
		if d.Reason != policy.ReasonSticky || cur == "" {
			continue // pinned or opted out by the operator: never moved
		}
		choice := NamespaceChoice(p, ns.Name)
		out[ns.Name] = choice
		if choice != cur {
			if _, live := in.Revisions[choice]; live {
				plan.Namespaces = append(plan.Namespaces, NamespaceMove{Name: ns.Name, From: cur, To: choice})
			}
		}
	}
	slices.SortFunc(plan.Namespaces, func(a, b NamespaceMove) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

// unitDrift judges one unit by the policy's granularity; nsTarget is the
// namespace's choice in namespace granularity.
func unitDrift(in Input, nsTarget string, r Ref) Drift {
	pods := in.Pods[r]
	switch in.Policy.Granularity {
	case policy.GranularityPod:
		return DriftSplit(in.Policy, in.Revisions, pods)
	case policy.GranularityNamespace:
		return DriftTo(nsTarget, in.Revisions, pods)
	}
	return DriftTo(WorkloadChoice(in.Policy, r), in.Revisions, pods)
}

// skipReason applies the safety rules to a drifted workload, in order.
func skipReason(w Workload, d Drift, digest string) (SkipReason, string) {
	switch {
	case w.OptOut:
		return SkipOptedOut, AnnotationMigrate + `: "false"`
	case w.Paused:
		return SkipPaused, "spec.paused is true"
	case w.Replicas == 0:
		return SkipZero, "no replicas"
	case d.Down:
		return SkipTargetDown, "target " + d.To + " is not live; " + d.Why
	case digest != "" && w.Migrated == digest:
		return SkipRestarted, "restarted once for this policy already; " + d.Why
	case !Complete(w):
		return SkipUnavailable, fmt.Sprintf("%d of %d replicas available, %d updated", w.Available, w.Replicas, w.Updated)
	}
	return "", ""
}

// Complete reports whether a workload's rollout is finished: the
// controller saw the latest spec, and every desired replica is updated
// and available, with no old pods left.
func Complete(w Workload) bool {
	return w.ObservedGeneration >= w.Generation && w.Updated >= w.Replicas &&
		w.Available >= w.Replicas && w.StatusReplicas <= w.Replicas
}

func pendingKey(to string) string {
	if to == "" {
		return "split"
	}
	return to
}

func sortRefs[T any](s []T, ref func(T) Ref) {
	slices.SortFunc(s, func(a, b T) int {
		ra, rb := ref(a), ref(b)
		switch {
		case ra.less(rb):
			return -1
		case rb.less(ra):
			return 1
		}
		return 0
	})
}
