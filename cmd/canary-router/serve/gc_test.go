package serve

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	if got, adapt := tuneGC(); got != defaultGCPercent || !adapt || debug.SetGCPercent(100) != defaultGCPercent {
		t.Fatalf("without GOGC: target %d, want %d", got, defaultGCPercent)
	}

	// GOGC is read by the runtime at start; here the test sets what it
	// would have set.
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	if got, adapt := tuneGC(); got != 50 || adapt || debug.SetGCPercent(100) != 50 {
		t.Fatalf("with GOGC=50: target %d, want the operator's 50", got)
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 200},        // nothing read yet
		{10 * mib, 200}, // a small cluster: the throughput setting
		{16 * mib, 200}, // 200 percent of 16 MiB is the headroom
		{24 * mib, 133}, // 32 MiB of room over what is live
		{32 * mib, 100}, // Go's default
		{48 * mib, 66},
		{64 * mib, 50},  // the floor from here on
		{200 * mib, 50}, // never below it
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

func TestRetarget(t *testing.T) {
	for _, tc := range []struct {
		current, p int
		want       bool
	}{
		{200, 200, false},
		{150, 155, false}, // wobble
		{150, 145, false},
		{150, 160, true},
		{150, 140, true},
		{55, 50, true},   // the floor
		{195, 200, true}, // back to the throughput setting
	} {
		if got := retarget(tc.current, tc.p); got != tc.want {
			t.Errorf("retarget(%d, %d) = %v, want %v", tc.current, tc.p, got, tc.want)
		}
	}
}
