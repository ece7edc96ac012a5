package migrate

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/canary-router/canary-router/policy"
)

// Drift is the verdict on one unit's live pods against the policy.
type Drift struct {
	// To is the target (revision or tag) the unit's pods belong on; in pod
	// granularity it is "" and the split is in Why.
	To string
	// Down: To is not live, so restarting now would only land the pods on
	// a fallback; the unit waits.
	Down bool
	// Drifted: a restart would move pods.
	Drifted bool
	// Why says what is off, for the plan and the status.
	Why string
}

// WorkloadChoice is the target the policy routes a workload to in workload
// granularity: the same seeded hash the pod webhook uses (policy.DecidePod),
// keyed by namespace and Kind/name.
func WorkloadChoice(p *policy.Policy, r Ref) string {
	return p.Pick(r.Namespace + "/" + r.Kind + "/" + r.Name)
}

// NamespaceChoice is the target the policy routes a namespace to in
// namespace granularity, as the namespace webhook chooses it.
func NamespaceChoice(p *policy.Policy, name string) string {
	return p.Pick("namespace/" + name)
}

// DriftTo judges pods that should all be injected by target: drifted when
// any pod is injected by another revision or has no sidecar (workload
// granularity, and each workload of a namespace in namespace granularity).
func DriftTo(target string, revisions map[string]string, pods PodCounts) Drift {
	want, live := revisions[target]
	d := Drift{To: target, Down: !live}
	var off []string
	for rev, n := range pods {
		if n == 0 || (live && rev == want) || (!live && rev == target) {
			continue
		}
		name := rev
		if rev == "" {
			name = "no sidecar"
		}
		off = append(off, fmt.Sprintf("%d on %s", n, name))
	}
	if len(off) == 0 {
		return d
	}
	sort.Strings(off)
	d.Drifted = true
	d.Why = fmt.Sprintf("%d of %d pods off %s (%s)", offCount(pods, want), pods.Total(), target, strings.Join(off, ", "))
	return d
}

func offCount(pods PodCounts, want string) int {
	n := 0
	for rev, c := range pods {
		if rev != want {
			n += c
		}
	}
	return n
}

// DriftSplit judges a unit in pod granularity: drifted when any target's
// share of the unit's pods is off its weight by more than one pod, or any
// pod sits on a revision that is no target or has no sidecar. A restart
// rebalances the whole unit, since the pod webhook places each new
// ReplicaSet's pods exactly (policy.Balance); a split within one pod is
// as close as whole pods allow and never worth a restart.
func DriftSplit(p *policy.Policy, revisions map[string]string, pods PodCounts) Drift {
	total := pods.Total()
	var d Drift
	var parts []string
	onTargets := 0
	off := false
	for _, t := range p.Targets {
		rev, live := revisions[t.Revision]
		if !live {
			if t.Weight > 0 {
				d.Down = true
			}
			continue
		}
		n := pods[rev]
		onTargets += n
		want := t.Weight / 100 * float64(total)
		if math.Abs(float64(n)-want) > 1+1e-9 {
			off = true
		}
		parts = append(parts, fmt.Sprintf("%s %d (target %s)", t.Revision, n, trimFloat(want)))
	}
	if onTargets < total {
		off = true
		parts = append(parts, fmt.Sprintf("%d on no target or without a sidecar", total-onTargets))
	}
	if off {
		d.Drifted = true
		d.Why = "split " + strings.Join(parts, ", ")
	}
	return d
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", f), "0"), ".")
}
