package faults

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Outcomes of one pod creation.
const (
	outCreated = "created"
	// outRouterDown: the apiserver could not reach the router (connection
	// refused, TLS failure, timeout); the fail-closed pod webhook refused
	// the pod.
	outRouterDown = "refused: router unreachable"
	// outNoTarget: the router refused the pod because the policy names no
	// available target, which the policy asked for.
	outNoTarget = "refused by policy: no available target"
	// outNoPolicy: the router refused the pod because it has no policy
	// loaded yet (a router that is starting and not ready).
	outNoPolicy = "refused: router has no policy yet"
	// outNotSynced: the router refused the pod because it has not read
	// Istio's state yet (a router that is starting and not ready).
	outNotSynced = "refused: router not synced yet"
	// outRouterDenied: any other refusal by the router.
	outRouterDenied = "refused by the router"
	// outAPIDown: the apiserver itself did not answer (it was restarting).
	outAPIDown = "apiserver unavailable"
	outOther   = "other error"
)

// classify names the outcome of a pod creation from its error.
func classify(err error) string {
	if err == nil {
		return outCreated
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, `failed calling webhook "pods.canary-router.io"`):
		return outRouterDown
	case strings.Contains(msg, `admission webhook "pods.canary-router.io" denied the request`) &&
		strings.Contains(msg, "has not read the cluster's"):
		return outNotSynced
	case strings.Contains(msg, `admission webhook "pods.canary-router.io" denied the request`) &&
		strings.Contains(msg, "no routing target is available"):
		return outNoTarget
	case strings.Contains(msg, `admission webhook "pods.canary-router.io" denied the request`) &&
		strings.Contains(msg, "has no valid routing policy"):
		return outNoPolicy
	case strings.Contains(msg, `admission webhook "pods.canary-router.io" denied the request`):
		return outRouterDenied
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "connection reset"),
		strings.Contains(msg, "EOF"), strings.Contains(msg, "http2: client connection lost"),
		strings.Contains(msg, "the server is currently unable to handle the request"),
		strings.Contains(msg, "apiserver is shutting down"), strings.Contains(msg, "the server was unable to return a response"):
		return outAPIDown
	}
	return outOther
}

// attempt is one pod creation.
type attempt struct {
	at      time.Time
	outcome string
	err     string
	rev     string // istio.io/rev of a created pod
}

// creator creates pods in a namespace from several workers until stopped,
// recording every outcome.
type creator struct {
	ns     string
	mu     sync.Mutex
	log    []attempt
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startCreating creates pods labelled load=true in ns from workers
// goroutines, each pausing pace between creations.
func startCreating(ns string, workers int, pace time.Duration) *creator {
	ctx, cancel := context.WithCancel(context.Background())
	c := &creator{ns: ns, cancel: cancel}
	for range workers {
		c.wg.Go(func() {
			pods := env.Cluster.Client.CoreV1().Pods(ns)
			for ctx.Err() == nil {
				// Its own deadline, so the creation in flight at stop is
				// not cut short and miscounted.
				cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
				p, err := pods.Create(cctx, newPod("load-", map[string]string{"load": "true"}), metav1.CreateOptions{})
				ccancel()
				a := attempt{at: time.Now(), outcome: classify(err)}
				if err != nil {
					a.err = err.Error()
				} else {
					a.rev = p.Labels["istio.io/rev"]
				}
				c.mu.Lock()
				c.log = append(c.log, a)
				c.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pace):
				}
			}
		})
	}
	return c
}

func (c *creator) stop() {
	c.cancel()
	c.wg.Wait()
}

// counts returns outcomes of the attempts that ended in [from, to); a zero
// to means no end.
func (c *creator) counts(from, to time.Time) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, a := range c.log {
		if !a.at.Before(from) && (to.IsZero() || a.at.Before(to)) {
			out[a.outcome]++
		}
	}
	return out
}

// examples returns up to n error messages of the outcome.
func (c *creator) examples(outcome string, n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.log {
		if a.outcome == outcome && len(out) < n {
			out = append(out, a.err)
		}
	}
	return out
}

// unrouted counts created pods the creation response shows without a
// routing label.
func (c *creator) unrouted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.log {
		if a.outcome == outCreated && a.rev == "" {
			n++
		}
	}
	return n
}

// format renders outcome counts in a stable order.
func format(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// expectOnly fails the test for any outcome in got not listed in allowed.
func (c *creator) expectOnly(t *testing.T, phase string, got map[string]int, allowed ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for outcome, n := range got {
		if !ok[outcome] {
			t.Errorf("%s: %d creations %s, e.g. %q", phase, n, outcome, c.examples(outcome, 3))
		}
	}
}
