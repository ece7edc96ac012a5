package serve

import (
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook"
)

// workloadPods is the pod view's per-workload read (podview.View).
type workloadPods interface {
	Workloads() ([]podview.WorkloadPods, bool)
}

// namespaceLister is the namespace view (nsview.View).
type namespaceLister interface {
	List() []nsview.Namespace
	HasSynced() bool
}

// restartEstimator dry-runs a policy edit's migration plan for the policy
// validator from what every replica already watches: the pod view, the
// namespace view and Istio's revisions. It adds no informer; the leader's
// workload informers are not there, so each workload is judged from its
// pods (migrate.PodWorkload).
type restartEstimator struct {
	pods         workloadPods
	namespaces   namespaceLister
	istio        func() *istio.State
	ownNamespace string
}

var _ webhook.RestartEstimator = (*restartEstimator)(nil)

// EstimateRestarts plans old and cur over the same pods with the
// migration's planner (migrate.DryRunEdit).
func (e *restartEstimator) EstimateRestarts(old, cur *policy.Policy) (webhook.RestartEstimate, bool) {
	state := e.istio()
	if state == nil || !e.namespaces.HasSynced() {
		return webhook.RestartEstimate{}, false
	}
	units, ok := e.pods.Workloads()
	if !ok {
		return webhook.RestartEstimate{}, false
	}
	base := migrate.Input{Namespaces: e.namespaceList(), Pods: make(map[migrate.Ref]migrate.PodCounts, len(units))}
	for _, u := range units {
		ref := migrate.Ref{Namespace: u.Namespace, Kind: u.Kind, Name: u.Name}
		pods := migrate.PodCounts(u.Injected)
		base.Pods[ref] = pods
		// A workload none of whose pods has a sidecar is left out: from
		// pods alone one that opts out of injection and one never
		// injected look the same, and the leader's plan skips the first.
		base.Workloads = append(base.Workloads, migrate.PodWorkload(ref, pods, u.Pinned > 0 || pods[""] == pods.Total()))
	}
	in := func(p *policy.Policy) migrate.Input {
		if p == nil {
			return migrate.Input{}
		}
		i := base
		i.Policy, i.Revisions = p, migrate.LiveRevisions(p, state)
		return i
	}
	impact := migrate.DryRunEdit(in(old), in(cur))
	return webhook.RestartEstimate{Moves: impact.Moves, Workloads: impact.Workloads, Migrates: impact.Migrates}, true
}

// namespaceList is the namespaces the migration considers, as the
// leader's (migrationLeader.namespaceList).
func (e *restartEstimator) namespaceList() []migrate.Namespace {
	list := e.namespaces.List()
	out := make([]migrate.Namespace, 0, len(list))
	for _, ns := range list {
		if !ns.Deleting && ns.Name != e.ownNamespace {
			out = append(out, migrate.Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations})
		}
	}
	return out
}
