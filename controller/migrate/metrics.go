package migrate

import "github.com/prometheus/client_golang/prometheus"

// Workload states of the workloads gauge.
var workloadStates = []string{"pending", "in_progress", "done", "failed", "skipped", "reported"}

// metrics is the migration's recorder; series are pre-created so a
// dashboard sees zeros before the first migration.
type metrics struct {
	workloads *prometheus.GaugeVec
	restarts  prometheus.Counter
	paused    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		workloads: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canary_router_migration_workloads",
			Help: "Workloads of the current migration by state: pending (drifted, to restart), in_progress (in the rolling batch), done (restarted and in place), failed (batch timed out), skipped (opted out, paused, zero replicas, unavailable, target down), reported (bare pods, Jobs, CronJobs: never restarted).",
		}, []string{"state"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canary_router_migration_restarts_total",
			Help: "Workload restarts the migration wrote.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canary_router_migration_paused",
			Help: "1 while the migration is paused, by an operator or after a failed batch.",
		}),
	}
	for _, s := range workloadStates {
		m.workloads.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.workloads, m.restarts, m.paused)
	}
	return m
}

func (m *metrics) observe(plan Plan, st Status) {
	inFlight := 0
	if st.Batch != nil {
		inFlight = len(st.Batch.Workloads)
	}
	failed := len(st.Failures)
	m.workloads.WithLabelValues("pending").Set(float64(max(len(plan.Moves)-inFlight, 0)))
	m.workloads.WithLabelValues("in_progress").Set(float64(inFlight))
	m.workloads.WithLabelValues("done").Set(float64(len(plan.Done)))
	m.workloads.WithLabelValues("failed").Set(float64(failed))
	m.workloads.WithLabelValues("skipped").Set(float64(len(plan.Skipped)))
	m.workloads.WithLabelValues("reported").Set(float64(len(plan.Reported)))
	if st.Phase == PhasePaused {
		m.paused.Set(1)
	} else {
		m.paused.Set(0)
	}
}
