package policy

import (
	"strconv"
	"time"
)

// AnnotationFailoverFrom is set on a namespace the router moved off a
// revision that stopped answering, to the istio.io/rev value it had. It
// is how recovery moves back exactly the namespaces the outage moved,
// whatever the policy would choose for them now, and it is removed when
// the namespace moves back.
const AnnotationFailoverFrom = "canary-router.io/failover-from"

// Namespace failover defaults and bounds. A revision whose injector stops
// answering refuses new pods in its namespaces (Istio's webhook fails
// closed) but leaves running pods alone, so a blip of seconds costs a few
// retried pod creations, while moving namespaces costs a relabel each and
// leaves their pods split across revisions. Two minutes outlasts an istiod
// restart or a rescheduled pod; a longer outage is worth the move.
const (
	DefaultFailoverAfter        = 2 * time.Minute
	DefaultFailoverMaxPerMinute = 60
	// FailoverSettle is how long a revision must answer again, without a
	// break, before the namespaces moved off it move back.
	FailoverSettle          = 10 * time.Second
	maxFailoverMaxPerMinute = 6000
)

var namespaceFailoverFields = []string{"after", "maxPerMinute"}

// NamespaceFailover is the policy's namespaceFailover block: in namespace
// granularity, when the router moves namespaces off a revision whose
// injector does not answer, and how fast.
type NamespaceFailover struct {
	// After is how long the leader must itself have seen the revision not
	// answering, without a break, before any namespace moves.
	After time.Duration `json:"after"`
	// MaxPerMinute bounds namespace moves, away and back.
	MaxPerMinute int `json:"maxPerMinute"`
}

// DefaultNamespaceFailover is the block's settings when it or a field is
// left out.
func DefaultNamespaceFailover() NamespaceFailover {
	return NamespaceFailover{After: DefaultFailoverAfter, MaxPerMinute: DefaultFailoverMaxPerMinute}
}

// Failover is the policy's namespaceFailover settings, the defaults when
// the block is absent.
func (p *Policy) Failover() NamespaceFailover {
	if p.NamespaceFailover == nil {
		return DefaultNamespaceFailover()
	}
	return *p.NamespaceFailover
}

// decodeNamespaceFailover decodes and validates the namespaceFailover block.
func decodeNamespaceFailover(errs *ValidationError, path string, v any) NamespaceFailover {
	out := DefaultNamespaceFailover()
	m, ok := asMapping(errs, path, v)
	if !ok {
		return out
	}
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, namespaceFailoverFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "after":
			if d, ok := asDuration(errs, fpath, it.Value, time.Second); ok {
				out.After = d
			}
		case "maxPerMinute":
			n, ok := asNumber(errs, fpath, it.Value)
			if !ok {
				continue
			}
			if n != float64(int(n)) || n < 1 || n > maxFailoverMaxPerMinute {
				errs.add(fpath, "must be a whole number from 1 to "+strconv.Itoa(maxFailoverMaxPerMinute))
				continue
			}
			out.MaxPerMinute = int(n)
		}
	}
	return out
}
