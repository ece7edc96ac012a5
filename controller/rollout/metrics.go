package rollout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/policy"
)

var phases = []Phase{PhaseProgressing, PhaseHolding, PhasePaused, PhaseRollingBack, PhaseAborted, PhaseComplete}

var verdicts = []Verdict{VerdictPass, VerdictFail, VerdictUnknown}

// metrics is the rollout's recorder. Gate labels are the built-in names
// and the plan's query names (at most 20, validated as label values), so
// they stay bounded; series of gates no longer in the plan are dropped.
type metrics struct {
	step           prometheus.Gauge
	canaryWeight   prometheus.Gauge
	phase          *prometheus.GaugeVec
	lastTransition prometheus.Gauge
	gateValue      *prometheus.GaugeVec
	gateVerdict    *prometheus.GaugeVec
	events         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		step: prometheus.NewGauge(prometheus.GaugeOpts{Name: "canary_router_rollout_step",
			Help: "The rollout's step in force, from 1; 0 without a rollout."}),
		canaryWeight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "canary_router_rollout_canary_weight_percent",
			Help: "The canary's weight in force, in percent."}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canary_router_rollout_phase",
			Help: "1 for the rollout's phase: Progressing, Holding, Paused, RollingBack, Aborted, Complete; all 0 without a rollout."}, []string{"phase"}),
		lastTransition: prometheus.NewGauge(prometheus.GaugeOpts{Name: "canary_router_rollout_last_transition_timestamp_seconds",
			Help: "When the rollout's phase last changed, in Unix seconds: a rollout Progressing or Paused since long ago is stuck."}),
		gateValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canary_router_rollout_gate_value",
			Help: "Each gate's last measured value (PromQL result, mismatch count, canary/stable ratio)."}, []string{"gate"}),
		gateVerdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canary_router_rollout_gate_verdict",
			Help: "1 for each gate's last verdict: pass, fail or unknown (no data: the rollout never advances on it)."}, []string{"gate", "verdict"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canary_router_rollout_events_total",
			Help: "Rollout transitions by reason: RolloutStep, RolloutComplete, RolloutPaused, RollingBack, RolledBack, ..."}, []string{"reason"}),
	}
	for _, p := range phases {
		m.phase.WithLabelValues(string(p))
	}
	m.builtinSeries()
	for _, r := range []string{"RolloutStarted", "RolloutStep", "RolloutComplete", "RolloutPaused", "RollingBack", "RolledBack"} {
		m.events.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.step, m.canaryWeight, m.phase, m.lastTransition, m.gateValue, m.gateVerdict, m.events)
	}
	return m
}

// observe records a pass's state (nil: no rollout).
func (m *metrics) observe(p *policy.Policy, st *State, events []Event) {
	for _, e := range events {
		m.events.WithLabelValues(e.Reason).Inc()
	}
	m.gateValue.Reset()
	m.gateVerdict.Reset()
	m.builtinSeries()
	if st == nil {
		m.step.Set(0)
		m.canaryWeight.Set(0)
		m.lastTransition.Set(0)
		for _, ph := range phases {
			m.phase.WithLabelValues(string(ph)).Set(0)
		}
		return
	}
	m.step.Set(float64(st.Step + 1))
	if c := p.CanaryIndex(); c >= 0 && c < len(st.Weights) {
		m.canaryWeight.Set(st.Weights[c].Weight)
	}
	for _, ph := range phases {
		v := 0.0
		if ph == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(string(ph)).Set(v)
	}
	m.lastTransition.Set(float64(st.LastTransition.Unix()))
	for _, g := range st.Gates {
		m.gateValue.WithLabelValues(g.Name).Set(g.Value)
		for _, v := range verdicts {
			x := 0.0
			if v == g.Verdict {
				x = 1
			}
			m.gateVerdict.WithLabelValues(g.Name, string(v)).Set(x)
		}
	}
}

// builtinSeries pre-creates the built-in gates' series at 0, so the
// dashboard's gate panels have series before the first rollout.
func (m *metrics) builtinSeries() {
	for _, g := range []string{GateInjector, GateMismatches, GatePodReady, GateProxyRestarts} {
		m.gateValue.WithLabelValues(g)
		for _, v := range verdicts {
			m.gateVerdict.WithLabelValues(g, string(v))
		}
	}
}
