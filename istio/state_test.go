package istio

import (
	"reflect"
	"strings"
	"testing"
)

// istioConfigs is a cluster with revisions 1-24 and 1-25, tag prod on 1-25,
// the default tag on 1-24 and an unrelated config.
var istioConfigs = []Config{
	{Name: "istio-sidecar-injector-1-24", Rev: "1-24"},
	{Name: "istio-sidecar-injector-1-25", Rev: "1-25"},
	{Name: "istio-revision-tag-prod", Rev: "1-25", Tag: "prod"},
	{Name: "istio-revision-tag-default", Rev: "1-24", Tag: "default"},
	{Name: "cert-manager-webhook"},
}

func TestTarget(t *testing.T) {
	ready := []Endpoints{{Service: "istiod-1-24", Ready: true}, {Service: "istiod-1-25", Ready: false}}
	tests := []struct {
		name      string
		configs   []Config
		endpoints []Endpoints
		target    string
		want      Status
		detail    []string // substrings Detail must contain
	}{
		{name: "ready revision", configs: istioConfigs, endpoints: ready, target: "1-24",
			want: Status{Revision: "1-24"}},
		{name: "revision without ready endpoints", configs: istioConfigs, endpoints: ready, target: "1-25",
			want: Status{Revision: "1-25", Cause: CauseNotReady}, detail: []string{"istiod-1-25 in istio-system has no ready endpoints"}},
		{name: "one ready slice of two is enough", configs: istioConfigs,
			endpoints: []Endpoints{{Service: "istiod-1-25"}, {Service: "istiod-1-25", Ready: true}}, target: "1-25",
			want: Status{Revision: "1-25"}},
		{name: "tag resolves to its revision", configs: istioConfigs, endpoints: ready, target: "default",
			want: Status{Revision: "1-24", Tag: true}},
		{name: "tag inherits its revision's health", configs: istioConfigs, endpoints: ready, target: "prod",
			want:   Status{Revision: "1-25", Tag: true, Cause: CauseNotReady},
			detail: []string{"revision tag prod points to revision 1-25", "istiod-1-25"}},
		{name: "unknown name", configs: istioConfigs, endpoints: ready, target: "1-26",
			want: Status{Cause: CauseNotFound}, detail: []string{"no Istio revision or revision tag named 1-26"}},
		{name: "a label on another config is not a revision", configs: istioConfigs, endpoints: ready, target: "cert-manager-webhook",
			want: Status{Cause: CauseNotFound}},
		{name: "tag without a revision label", configs: []Config{{Name: "istio-revision-tag-x", Tag: "x"}}, target: "x",
			want: Status{Tag: true, Cause: CauseNotFound}, detail: []string{"points to no revision"}},
		{name: "revision wins over a tag of the same name", configs: []Config{
			{Name: "istio-sidecar-injector-prod", Rev: "prod"}, {Name: "istio-revision-tag-prod", Rev: "1-24", Tag: "prod"}},
			endpoints: []Endpoints{{Service: "istiod-prod", Ready: true}}, target: "prod", want: Status{Revision: "prod"}},
		{name: "default revision's istiod has no suffix", configs: []Config{{Name: "istio-sidecar-injector", Rev: "default"}},
			endpoints: []Endpoints{{Service: "istiod", Ready: true}}, target: "default", want: Status{Revision: "default"}},
		{name: "nothing ready at all", configs: istioConfigs, target: "1-24",
			want: Status{Revision: "1-24", Cause: CauseNotReady}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(tt.configs, tt.endpoints, "istio-system", "canary-router")
			got := s.Target(tt.target)
			for _, d := range tt.detail {
				if !strings.Contains(got.Detail, d) {
					t.Errorf("Detail %q does not mention %q", got.Detail, d)
				}
			}
			if got.Available() != (tt.want.Cause == "") || (got.Cause != "" && got.Detail == "") {
				t.Errorf("Available %v with detail %q", got.Available(), got.Detail)
			}
			got.Detail = ""
			if got != tt.want {
				t.Errorf("Target(%q) = %+v, want %+v", tt.target, got, tt.want)
			}
		})
	}
}

func TestMisordered(t *testing.T) {
	tests := []struct {
		name    string
		own     string
		configs []Config
		want    []string
	}{
		{"canary-router sorts first", "canary-router", istioConfigs, nil},
		{"a late name", "zz-canary-router", istioConfigs,
			[]string{"istio-revision-tag-default", "istio-revision-tag-prod", "istio-sidecar-injector-1-24", "istio-sidecar-injector-1-25"}},
		{"only some injectors first", "istio-sidecar-injector-1-25-router", istioConfigs,
			[]string{"istio-revision-tag-default", "istio-revision-tag-prod", "istio-sidecar-injector-1-24", "istio-sidecar-injector-1-25"}},
		{"byte-wise, not case-folded", "Zcanary", []Config{{Name: "istio-sidecar-injector"}}, nil},
		{"a renamed injector is caught by its labels", "canary-router", []Config{{Name: "aaa-injector", Rev: "1-25"}}, []string{"aaa-injector"}},
		{"unrelated configs do not count", "zz", []Config{{Name: "cert-manager-webhook"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(tt.configs, nil, "istio-system", tt.own)
			if got := s.Misordered(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Misordered() = %v, want %v", got, tt.want)
			}
			if p := s.OrderProblem(); (p == "") != (len(tt.want) == 0) {
				t.Errorf("OrderProblem() = %q", p)
			}
		})
	}
}
