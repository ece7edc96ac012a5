package controller

import (
	"sync"
	"time"

	"github.com/canary-router/canary-router/istio"
)

// outages is the leader's own record of which revisions answer, by the
// value a namespace's istio.io/rev carries (a revision or a tag). It
// lives for one term and is fed only by this replica's Istio state (its
// own injector probe), sampled every poll: a namespace moves only on an
// outage this leader watched, unbroken, for the whole window, never on
// one check or on what another replica saw before it led.
type outages struct {
	mu   sync.Mutex
	seen map[string]seen
}

// seen is a revision's last verdict and when it began, as observed.
type seen struct {
	down  bool
	since time.Time
}

func newOutages() *outages { return &outages{seen: map[string]seen{}} }

// observe records the verdict on each name at now; a change of verdict
// restarts its clock.
func (o *outages) observe(state *istio.State, now time.Time, names ...string) {
	if state == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range names {
		if n == "" {
			continue
		}
		down := !state.Target(n).Available()
		if s, ok := o.seen[n]; ok && s.down == down {
			continue
		}
		o.seen[n] = seen{down: down, since: now}
	}
}

// downFor is how long name has been seen not answering, 0 when answering
// or never seen; upFor likewise for answering.
func (o *outages) downFor(name string, now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.seen[name]; ok && s.down {
		return now.Sub(s.since)
	}
	return 0
}

func (o *outages) upFor(name string, now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.seen[name]; ok && !s.down {
		return now.Sub(s.since)
	}
	return 0
}

// pacer spaces failover moves at most perMinute a minute, with no burst:
// an outage of a revision serving hundreds of namespaces relabels them at
// a pace the API server and the operator can follow.
type pacer struct {
	mu   sync.Mutex
	next time.Time
}

// take reports the wait before a move may go out at now, 0 when it may go
// now (and then books its slot).
func (p *pacer) take(now time.Time, perMinute int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.next) {
		return p.next.Sub(now)
	}
	p.next = now.Add(time.Minute / time.Duration(max(perMinute, 1)))
	return 0
}
