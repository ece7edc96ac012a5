package harness

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseMetricsAndSum(t *testing.T) {
	text := []byte(`# HELP x a counter
# TYPE x counter
x 3
req_total{webhook="/mutate-pods",code="200"} 5
req_total{webhook="/mutate-pods",code="500"} 2
req_total{webhook="/validate-policy",code="200"} 1
spaced{msg="a b"} 7 1700000000000
req_total_other 100
`)
	m, err := ParseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{name: "x", want: 3},
		{name: "req_total", want: 8},
		{name: "req_total", match: []string{`webhook="/mutate-pods"`}, want: 7},
		{name: "req_total", match: []string{`webhook="/mutate-pods"`, `code="500"`}, want: 2},
		{name: "spaced", want: 7},
		{name: "absent", want: 0},
	} {
		if got := m.Sum(tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
	if got := m[`spaced{msg="a b"}`]; got != 7 {
		t.Errorf("series with a space in a label value: %v, want 7", got)
	}
	if _, err := ParseMetrics([]byte("x notanumber\n")); err == nil {
		t.Error("a value that is not a number parsed")
	}
}

func TestPodName(t *testing.T) {
	if p := Pod("probe-"); p.Name != "" || p.GenerateName != "probe-" {
		t.Errorf("Pod(probe-): name %q, generateName %q", p.Name, p.GenerateName)
	}
	if p := Pod("web"); p.Name != "web" || p.GenerateName != "" {
		t.Errorf("Pod(web): name %q, generateName %q", p.Name, p.GenerateName)
	}
}

func TestRoutedPods(t *testing.T) {
	pod := func(name, label, decision, injected string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
		if label != "" {
			p.Labels["istio.io/rev"] = label
		}
		if decision != "" {
			p.Annotations[DecisionAnnotation] = decision
		}
		if injected != "" {
			p.Annotations["istio.io/rev"] = injected
			p.Annotations["sidecar.istio.io/status"] = `{"revision":"` + injected + `"}`
		}
		return p
	}
	good := pod("good", "canary", `{"revision":"canary"}`, "canary")
	cases := []struct {
		name string
		pod  corev1.Pod
		bad  int
	}{
		{"routed and injected alike", good, 0},
		{"no decision", pod("nodecision", "canary", "", "canary"), 1},
		{"decision is not JSON", pod("notjson", "canary", "{", "canary"), 1},
		{"label differs from decision", pod("label", "stable", `{"revision":"canary"}`, "canary"), 1},
		{"no label, no revision", pod("empty", "", `{"revision":""}`, ""), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errorRecorder{}
			_, bad := RoutedPods(rec, []corev1.Pod{tc.pod})
			if bad != tc.bad || rec.errors != tc.bad {
				t.Errorf("mismatches %d, errors reported %d, want %d", bad, rec.errors, tc.bad)
			}
		})
	}
}

// errorRecorder counts the errors a helper reports instead of failing
// the test running it.
type errorRecorder struct {
	testing.TB
	errors int
}

func (r *errorRecorder) Helper()               {}
func (r *errorRecorder) Errorf(string, ...any) { r.errors++ }
