package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/view/progress"
)

// DefaultMaxRevisions bounds the distinct revision label values of the pod
// metrics. Real clusters run two or three revisions and a tag or two; the
// cap is there because istio.io/rev is a label anyone can write.
const DefaultMaxRevisions = 20

// PodCounts is the live pod view the pod metrics read at scrape time.
type PodCounts interface {
	// Revisions returns live pods by routed and injected revision.
	Revisions() []podview.RevisionCount
	// Synced reports whether the first list of pods has completed.
	Synced() bool
}

var _ PodCounts = (*podview.View)(nil)

// PodCollectorOptions configures NewPodCollector.
type PodCollectorOptions struct {
	Pods PodCounts
	// Istio resolves revision tags, so a pod routed to a tag and injected
	// by the tag's revision is not a mismatch. nil compares names as they
	// are.
	Istio IstioState
	// inforce.Store supplies the policy targets, whose names are never folded into
	// "other". nil keeps none.
	Store *inforce.Store
	// MaxRevisions: see DefaultMaxRevisions; 0 means the default.
	MaxRevisions int
}

// podCollector reports the pod view as gauges, computed at scrape time: no
// per-pod state, and nothing to keep in step between scrapes.
type podCollector struct {
	o          PodCollectorOptions
	pods       *prometheus.Desc
	mismatched *prometheus.Desc
	overridden *prometheus.Desc
}

// NewPodCollector returns the collector of canary_router_pods,
// canary_router_pods_mismatched and canary_router_pods_pin_overridden. It reports nothing until the pod view has
// listed every pod once: partial counts would read as a rollout moving
// backwards.
func NewPodCollector(o PodCollectorOptions) prometheus.Collector {
	if o.MaxRevisions <= 0 {
		o.MaxRevisions = DefaultMaxRevisions
	}
	return &podCollector{
		o: o,
		pods: prometheus.NewDesc("canary_router_pods",
			"Live pods in the cluster by routed revision (pod label istio.io/rev, a revision or a tag; empty when unlabelled) and injected revision (the real revision that injected the sidecar as Istio records it; empty when not injected). Pods with neither are not counted. Names beyond a cap (20 by default) are reported as \"other\".",
			[]string{"routed_revision", "injected_revision"}, nil),
		mismatched: prometheus.NewDesc("canary_router_pods_mismatched",
			"Live pods the router routed to a revision (or to a tag) but injected by another revision, or not injected at all. A tag is compared through the revision it points to. Should be 0.",
			nil, nil),
		overridden: prometheus.NewDesc("canary_router_pods_pin_overridden",
			"Live pods whose owners pinned istio.io/rev themselves (no router decision) but that were injected by another revision, or not at all: typically a namespace label that Istio lets win over the pod label. Not the router's mismatch.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *podCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pods
	ch <- c.mismatched
	ch <- c.overridden
}

// Collect implements prometheus.Collector.
func (c *podCollector) Collect(ch chan<- prometheus.Metric) {
	if c.o.Pods == nil || !c.o.Pods.Synced() {
		return
	}
	counts := c.o.Pods.Revisions()
	resolve := c.resolver()
	mismatched, overridden := 0, 0
	for _, rc := range counts {
		switch {
		case progress.RouterMismatch(rc, resolve):
			mismatched += rc.Pods
		case progress.OverriddenPin(rc, resolve):
			overridden += rc.Pods
		}
	}
	keep := c.targets(resolve)
	// Each target's healthy series exists from the first scrape, so a
	// share computed from them reads 0 rather than nothing.
	for _, t := range keep {
		counts = append(counts, podview.RevisionCount{Routed: t, Injected: progress.Expected(t, resolve)})
	}
	for _, rc := range progress.Fold(counts, keep, c.o.MaxRevisions) {
		ch <- prometheus.MustNewConstMetric(c.pods, prometheus.GaugeValue, float64(rc.Pods), rc.Routed, rc.Injected)
	}
	ch <- prometheus.MustNewConstMetric(c.mismatched, prometheus.GaugeValue, float64(mismatched))
	ch <- prometheus.MustNewConstMetric(c.overridden, prometheus.GaugeValue, float64(overridden))
}

// resolver resolves tags through the Istio view in force at this scrape;
// nil before the view has listed the webhook configurations.
func (c *podCollector) resolver() progress.Resolver {
	if c.o.Istio == nil {
		return nil
	}
	st := c.o.Istio.Current()
	if st == nil {
		return nil
	}
	return func(name string) string { return st.Target(name).Revision }
}

// targets lists the policy's targets, each followed by the revision it
// resolves to when that differs (a tag's revision).
func (c *podCollector) targets(resolve progress.Resolver) []string {
	if c.o.Store == nil {
		return nil
	}
	s := c.o.Store.Load()
	if s == nil {
		return nil
	}
	var out []string
	for _, t := range s.Policy.Targets {
		out = append(out, t.Revision)
		if r := progress.Expected(t.Revision, resolve); r != t.Revision {
			out = append(out, r)
		}
	}
	return out
}
