package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

// The canary weights of the healthy run's plan, and of the bad run's,
// which starts at the 25 percent where its canary turns bad. Every step
// puts at least one of the four workloads on the canary (at 5 percent
// none would be, and a step with no canary pods to judge cannot complete:
// the rollout would stop there, "0 canary-injected pods observed").
// Holds are short and gates measured every second, so the whole demo
// stays within a minute and a half.
var (
	planSteps = []int{25, 50, 100}
	badSteps  = []int{25, 50, 100}
)

const (
	hold         = "2s"
	gateInterval = time.Second
	// faultHold keeps the bad run at 25 percent long enough for the fault
	// to show; the rollback comes long before it ends.
	faultHold = "2m"
	// unreadyTimeout is the migration's readiness timeout without
	// Prometheus: how long a batch of never-Ready pods takes to fail.
	unreadyTimeout = 10 * time.Second
)

// rolloutPolicy is the upgrade put in the policy: workload granularity,
// every workload on stable before the first step, the in-cluster
// migration, and a plan that rolls back on a failed gate. holds
// overrides a step's hold. With mon, a PromQL gate on the canary
// istiod's rejects; without, the built-in gates only.
func rolloutPolicy(mon *monitoring, steps []int, holds map[int]string, readinessTimeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "granularity: workload\nseed: demo\ntargets:\n  - revision: stable\n    weight: 100\n  - revision: canary\n    weight: 0\n"+
		"migration: {batchSize: 5, interval: 0s, readinessTimeout: %s}\n", readinessTimeout)
	if steps == nil {
		return b.String()
	}
	fmt.Fprintf(&b, "rollout:\n  canary: canary\n  onFailure: rollback\n  interval: %s\n  steps:\n", gateInterval)
	for i, w := range steps {
		h := holds[i]
		if h == "" {
			h = hold
		}
		fmt.Fprintf(&b, "    - {canary: %d, hold: %s}\n", w, h)
	}
	b.WriteString("  gates:\n    maxMismatches: 0\n    podHealth: {minReadyRatio: 0.9, maxRestartRatio: 2, minPods: 1}\n")
	if mon != nil {
		fmt.Fprintf(&b, `    prometheus:
      url: %s
      timeout: 1s
      istiod: {scrapeInterval: 1s}
      queries:
        - name: xds-rejects
          query: sum(increase(pilot_total_xds_rejects{app="istiod",istio_io_rev="{{ .Revision }}"}[20s])) or (0 * max(up{app="istiod",istio_io_rev="{{ .Revision }}"} == 1))
          max: 0
`, mon.url())
	}
	return b.String()
}

// rollouts runs the self-driving part: a healthy upgrade to 100 percent,
// then a canary that turns bad at 25 percent and is rolled back.
func (d *demo) rollouts(ctx context.Context, start *monitoringStart) error {
	mon, err := start.wait()
	if err != nil {
		return err
	}
	if mon != nil {
		d.say("A stand-in canary istiod exports pilot_total_xds_rejects, and a real Prometheus (started with the control plane) scrapes it every second")
		fmt.Fprintf(d.out, "    Prometheus at %s (log %s)\n", mon.url(), mon.logPath)
	} else {
		d.say("Prometheus is not on PATH (`make prometheus` installs it): the rollouts use the built-in gates, and the bad canary is one whose pods never turn Ready")
	}
	if err := d.healthyRollout(ctx, mon); err != nil {
		return err
	}
	return d.badRollout(ctx, mon)
}

func (d *demo) healthyRollout(ctx context.Context, mon *monitoring) error {
	d.say(fmt.Sprintf("A self-driving upgrade: a rollout block in the policy, and the router walks 0 -> 25 -> 50 -> 100 percent by itself (workload granularity, holds of %s, gates every %s)", hold, gateInterval))
	if err := d.applyPolicyDoc(ctx, rolloutPolicy(mon, planSteps, nil, time.Minute)); err != nil {
		return err
	}
	began := time.Now()
	tl := d.newTimeline(len(planSteps))
	st, err := tl.follow(ctx, 3*time.Minute, func(s *rollout.State) bool {
		return s.Phase != rollout.PhaseProgressing && s.Phase != rollout.PhaseHolding
	})
	if err != nil {
		return err
	}
	if st.Phase != rollout.PhaseComplete {
		return fmt.Errorf("the healthy rollout ended %s: %s", st.Phase, st.Reason)
	}
	elapsed := time.Since(began)
	c, err := d.waitAllOn(ctx, "canary", time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n    healthy rollout: Complete in %.0fs; %d of %d workloads and %d of %d pods on canary, %d without a sidecar\n",
		elapsed.Seconds(), c.workloadsOn["canary"], len(workloads), c.podsOn["canary"], c.pods, c.unmeshed)
	if c.unmeshed != 0 {
		return fmt.Errorf("%d pods without a sidecar", c.unmeshed)
	}
	return d.rolloutStatus(ctx)
}

