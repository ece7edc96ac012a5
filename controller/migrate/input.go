package migrate

import (
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
)

// Annotations the migration reads and writes on workloads.
const (
	// AnnotationMigrate opts a workload out of migration with "false".
	AnnotationMigrate = "canary-router.io/migrate"
	// AnnotationMigrated records, on the workload, the policy digest of the
	// migration that last restarted it. It is written in the same patch as
	// the restart, so "restarted for this policy" can never be lost
	// between two writes, whichever replica leads.
	AnnotationMigrated = "canary-router.io/migrated"
	// AnnotationRestartedAt is the pod-template annotation
	// `kubectl rollout restart` sets.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
)

// Workload kinds the migration restarts.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindRollout     = "Rollout"
)

// Ref names a workload (or a bare pod, Job or CronJob).
type Ref struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// String renders a ref as namespace/Kind/name.
func (r Ref) String() string { return r.Namespace + "/" + r.Kind + "/" + r.Name }

func (r Ref) less(o Ref) bool {
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	if r.Kind != o.Kind {
		return r.Kind < o.Kind
	}
	return r.Name < o.Name
}

// PodCounts is a unit's live pods by the revision that injected them; the
// key "" counts pods without a sidecar.
type PodCounts map[string]int

// Total is the number of pods counted.
func (c PodCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Workload is a restartable workload as the informers show it, its status
// normalised across kinds (a DaemonSet's desiredNumberScheduled is its
// Replicas, and so on).
type Workload struct {
	Ref
	// Replicas is the desired pod count; StatusReplicas every pod the
	// controller still runs (old and new).
	Replicas, StatusReplicas, Updated, Available int32
	Generation, ObservedGeneration               int64
	// Paused: spec.paused of a Deployment or Rollout.
	Paused bool
	// OptOut: annotation canary-router.io/migrate is "false".
	OptOut bool
	// Pinned: the pod template names istio.io/rev or opts out of
	// injection, so its pods are not the router's to place.
	Pinned bool
	// Migrated is annotation canary-router.io/migrated: the policy digest
	// it was last restarted for.
	Migrated string
	// ResourceVersion is the version the informer holds; a restart is
	// conditional on it.
	ResourceVersion string
}

// Namespace is what the planner needs of a namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// ResourceVersion is the version read; a relabel is conditional on it.
	ResourceVersion string
}

// Input is one consistent read of the cluster from informer caches.
type Input struct {
	Policy *policy.Policy
	// Digest identifies the policy document (inforce.Snapshot.Digest); it
	// is the "policy generation" a workload restarts at most once for.
	Digest string
	// Revisions maps each live target (revision or tag) to the revision
	// that injects for it, which is what pods record. A target missing
	// here is down: nothing moves towards it.
	Revisions  map[string]string
	Namespaces []Namespace
	Workloads  []Workload
	// Pods are the live pods of every unit, workloads and others (bare
	// pods, Jobs, CronJobs), keyed by policy.WorkloadOf's unit.
	Pods map[Ref]PodCounts
	// Pins counts owner-pinned live pods by unit and pinned revision
	// (PinOf), and Istio is the state they are judged against, for
	// the plan's StalePins. Either nil lists no stale pins: the leader
	// leaves them nil, as nothing it does depends on them.
	Pins  map[PinKey]int
	Istio *istio.State
}
