//go:build !linux

package wire_test

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
