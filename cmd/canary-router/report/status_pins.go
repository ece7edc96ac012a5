package report

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
)

// pinCounts counts owner-pinned pods by workload and revision while status
// lists pods. Pods that opt out are left out: their pin asks for nothing.
type pinCounts map[migrate.PinKey]int

// add counts one pod.
func (c pinCounts) add(m *metav1.PartialObjectMetadata) {
	if k, ok := migrate.PinOf(m); ok {
		c[k]++
	}
}

// stalePins lists the pins that need the operator, as the migration plan
// does (migrate.StalePins). configs nil (not readable) lists nothing;
// targets nil (no valid policy) lists only missing pins.
func stalePins(pins pinCounts, configs []istio.Config, targets []string, namespaces []namespaceLabels) []migrate.StalePin {
	if configs == nil {
		return []migrate.StalePin{}
	}
	labelled := map[string]bool{}
	for _, ns := range namespaces {
		labelled[ns.Name] = migrate.IstioLabelled(ns.Labels)
	}
	return migrate.StalePins(pins, istio.NewState(configs, nil, "", ""), targets, func(ns string) bool { return labelled[ns] })
}
