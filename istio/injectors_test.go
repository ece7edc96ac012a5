package istio

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestInjectedBy(t *testing.T) {
	revisioned := func(defaultTag bool) []Config {
		configs := []Config{
			{Name: "istio-sidecar-injector-stable", Rev: "stable", Webhooks: ChartWebhooks("stable", false)},
			{Name: "istio-sidecar-injector-canary", Rev: "canary", Webhooks: ChartWebhooks("canary", false)},
		}
		if defaultTag {
			configs = append(configs, Config{Name: "istio-revision-tag-default", Rev: "stable", Tag: "default", Webhooks: ChartWebhooks("default", true)})
		}
		return configs
	}
	ready := []Endpoints{{Service: "istiod-stable", Ready: true}, {Service: "istiod-canary", Ready: true}}
	stableOnly := []Endpoints{{Service: "istiod-stable", Ready: true}}
	optIn := labels.Set{"canary-router.io/injection": "enabled"}
	for _, tc := range []struct {
		name       string
		defaultTag bool
		endpoints  []Endpoints
		ns, pod    labels.Set
		want       string // "" none
		webhook    string
		live       bool
	}{
		{name: "pod label on a revision", ns: optIn, pod: labels.Set{"istio.io/rev": "canary"}, endpoints: ready,
			want: "canary", webhook: "istio-sidecar-injector-canary/rev.object.sidecar-injector.istio.io", live: true},
		{name: "pod label through the default tag", defaultTag: true, ns: optIn, pod: labels.Set{"istio.io/rev": "default"}, endpoints: ready,
			want: "stable", webhook: "istio-revision-tag-default/rev.object.sidecar-injector.istio.io", live: true},
		{name: "no label, no default tag: nothing injects", ns: optIn, pod: labels.Set{}, endpoints: ready},
		{name: "no label, default tag, no inject=true: nothing injects", defaultTag: true, ns: optIn, pod: labels.Set{}, endpoints: ready},
		{name: "gateway with inject=true and a default tag", defaultTag: true, ns: optIn,
			pod: labels.Set{"sidecar.istio.io/inject": "true"}, endpoints: ready,
			want: "stable", webhook: "istio-revision-tag-default/object.sidecar-injector.istio.io", live: true},
		{name: "gateway with inject=true without a default tag", ns: optIn, pod: labels.Set{"sidecar.istio.io/inject": "true"}, endpoints: ready},
		{name: "namespace label wins over the pod label", ns: labels.Set{"istio.io/rev": "stable"}, pod: labels.Set{"istio.io/rev": "canary"},
			endpoints: ready, want: "stable", webhook: "istio-sidecar-injector-stable/rev.namespace.sidecar-injector.istio.io", live: true},
		{name: "istio-injection=enabled without a default", ns: labels.Set{"istio-injection": "enabled"}, pod: labels.Set{}, endpoints: ready},
		{name: "opted out", ns: optIn, pod: labels.Set{"istio.io/rev": "canary", "sidecar.istio.io/inject": "false"}, endpoints: ready},
		{name: "unknown revision", ns: optIn, pod: labels.Set{"istio.io/rev": "typo"}, endpoints: ready},
		{name: "revision without ready istiod", ns: optIn, pod: labels.Set{"istio.io/rev": "canary"}, endpoints: stableOnly,
			want: "canary", webhook: "istio-sidecar-injector-canary/rev.object.sidecar-injector.istio.io", live: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState(revisioned(tc.defaultTag), tc.endpoints, "istio-system", "canary-router")
			v := s.InjectedBy(tc.ns, tc.pod)
			if !v.Known || v.Revision != tc.want || v.Webhook != tc.webhook || v.Live != tc.live {
				t.Errorf("InjectedBy = %+v, want revision %q webhook %q live %v", v, tc.want, tc.webhook, tc.live)
			}
			if v.Injected() != (tc.want != "" && tc.live) {
				t.Errorf("Injected() = %v", v.Injected())
			}
		})
	}
}

func TestInjectedByUnknownWithoutSelectors(t *testing.T) {
	s := NewState([]Config{{Name: "istio-sidecar-injector-stable", Rev: "stable"}}, nil, "istio-system", "canary-router")
	if v := s.InjectedBy(labels.Set{}, labels.Set{"istio.io/rev": "stable"}); v.Known {
		t.Errorf("a metadata-only state judged a pod: %+v", v)
	}
}
