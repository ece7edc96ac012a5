package webhook

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/podgen"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	if os.Getenv("ZZCPU") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, s := range podgen.Shapes {
		body := podgen.Review(podgen.Pod(s, 0), "uid-1")
		best := time.Hour
		for r := 0; r < 5; r++ {
			n := 200000000 / len(body) / 4
			c0 := cpuNow()
			for i := 0; i < n; i++ {
				decodeReview(body)
			}
			d := (cpuNow() - c0) / time.Duration(n)
			if d < best {
				best = d
			}
		}
		fmt.Printf("decode %s: %v cpu/op (best of 5)\n", s.Name, best)
		measure := func(name string, f func()) {
			best := time.Hour
			for r := 0; r < 5; r++ {
				n := 200000000 / len(body) / 8
				c0 := cpuNow()
				for i := 0; i < n; i++ {
					f()
				}
				d := (cpuNow() - c0) / time.Duration(n)
				if d < best {
					best = d
				}
			}
			fmt.Printf("  %s %s: %v\n", name, s.Name, best)
		}
		var sink int
		measure("byteloop", func() {
			n := 0
			for _, c := range body {
				if c == '"' {
					n++
				}
			}
			sink += n
		})
		measure("std", func() { decodeReviewStd(body) })
		var sc scanner
		measure("masks", func() {
			sc.reset(body)
			var m uint64
			for b := 0; b < len(body); b += 64 {
				m ^= blockMask(body, b)
			}
			sink += int(m)
		})
		_ = sink
	}
}
