package progress

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/canary-router/canary-router/view/podview"
)

// tags resolves prod to canary and knows the two revisions.
func tags(name string) string {
	switch name {
	case "stable", "canary":
		return name
	case "prod":
		return "canary"
	}
	return ""
}

func TestMismatched(t *testing.T) {
	tests := []struct {
		name             string
		routed, injected string
		resolve          Resolver
		want             bool
	}{
		{"same revision", "canary", "canary", tags, false},
		{"another revision injected", "canary", "stable", tags, true},
		{"routed but not injected", "canary", "", tags, true},
		{"not routed", "", "stable", tags, false},
		{"not routed, not injected", "", "", tags, false},
		{"tag injected by its revision", "prod", "canary", tags, false},
		{"tag injected by another revision", "prod", "stable", tags, true},
		{"tag without a resolver compares names", "prod", "canary", nil, true},
		{"unknown name compares names", "1-23", "1-23", tags, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mismatched(tt.routed, tt.injected, tt.resolve); got != tt.want {
				t.Errorf("Mismatched(%q, %q) = %v, want %v", tt.routed, tt.injected, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := Input{
		Targets: []Target{{"stable", 0.7}, {"prod", 0.3}},
		Pods: []podview.RevisionCount{
			{Routed: "stable", Injected: "stable", Pods: 14},
			{Routed: "prod", Injected: "canary", Pods: 5},
			{Routed: "canary", Injected: "stable", Pods: 1},
			{Routed: "", Injected: "stable", Pods: 4},
			{Routed: "zz-stray", Injected: "", Pods: 2},
		},
		Resolve:    tags,
		Namespaces: map[string]int{"stable": 2, "": 9},
	}
	got := Summarize(in)
	want := Summary{
		Revisions: []Revision{
			{Name: "stable", InPolicy: true, TargetShare: 0.7, RoutedPods: 14, InjectedPods: 19, ObservedShare: 14.0 / 22, Namespaces: 2, NamespaceShare: 1},
			{Name: "prod", TagOf: "canary", InPolicy: true, TargetShare: 0.3, RoutedPods: 5, ObservedShare: 5.0 / 22},
			{Name: "canary", RoutedPods: 1, InjectedPods: 5, MismatchedPods: 1, ObservedShare: 1.0 / 22},
			{Name: "zz-stray", RoutedPods: 2, MismatchedPods: 2, ObservedShare: 2.0 / 22},
		},
		RoutedPods: 22, InjectedPods: 24, MismatchedPods: 3, UnroutedInjectedPods: 4,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summarize:\n got %+v\nwant %+v", got, want)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	got := Summarize(Input{Targets: []Target{{"stable", 1}}})
	want := Summary{Revisions: []Revision{{Name: "stable", InPolicy: true, TargetShare: 1}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}

func TestFold(t *testing.T) {
	counts := []podview.RevisionCount{
		{Routed: "stable", Injected: "stable", Pods: 10},
		{Routed: "canary", Injected: "canary", Pods: 1},
		{Routed: "a", Injected: "a", Pods: 5},
		{Routed: "b", Injected: "", Pods: 4},
		{Routed: "", Injected: "c", Pods: 3},
		{Routed: "d", Injected: "stable", Pods: 1},
	}
	tests := []struct {
		name  string
		keep  []string
		limit int
		want  []podview.RevisionCount
	}{
		{"under the limit", []string{"stable", "canary"}, 20, []podview.RevisionCount{
			rc("", "c", 3), rc("a", "a", 5), rc("b", "", 4), rc("canary", "canary", 1), rc("d", "stable", 1), rc("stable", "stable", 10),
		}},
		{"kept names first, then the largest", []string{"stable", "canary"}, 3, []podview.RevisionCount{
			rc("", Other, 3), rc("a", "a", 5), rc("canary", "canary", 1), rc(Other, "", 4), rc(Other, "stable", 1), rc("stable", "stable", 10),
		}},
		{"merged once folded", nil, 1, []podview.RevisionCount{
			rc("", Other, 3), rc(Other, "", 4), rc(Other, Other, 6), rc(Other, "stable", 1), rc("stable", "stable", 10),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fold(counts, tt.keep, tt.limit)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Fold:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestFoldBoundsCardinality(t *testing.T) {
	var counts []podview.RevisionCount
	for i := range 500 {
		counts = append(counts, podview.RevisionCount{Routed: fmt.Sprint("r", i), Injected: fmt.Sprint("i", i%37), Pods: i})
	}
	names := map[string]bool{}
	for _, c := range Fold(counts, []string{"stable"}, 20) {
		names[c.Routed], names[c.Injected] = true, true
	}
	if len(names) > 21 || !names[Other] {
		t.Errorf("%d distinct names after folding to 20: %v", len(names), names)
	}
}

func rc(routed, injected string, pods int) podview.RevisionCount {
	return podview.RevisionCount{Routed: routed, Injected: injected, Pods: pods}
}
