// Package simulate previews a policy offline: which revision each
// namespace, workload or pod would get, the resulting shares, and what a
// policy change would move. It runs the router's own decision code, so the
// preview matches what the router decides for the same inputs.
package simulate

import (
	"fmt"
	"sort"

	"github.com/canary-router/canary-router/policy"
)

// Unit is one workload as an operator describes it: pods of the same
// controller in one namespace.
type Unit struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Replicas  int    `json:"replicas"`
}

// Assignment is where a unit's pods go.
type Assignment struct {
	Unit
	// Revision is the unit's revision when the whole unit moves together
	// (namespace and workload granularity); empty in pod granularity.
	Revision string `json:"revision,omitempty"`
	// Pods counts the unit's pods per revision.
	Pods map[string]int `json:"pods"`
}

// Result is a policy applied to a set of units.
type Result struct {
	Granularity policy.Granularity `json:"granularity"`
	Units       []Assignment       `json:"units"`
	// Totals are per target revision, in policy order.
	Totals []Total `json:"totals"`
	Pods   int     `json:"pods"`
	// RoutingUnits counts what the policy places one at a time: namespaces,
	// workloads or pods.
	RoutingUnits int `json:"routingUnits"`
}

// Total sums a revision's share.
type Total struct {
	Revision string  `json:"revision"`
	Target   float64 `json:"targetShare"`
	Units    int     `json:"units"`
	Pods     int     `json:"pods"`
	Share    float64 `json:"podShare"`
}

// Run places units under p exactly as the router would: namespaces and
// workloads by the seeded hash, pods by balancing each workload's live
// count, starting from no pods.
func Run(p *policy.Policy, units []Unit) Result {
	res := Result{Granularity: p.Granularity}
	unitsPer := map[string]int{}
	podsPer := map[string]int{}
	namespaces := map[string]bool{}
	for _, u := range units {
		a := Assignment{Unit: u, Pods: map[string]int{}}
		switch p.Granularity {
		case policy.GranularityNamespace:
			a.Revision = p.Pick("namespace/" + u.Namespace)
			a.Pods[a.Revision] = u.Replicas
			if !namespaces[u.Namespace] {
				namespaces[u.Namespace] = true
				unitsPer[a.Revision]++
			}
		case policy.GranularityWorkload:
			a.Revision = p.Pick(u.Namespace + "/" + u.Kind + "/" + u.Name)
			a.Pods[a.Revision] = u.Replicas
			unitsPer[a.Revision]++
		default:
			counts := make([]int, len(p.Targets))
			for range u.Replicas {
				// A fixed draw: it only breaks exact ties, which the router
				// breaks at random; the counts per revision agree either way
				// for two targets.
				choice, _ := p.Balance(counts, nil, 0)
				counts[choice]++
			}
			for i, c := range counts {
				if c > 0 {
					a.Pods[p.Targets[i].Revision] = c
					unitsPer[p.Targets[i].Revision] += c
				}
			}
		}
		for rev, n := range a.Pods {
			podsPer[rev] += n
			res.Pods += n
		}
		res.Units = append(res.Units, a)
	}
	for _, n := range unitsPer {
		res.RoutingUnits += n
	}
	for _, t := range p.Targets {
		tot := Total{Revision: t.Revision, Target: t.Weight / 100, Units: unitsPer[t.Revision], Pods: podsPer[t.Revision]}
		if res.Pods > 0 {
			tot.Share = float64(tot.Pods) / float64(res.Pods)
		}
		res.Totals = append(res.Totals, tot)
	}
	return res
}

// Move is a group of units that change revision between two results.
type Move struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Units int    `json:"units"`
	Pods  int    `json:"pods"`
}

// Compare lists what changes revision when policy a is replaced by b for
// the same units; in pod granularity it compares pod counts per workload.
func Compare(a, b Result) []Move {
	moves := map[[2]string]*Move{}
	add := func(from, to string, units, pods int) {
		k := [2]string{from, to}
		if moves[k] == nil {
			moves[k] = &Move{From: from, To: to}
		}
		moves[k].Units += units
		moves[k].Pods += pods
	}
	for i := range a.Units {
		ua, ub := a.Units[i], b.Units[i]
		if ua.Revision != "" && ub.Revision != "" {
			if ua.Revision != ub.Revision {
				add(ua.Revision, ub.Revision, 1, ua.Replicas)
			}
			continue
		}
		// Pods: what one revision loses, another gains. With two targets
		// the pairing is exact; with more it pairs losses with gains in
		// revision order.
		var losses, gains []Move
		for _, rev := range revisions(ua.Pods, ub.Pods) {
			if d := ub.Pods[rev] - ua.Pods[rev]; d < 0 {
				losses = append(losses, Move{From: rev, Pods: -d})
			} else if d > 0 {
				gains = append(gains, Move{To: rev, Pods: d})
			}
		}
		for len(losses) > 0 && len(gains) > 0 {
			n := min(losses[0].Pods, gains[0].Pods)
			add(losses[0].From, gains[0].To, n, n)
			losses[0].Pods -= n
			gains[0].Pods -= n
			if losses[0].Pods == 0 {
				losses = losses[1:]
			}
			if gains[0].Pods == 0 {
				gains = gains[1:]
			}
		}
	}
	out := make([]Move, 0, len(moves))
	for _, m := range moves {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

func revisions(a, b map[string]int) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]int{a, b} {
		for rev := range m {
			if !seen[rev] {
				seen[rev] = true
				out = append(out, rev)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Generate describes a synthetic fleet: deployments spread round-robin
// over namespaces, each with the same replica count. deployments 0 means
// one per namespace.
func Generate(namespaces, deployments, replicas int) ([]Unit, error) {
	if deployments == 0 {
		deployments = namespaces
	}
	if namespaces < 1 || replicas < 1 {
		return nil, fmt.Errorf("--namespaces and --replicas must be at least 1")
	}
	if deployments < namespaces {
		return nil, fmt.Errorf("--deployments %d is fewer than --namespaces %d: some namespaces would hold no workload", deployments, namespaces)
	}
	units := make([]Unit, deployments)
	for i := range units {
		units[i] = Unit{
			Namespace: fmt.Sprintf("ns-%03d", i%namespaces),
			Kind:      "Deployment",
			Name:      fmt.Sprintf("app-%04d", i),
			Replicas:  replicas,
		}
	}
	return units, nil
}
