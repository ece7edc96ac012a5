package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBenchTable(t *testing.T) {
	out := `goos: linux
BenchmarkAdmitPod/4KB-2   	  100	     52000 ns/op	  338 MB/s	     12000 cpu-ns/op	    2600 B/op	      13 allocs/op
BenchmarkAdmitPod/4KB-2   	  100	     16000 ns/op	  338 MB/s	     16000 cpu-ns/op	    2600 B/op	      13 allocs/op
BenchmarkAdmitPod/4KB-2   	  100	     44000 ns/op	  338 MB/s	     14000 cpu-ns/op	    2600 B/op	      13 allocs/op
BenchmarkAdmitPod/64KB-2  	  100	    170000 ns/op	  338 MB/s	    170000 cpu-ns/op	    2600 B/op	      13 allocs/op
BenchmarkDecidePod-2      	  100	       300 ns/op	       16 B/op	       1 allocs/op
PASS
`
	got, err := benchTable(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| AdmitPod/4KB | 3 | 14µs | 44µs | 2600 | 13 | MISSED: <= 10µs; met: <= 15 allocs |",
		"| AdmitPod/64KB | 1 | 170µs | 170µs | 2600 | 13 | MISSED: <= 100µs |",
		"| DecidePod | 1 | n/a | 300ns | 16 | 1 |  |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if _, err := benchTable(strings.NewReader("PASS\n")); err == nil {
		t.Error("no results accepted")
	}
}

func TestSplice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "perf.md")
	section := beginGenerated + "\nresults 1\n" + endGenerated
	if err := splice(path, section); err != nil {
		t.Fatal(err)
	}
	doc, _ := os.ReadFile(path)
	prose := "# Performance\n\nIntro.\n\n" + string(doc[len("# Performance\n\n"):]) + "\n## Analysis\n\nKept.\n"
	if err := os.WriteFile(path, []byte(prose), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := splice(path, beginGenerated+"\nresults 2\n"+endGenerated); err != nil {
		t.Fatal(err)
	}
	doc, _ = os.ReadFile(path)
	if s := string(doc); !strings.Contains(s, "Intro.") || !strings.Contains(s, "Kept.") || !strings.Contains(s, "results 2") || strings.Contains(s, "results 1") {
		t.Errorf("spliced document:\n%s", s)
	}
}

// TestProcessCPU: spinning shows up in the process's CPU time, in
// clock ticks of 10ms (on a busy machine the spin may take a while to get
// that much CPU, hence the generous deadline).
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			return
		}
	}
	t.Error("10s of spinning did not add 50ms of CPU time")
}
