//go:build !linux

package webhook

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
