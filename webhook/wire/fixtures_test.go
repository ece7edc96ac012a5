package wire_test

import (
	"testing"

	"github.com/canary-router/canary-router/test/podgen"
)

// benchBody is the review of a Deployment pod of the given shape.
func benchBody(tb testing.TB, s podgen.Shape) []byte {
	tb.Helper()
	return podgen.Review(podgen.Pod(s, 0), "uid-1")
}
