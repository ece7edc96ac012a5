package nsview

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

// TestSelected: whatever the watch still holds, the labels read for the
// pod webhook are those its namespaceSelector matched.
func TestSelected(t *testing.T) {
	cached := Selected{
		"istio.io/rev": "canary", "istio-injection": "enabled", "canary-router.io/injection": "disabled",
		"kubernetes.io/metadata.name": "shop", "team": "a",
	}
	for _, tc := range []struct {
		key   string
		value string
		ok    bool
	}{
		{key: "istio.io/rev"},
		{key: "istio-injection"},
		{key: "canary-router.io/injection", value: "enabled", ok: true},
		{key: "kubernetes.io/metadata.name", value: "shop", ok: true},
		{key: "team", value: "a", ok: true},
		{key: "absent"},
	} {
		v, ok := cached.Lookup(tc.key)
		if v != tc.value || ok != tc.ok || cached.Has(tc.key) != tc.ok || cached.Get(tc.key) != tc.value {
			t.Errorf("%s: Lookup (%q, %v), want (%q, %v)", tc.key, v, ok, tc.value, tc.ok)
		}
	}
	// Istio's namespace webhook selector must not match a stale label.
	sel, err := labels.Parse("istio.io/rev in (canary),!istio-injection")
	if err != nil {
		t.Fatal(err)
	}
	if sel.Matches(cached) {
		t.Error("a ruled-out label matched a selector")
	}
	for _, k := range RuledOut() {
		if cached.Has(k) {
			t.Errorf("RuledOut key %s supplied", k)
		}
	}
}
