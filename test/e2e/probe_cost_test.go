package e2e

import (
	"testing"
	"time"
)

// TestInjectorProbeCost measures what the router's injector check costs
// each istiod, from the stand-in's own request counts: reviews are the
// requests real istiod logs at info ("Process sidecar injection request",
// "Skipping due to policy check") and counts as injection requests; quiet
// checks of /httpsReady it neither logs nor counts. One router replica,
// default flags, a little over a minute.
func TestInjectorProbeCost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute")
	}
	const span = 61 * time.Second
	revs := []string{"stable", "canary"}
	type count struct{ reviews, ready int }
	before := map[string]count{}
	for _, rev := range revs {
		r, q := env.injectors.Requests(rev)
		before[rev] = count{r, q}
	}
	time.Sleep(span)
	for _, rev := range revs {
		r, q := env.injectors.Requests(rev)
		reviews, ready := r-before[rev].reviews, q-before[rev].ready
		perMinute := float64(reviews) * float64(time.Minute) / float64(span)
		// Two info lines per review, two replicas as shipped.
		t.Logf("RESULT injector-probe-cost revision=%s span_s=%.0f reviews=%d quiet_checks=%d istiod_info_lines_per_minute_per_replica=%.1f with_2_replicas=%.1f",
			rev, span.Seconds(), reviews, ready, 2*perMinute, 4*perMinute)
		// One review a minute per replica (two when the span straddles two
		// review times), and a quiet check about every second between.
		if reviews < 1 || reviews > 2 {
			t.Errorf("%s: %d reviews in %s, want 1 or 2 (one a minute)", rev, reviews, span)
		}
		if ready < 50 {
			t.Errorf("%s: %d quiet checks in %s, want about one a second", rev, ready, span)
		}
	}
}
