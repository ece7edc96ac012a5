package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Policy
	}{
		{
			name: "design example",
			doc: `
granularity: workload      # namespace | workload | pod
seed: "upgrade-1-25"
targets:
  - revision: "1-24"
    weight: 90
  - revision: "1-25"
    weight: 10
namespaces:
  exclude: ["istio-system"]
gateways: exclude
`,
			want: Policy{
				Granularity: GranularityWorkload,
				Seed:        "upgrade-1-25",
				Targets:     []Target{{"1-24", 90}, {"1-25", 10}},
				Namespaces:  Namespaces{Exclude: []string{"istio-system"}},
				Gateways:    GatewaysExclude,
			},
		},
		{
			name: "minimal with defaults",
			doc:  "granularity: pod\ntargets:\n- revision: stable\n  weight: 100\n",
			want: Policy{Granularity: GranularityPod, Targets: []Target{{"stable", 100}}, Gateways: GatewaysExclude},
		},
		{
			name: "three fractional weights",
			doc: `granularity: namespace
targets:
- {revision: 1-23, weight: 33.3}
- {revision: 1-24, weight: 33.3}
- {revision: 1-25, weight: 33.4}
`,
			want: Policy{
				Granularity: GranularityNamespace,
				Targets:     []Target{{"1-23", 33.3}, {"1-24", 33.3}, {"1-25", 33.4}},
				Gateways:    GatewaysExclude,
			},
		},
		{
			name: "fractional weights of two targets",
			doc:  "granularity: pod\ntargets:\n- {revision: prod, weight: 87.5}\n- {revision: canary, weight: 12.5}\n",
			want: Policy{Granularity: GranularityPod, Targets: []Target{{"prod", 87.5}, {"canary", 12.5}}, Gateways: GatewaysExclude},
		},
		{
			name: "zero weight target and gateways route",
			doc:  "granularity: workload\ntargets:\n- {revision: a, weight: 0}\n- {revision: b, weight: 100}\ngateways: route\n",
			want: Policy{Granularity: GranularityWorkload, Targets: []Target{{"a", 0}, {"b", 100}}, Gateways: GatewaysRoute},
		},
		{
			name: "JSON document with tabs",
			doc:  "{\n\t\"granularity\": \"pod\",\n\t\"targets\": [{\"revision\": \"a\", \"weight\": 60}, {\"revision\": \"b\", \"weight\": 40}],\n\t\"namespaces\": {\"exclude\": [\"x\", \"y\"]}\n}\n",
			want: Policy{
				Granularity: GranularityPod,
				Targets:     []Target{{"a", 60}, {"b", 40}},
				Namespaces:  Namespaces{Exclude: []string{"x", "y"}},
				Gateways:    GatewaysExclude,
			},
		},
		{
			name: "document markers and nulls",
			doc:  "# policy\n---\ngranularity: pod\nseed: ~\ntargets:\n- revision: a\n  weight: 100\nnamespaces:\ngateways: \"\"\n---\n",
			want: Policy{Granularity: GranularityPod, Targets: []Target{{"a", 100}}, Gateways: GatewaysExclude},
		},
		{
			name: "longest seed",
			doc:  "granularity: pod\nseed: " + strings.Repeat("s", 253) + "\ntargets:\n- revision: a\n  weight: 100\n",
			want: Policy{Granularity: GranularityPod, Seed: strings.Repeat("s", 253), Targets: []Target{{"a", 100}}, Gateways: GatewaysExclude},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.want
			want.excluded = map[string]struct{}{}
			for _, ns := range want.Namespaces.Exclude {
				want.excluded[ns] = struct{}{}
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const two = "- {revision: a, weight: 50}\n- {revision: b, weight: 50}\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", "", []string{"policy.yaml: document is empty"}},
		{"only comments", "# nothing yet\n\n", []string{"policy.yaml: document is empty"}},
		{"too large", "# " + strings.Repeat("x", MaxSize-2) + "\n", []string{
			"policy.yaml: document is 65537 bytes, larger than the 65536-byte limit"}},
		{"two documents", "granularity: pod\n---\ngranularity: workload\n", []string{
			"policy.yaml: contains 2 YAML documents, expected one"}},
		{"invalid YAML", "granularity: pod\ntargets:\n  - revision: a\n   weight: 100\n", []string{
			"policy.yaml: invalid YAML: line 3: did not find expected '-' indicator"}},
		{"invalid YAML in second document", "granularity: pod\n---\na: [\n", []string{
			"policy.yaml: invalid YAML: line 3: did not find expected node content"}},
		{"a list", "- granularity: pod\n", []string{
			"policy.yaml: must be a mapping of policy fields (granularity, seed, targets, namespaces, gateways)"}},
		{"a scalar", "granularity\n", []string{
			"policy.yaml: must be a mapping of policy fields (granularity, seed, targets, namespaces, gateways)"}},
		{"null key", "granularity: pod\n~: x\ntargets:\n" + two, []string{"null: unknown field"}},
		{"unknown top-level field", "granularty: pod\ntargets:\n" + two, []string{
			"granularty: unknown field",
			"granularity: required (one of namespace, workload, pod)"}},
		{"field names are case-sensitive", "Granularity: pod\ngranularity: pod\ntargets:\n" + two, []string{
			"Granularity: unknown field"}},
		{"unknown target field", "granularity: pod\ntargets:\n- {revision: a, wieght: 50}\n- {revision: b, weight: 50}\n", []string{
			"targets[0].wieght: unknown field",
			"targets[0].weight: required"}},
		{"unknown namespaces field", "granularity: pod\ntargets:\n" + two + "namespaces:\n  include: [a]\n", []string{
			"namespaces.include: unknown field"}},
		{"unknown fields without values", "granularity: pod\nextra:\ntargets:\n- {revision: a, weight: 100, note: ~}\nnamespaces: {include: }\n", []string{
			"extra: unknown field",
			"targets[0].note: unknown field",
			"namespaces.include: unknown field"}},
		{"non-string key", "granularity: pod\n1: x\ntargets:\n" + two, []string{"1: unknown field"}},
		{"duplicate field", "granularity: pod\ngranularity: workload\ntargets:\n" + two, []string{
			"granularity: duplicate field"}},
		{"weight not a number", "granularity: pod\ntargets:\n- {revision: a, weight: ten}\n", []string{
			"targets[0].weight: must be a number"}},
		{"quoted weight", "granularity: pod\ntargets:\n- {revision: a, weight: \"100\"}\n", []string{
			"targets[0].weight: must be a number"}},
		{"numeric revision", "granularity: pod\ntargets:\n- {revision: 125, weight: 100}\n", []string{
			"targets[0].revision: must be a string (quote the value)"}},
		{"numeric seed", "granularity: pod\nseed: 2024\ntargets:\n" + two, []string{
			"seed: must be a string (quote the value)"}},
		{"granularity a list", "granularity: [pod]\ntargets:\n" + two, []string{"granularity: must be a string"}},
		{"targets a mapping", "granularity: pod\ntargets:\n  revision: a\n  weight: 100\n", []string{
			"targets: must be a list"}},
		{"target a string", "granularity: pod\ntargets:\n- a\n", []string{"targets[0]: must be a mapping"}},
		{"namespaces a list", "granularity: pod\ntargets:\n" + two + "namespaces: [a]\n", []string{
			"namespaces: must be a mapping"}},
		{"exclude a string", "granularity: pod\ntargets:\n" + two + "namespaces:\n  exclude: a\n", []string{
			"namespaces.exclude: must be a list"}},
		{"unknown granularity", "granularity: cluster\ntargets:\n" + two, []string{
			"granularity: must be one of namespace, workload, pod"}},
		{"missing granularity", "targets:\n" + two, []string{
			"granularity: required (one of namespace, workload, pod)"}},
		{"seed too long", "granularity: pod\nseed: " + strings.Repeat("s", 254) + "\ntargets:\n" + two, []string{
			"seed: must be at most 253 characters, not 254"}},
		{"no targets", "granularity: pod\n", []string{"targets: at least one target is required"}},
		{"empty targets", "granularity: pod\ntargets: []\n", []string{"targets: at least one target is required"}},
		{"missing revision", "granularity: pod\ntargets:\n- {weight: 100}\n", []string{"targets[0].revision: required"}},
		{"empty revision", "granularity: pod\ntargets:\n- {revision: \"\", weight: 100}\n", []string{"targets[0].revision: required"}},
		{"revision not a label value", "granularity: pod\ntargets:\n- {revision: \"1.25 beta\", weight: 100}\n", []string{
			`targets[0].revision: invalid label value "1.25 beta": ` + labelValueMsg}},
		{"revision too long", "granularity: pod\ntargets:\n- {revision: " + strings.Repeat("r", 64) + ", weight: 100}\n", []string{
			`targets[0].revision: invalid label value "` + strings.Repeat("r", 64) + `": must be no more than 63 bytes`}},
		{"duplicate revision", "granularity: pod\ntargets:\n- {revision: a, weight: 40}\n- {revision: b, weight: 30}\n- {revision: a, weight: 30}\n", []string{
			"targets[2].revision: duplicate of targets[0]"}},
		{"negative weight", "granularity: pod\ntargets:\n- {revision: a, weight: -1}\n- {revision: b, weight: 101}\n", []string{
			"targets[0].weight: must be between 0 and 100",
			"targets[1].weight: must be between 0 and 100"}},
		{"infinite weight", "granularity: pod\ntargets:\n- {revision: a, weight: .inf}\n", []string{
			"targets[0].weight: must be a finite number"}},
		{"NaN weight", "granularity: pod\ntargets:\n- {revision: a, weight: .nan}\n", []string{
			"targets[0].weight: must be a finite number"}},
		{"weights under 100", "granularity: pod\ntargets:\n- {revision: a, weight: 80}\n- {revision: b, weight: 10}\n", []string{
			"targets: weights sum to 90, must sum to 100"}},
		{"fractional weights under 100", "granularity: pod\ntargets:\n- {revision: a, weight: 33.3}\n- {revision: b, weight: 33.3}\n- {revision: c, weight: 33.3}\n", []string{
			"targets: weights sum to 99.9, must sum to 100"}},
		{"all weights zero", "granularity: pod\ntargets:\n- {revision: a, weight: 0}\n", []string{
			"targets: weights sum to 0, must sum to 100"}},
		{"invalid excluded namespace", "granularity: pod\ntargets:\n" + two + "namespaces:\n  exclude: [Istio_System, ok, ok]\n", []string{
			`namespaces.exclude[0]: invalid namespace name "Istio_System": ` + dnsLabelMsg,
			"namespaces.exclude[2]: duplicate of namespaces.exclude[1]"}},
		{"unknown gateways mode", "granularity: pod\ntargets:\n" + two + "gateways: include\n", []string{
			"gateways: must be one of exclude, route"}},
		{"every problem at once", `granularty: pod
seed: 7
targets:
- {revision: a, wieght: 50}
- {revision: a, weight: 150}
namespaces: {exclude: [kube-system, kube-system]}
gateways: all
`, []string{
			"granularty: unknown field",
			"seed: must be a string (quote the value)",
			"targets[0].wieght: unknown field",
			"targets[0].weight: required",
			"targets[1].weight: must be between 0 and 100",
			"targets[1].revision: duplicate of targets[0]",
			"namespaces.exclude[1]: duplicate of namespaces.exclude[0]",
			"gateways: must be one of exclude, route",
			"granularity: required (one of namespace, workload, pod)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", p)
			}
			var ve ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error %T (%v), want ValidationError", err, err)
			}
			got := make([]string, len(ve))
			for i, fe := range ve {
				got[i] = fe.Error()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if want := strings.Join(tt.want, "; "); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// Messages from k8s.io/apimachinery/pkg/util/validation, quoted in ours.
const (
	labelValueMsg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', " +
		"and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', " +
		"regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
	dnsLabelMsg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
		"and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " +
		"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
