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
	if got := tuneGC(); got != defaultGCPercent || debug.SetGCPercent(100) != defaultGCPercent {
		t.Fatalf("without GOGC: target %d, want %d", got, defaultGCPercent)
	}

	// GOGC is read by the runtime at start; here the test sets what it
	// would have set.
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	if got := tuneGC(); got != 50 || debug.SetGCPercent(100) != 50 {
		t.Fatalf("with GOGC=50: target %d, want the operator's 50", got)
	}
}
