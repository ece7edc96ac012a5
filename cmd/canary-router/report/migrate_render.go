package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/canary-router/canary-router/controller/migrate"
)

// WritePlanText prints a plan for an operator: what restarts, why and in
// which batch; what is skipped or only reported; nothing else moves.
func WritePlanText(w io.Writer, policyRef string, plan migrate.Plan, granularity string) {
	fmt.Fprintf(w, "Policy %s (digest %s), granularity %s, batch size %d\n", policyRef, plan.Digest, granularity, plan.BatchSize)
	if len(plan.Namespaces) > 0 {
		fmt.Fprintf(w, "\nNamespaces relabelled first (%d):\n", len(plan.Namespaces))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, n := range plan.Namespaces {
			fmt.Fprintf(tw, "  %s\tistio.io/rev %s -> %s\n", n.Name, n.From, n.To)
		}
		_ = tw.Flush()
	}
	batches := plan.Batches()
	fmt.Fprintf(w, "\nRestarts: %d %s in %d %s; nothing else restarts.\n",
		len(plan.Moves), plural(len(plan.Moves), "workload", "workloads"), len(batches), plural(len(batches), "batch", "batches"))
	if len(plan.Pending) > 0 {
		keys := make([]string, 0, len(plan.Pending))
		for k := range plan.Pending {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d to %s", plan.Pending[k], k))
		}
		fmt.Fprintf(w, "Pending moves: %s\n", strings.Join(parts, ", "))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for i, b := range batches {
		fmt.Fprintf(tw, "  batch %d\t\t\n", i+1)
		for _, m := range b {
			to := m.To
			if to == "" {
				to = "(split)"
			}
			fmt.Fprintf(tw, "    %s\t-> %s\t%s\n", m.Ref, to, m.Why)
		}
	}
	_ = tw.Flush()
	writeSkips(w, "Skipped", plan.Skipped)
	writeSkips(w, "Reported, never restarted (restart or recreate them yourself)", plan.Reported)
	if len(plan.Done) > 0 {
		fmt.Fprintf(w, "\nAlready restarted for this policy and in place: %d\n", len(plan.Done))
	}
	writeStalePins(w, plan.StalePins)
}

// writeStalePins names the workloads pinned to a revision that is not
// live or is being retired: the migration never moves them.
func writeStalePins(w io.Writer, pins []migrate.StalePin) {
	if len(pins) == 0 {
		return
	}
	fmt.Fprintf(w, "\nPinned by their owners to a revision that is not live or is being retired, never restarted (change istio.io/rev in their pod templates) (%d):\n", len(pins))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, p := range pins {
		what := "no live Istio revision or tag has that name: new pods are refused in managed namespaces, and run without a sidecar elsewhere"
		if p.State == migrate.PinRetiring {
			what = "a live revision outside the policy's targets: the pods break when it is removed"
		}
		fmt.Fprintf(tw, "  %s/%s	%s	istio.io/rev=%s, %d %s	%s\n", p.Namespace, p.Workload, p.State, p.Revision, p.Pods, plural(p.Pods, "pod", "pods"), what)
	}
	_ = tw.Flush()
}

func writeSkips(w io.Writer, title string, skips []migrate.Skip) {
	if len(skips) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s (%d):\n", title, len(skips))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, s := range skips {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Ref, s.Reason, s.Why)
	}
	_ = tw.Flush()
}

// WriteMigrationStatus prints the status object's migration: state, N of
// M workloads, the batch in flight and the failures with their reasons.
func WriteMigrationStatus(w io.Writer, st migrate.Status, ctl migrate.Control) {
	if st.Digest == "" && !ctl.Paused {
		fmt.Fprintln(w, "Migration: none recorded (enable it with a migration: block in the policy, or run canary-router migrate --apply)")
		return
	}
	fmt.Fprintf(w, "Migration: %s, policy digest %s: %d of %d %s done, %d restarted, %d %s completed, %d skipped, %d reported\n",
		st.Phase, st.Digest, st.Done, st.Total, plural(st.Total, "workload", "workloads"), st.Restarted,
		st.Batches, plural(st.Batches, "batch", "batches"), st.Skipped, st.Reported)
	if ctl.Paused {
		fmt.Fprintf(w, "  paused: %s (canary-router migrate resume)\n", orNone(ctl.PauseReason))
	}
	if b := st.Batch; b != nil {
		names := make([]string, 0, len(b.Workloads))
		for _, m := range b.Workloads {
			names = append(names, m.Ref.String())
		}
		fmt.Fprintf(w, "  batch %d rolling since %s: %s\n", b.Index, b.Started.Format("15:04:05"), strings.Join(names, ", "))
	}
	for _, f := range st.Failures {
		fmt.Fprintf(w, "  failed %s at %s: %s\n", f.Ref, f.Time.Format("15:04:05"), f.Reason)
	}
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