func (d *demo) badRollout(ctx context.Context, mon *monitoring) error {
	d.say("Back to stable for a second run. The rollout block removed while the targets still say stable 100: the router keeps the completed weights (canary 100) instead of restarting every workload back")
	readiness := time.Minute
	if mon == nil {
		readiness = unreadyTimeout
	}
	if err := d.applyPolicyDoc(ctx, rolloutPolicy(mon, nil, nil, readiness)); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // leader passes and a migration re-plan
	held, err := d.count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    3s later: %d of %d pods still on canary: nothing moved back\n", held.podsOn["canary"], held.pods)
	if held.podsOn["canary"] != held.pods {
		return fmt.Errorf("removing the completed rollout's block moved pods: %v", held.podsOn)
	}
	d.say("The targets say the completed weights (canary 100): the router drops its own, then the targets go back to stable 100 and the migration moves every workload back")
	agree := strings.Replace(rolloutPolicy(mon, nil, nil, readiness), "weight: 100\n  - revision: canary\n    weight: 0\n",
		"weight: 0\n  - revision: canary\n    weight: 100\n", 1)
	if err := d.applyPolicyDoc(ctx, agree); err != nil {
		return err
	}
	if err := d.waitRolloutCleared(ctx); err != nil {
		return err
	}
	if err := d.applyPolicyDoc(ctx, rolloutPolicy(mon, nil, nil, readiness)); err != nil {
		return err
	}
	if _, err := d.waitAllOn(ctx, "stable", 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    all %d workloads on stable\n", len(workloads))

	var tl *timeline
	var faultAt time.Time
	if mon != nil {
		d.say("A bad canary, plan 0 -> 25 -> 50 -> 100: once 25 percent holds, the canary istiod's pilot_total_xds_rejects starts rising (proxies refusing its config); the PromQL gate fails and the router rolls back by itself")
		if err := d.applyPolicyDoc(ctx, rolloutPolicy(mon, badSteps, map[int]string{0: faultHold}, readiness)); err != nil {
			return err
		}
		tl = d.newTimeline(len(badSteps))
		if _, err := tl.follow(ctx, 2*time.Minute, func(s *rollout.State) bool {
			return s.Step == 0 && s.Phase == rollout.PhaseHolding
		}); err != nil {
			return err
		}
		faultAt = time.Now()
		mon.rejects.Add(3)
		fmt.Fprintf(d.out, "    %6.1fs  FAULT: the canary istiod's pilot_total_xds_rejects rises by 3\n", time.Since(tl.start).Seconds())
	} else {
		d.say("A bad canary, plan 0 -> 25 -> 50 -> 100: from 25 percent, new pods never turn Ready; the step's migration fails its readiness timeout and the router rolls back by itself")
		// The fault is there before the step's pods start.
		if err := d.setUnready(ctx, true); err != nil {
			return err
		}
		defer func() { _ = d.setUnready(context.WithoutCancel(ctx), false) }()
		faultAt = time.Now()
		fmt.Fprintln(d.out, "    FAULT: new pods stop turning Ready (node tainted)")
		if err := d.applyPolicyDoc(ctx, rolloutPolicy(mon, badSteps, map[int]string{0: faultHold}, readiness)); err != nil {
			return err
		}
		tl = d.newTimeline(len(badSteps))
	}
	st, err := tl.follow(ctx, 2*time.Minute, func(s *rollout.State) bool {
		return s.Phase != rollout.PhaseHolding && s.Phase != rollout.PhaseProgressing
	})
	if err != nil {
		return err
	}
	if st.Phase != rollout.PhaseRollingBack {
		return fmt.Errorf("after the fault the rollout is %s (%s), not rolling back", st.Phase, st.Reason)
	}
	detect, reason, step := st.LastTransition.Sub(faultAt), st.Reason, st.Step
	if mon == nil {
		// The stand-in fault hits stable's pods too: lift it so the
		// rollback can start them.
		if err := d.setUnready(ctx, false); err != nil {
			return err
		}
	}
	if _, err := tl.follow(ctx, 2*time.Minute, func(s *rollout.State) bool { return s.Phase == rollout.PhaseAborted }); err != nil {
		return err
	}
	c, err := d.waitAllOn(ctx, "stable", 2*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n    bad canary: fault at step %d (25%%), rollback started %.1fs after it: %s\n", step+1, detect.Seconds(), reason)
	fmt.Fprintf(d.out, "    rolled back: up to %d %s (%d pods) were on canary; now all %d workloads and %d of %d pods on stable, %d on canary, %d without a sidecar\n",
		tl.maxWorkloads, pluralWord(tl.maxWorkloads, "workload", "workloads"), tl.maxPods, c.workloadsOn["stable"], c.podsOn["stable"], c.pods, c.podsOn["canary"], c.unmeshed)
	if c.unmeshed != 0 {
		return fmt.Errorf("%d pods without a sidecar", c.unmeshed)
	}
	return d.rolloutStatus(ctx)
}

// waitRolloutCleared waits until the leader has removed the finished
// rollout's state, so the next plan starts a rollout of its own.
func (d *demo) waitRolloutCleared(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		cm, err := d.cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
		if err == nil && cm.Data[rollout.StateKey] == "" && cm.Data[rollout.WeightsKey] == "" {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return errors.New("the router did not clear the finished rollout within 1m")
}

// setUnready taints the only node so new pods never start while running
// ones keep serving: pods that never turn Ready.
func (d *demo) setUnready(ctx context.Context, on bool) error {
	patch := `{"spec":{"taints":null}}`
	if on {
		patch = `{"spec":{"taints":[{"key":"canary-router.io/demo-fault","value":"never-ready","effect":"NoSchedule"}]}}`
	}
	_, err := d.cluster.Client.CoreV1().Nodes().Patch(ctx, cluster.FakeNodeName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func (d *demo) rolloutStatus(ctx context.Context) error {
	fmt.Fprintf(d.out, "\n    $ canary-router rollout status\n")
	out, err := exec.CommandContext(ctx, d.o.router, "rollout", "status", "--kubeconfig", d.cluster.Kubeconfig).CombinedOutput()
	fmt.Fprint(d.out, indent(out))
	if err != nil {
		return fmt.Errorf("canary-router rollout status: %w", err)
	}
	return nil
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
