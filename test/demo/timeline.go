package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/localrouter"
)

// timeline prints a line each time the rollout changes step or phase,
// read from the status object the leader writes (as `rollout status`
// does), with the cluster's pods counted at that moment.
type timeline struct {
	d     *demo
	start time.Time
	steps int
	last  string
	// maxWorkloads and maxPods are the most seen on the canary.
	maxWorkloads, maxPods int
}

func (d *demo) newTimeline(steps int) *timeline {
	fmt.Fprintf(d.out, "\n    %7s  %-9s  %-20s  %-11s  %-5s  %-38s  %s\n", "TIME", "STEP", "WEIGHTS", "PHASE", "MOVED", "ON CANARY", "GATES")
	return &timeline{d: d, start: time.Now(), steps: steps}
}

// follow polls the status object until done says so, printing a line
// per transition, and returns the last state read.
func (tl *timeline) follow(ctx context.Context, timeout time.Duration, done func(*rollout.State) bool) (*rollout.State, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var st *rollout.State
	for {
		cm, err := tl.d.cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
		if err == nil {
			st, _ = rollout.Decode(cm.Data)
			mst, _ := migrate.DecodeStatus(cm.Data)
			if err := tl.observe(ctx, st, mst); err != nil {
				return st, err
			}
			if st != nil && done(st) {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			if st == nil {
				return nil, fmt.Errorf("no rollout in the status object after %s", timeout)
			}
			return st, fmt.Errorf("rollout at step %d, %s (%s) after %s", st.Step+1, st.Phase, st.Reason, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (tl *timeline) observe(ctx context.Context, st *rollout.State, mst migrate.Status) error {
	if st == nil {
		return nil
	}
	key := fmt.Sprintf("%d/%s", st.Step, st.Phase)
	if key == tl.last {
		return nil
	}
	tl.last = key
	c, err := tl.d.count(ctx)
	if err != nil {
		return err
	}
	tl.maxWorkloads = max(tl.maxWorkloads, c.workloadsOn["canary"])
	tl.maxPods = max(tl.maxPods, c.podsOn["canary"])
	var gates []string
	for _, g := range st.Gates {
		mark := ""
		switch g.Verdict {
		case rollout.VerdictFail:
			mark = "(FAIL)"
		case rollout.VerdictUnknown:
			mark = "(unknown)"
		}
		gates = append(gates, fmt.Sprintf("%s=%.3g%s", g.Name, g.Value, mark))
	}
	// The migration's count is for the weights in force only once it has
	// finished moving to them.
	moved := "-"
	if st.Phase != rollout.PhaseProgressing && st.Phase != rollout.PhaseRollingBack {
		moved = fmt.Sprint(mst.Restarted)
	}
	fmt.Fprintf(tl.d.out, "    %6.1fs  %-9s  %-20s  %-11s  %-5s  %-38s  %s\n",
		time.Since(tl.start).Seconds(), fmt.Sprintf("%d of %d", st.Step+1, tl.steps), rollout.FormatWeights(st.Weights), st.Phase,
		moved, onCanary(c),
		strings.Join(gates, " "))
	if st.Reason != "" {
		fmt.Fprintf(tl.d.out, "    %7s  reason: %s\n", "", st.Reason)
	}
	return nil
}

// counts is where the demo's pods and workloads sit.
type counts struct {
	pods, unmeshed int
	podsOn         map[string]int
	// workloadsOn counts workloads whose live pods are all on a revision.
	workloadsOn map[string]int
}

func (d *demo) count(ctx context.Context) (counts, error) {
	c := counts{podsOn: map[string]int{}, workloadsOn: map[string]int{}}
	for _, w := range workloads {
		pods, err := d.cluster.Client.CoreV1().Pods(w.namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + w.name})
		if err != nil {
			return c, err
		}
		revs := map[string]int{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				continue
			}
			rev := fakeistio.InjectedRevision(p)
			if rev == "" {
				c.unmeshed++
			}
			revs[rev]++
			c.podsOn[rev]++
			c.pods++
		}
		if len(revs) == 1 {
			for rev := range revs {
				c.workloadsOn[rev]++
			}
		}
	}
	return c, nil
}

// waitAllOn waits until every demo workload has all its pods, and only
// those, on rev.
func (d *demo) waitAllOn(ctx context.Context, rev string, timeout time.Duration) (counts, error) {
	want := 0
	for _, w := range workloads {
		want += int(w.replicas)
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := d.count(ctx)
		if err == nil && c.workloadsOn[rev] == len(workloads) && c.pods == want && c.podsOn[rev] == want {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("after %s, pods by revision %v (%d workloads wholly on %s), want all %d on %s (%v)", timeout, c.podsOn, c.workloadsOn[rev], rev, want, rev, err)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// onCanary is the ON CANARY column: workloads and pods on the canary out
// of the demo's replicas. Mid-restart a Deployment runs old and new pods
// side by side; those beyond the replicas show as "rolling", so the count
// never reads as more pods than the demo has (25/85 was 50 pods rolling).
func onCanary(c counts) string {
	want := 0
	for _, w := range workloads {
		want += int(w.replicas)
	}
	s := fmt.Sprintf("%d/%d workloads, %d/%d pods", c.workloadsOn["canary"], len(workloads), c.podsOn["canary"], want)
	if extra := c.pods - want; extra > 0 {
		s += fmt.Sprintf(" +%d rolling", extra)
	}
	return s
}
