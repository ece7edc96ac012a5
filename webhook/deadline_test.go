package webhook

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestAdmissionDeadlineUnderTimeout: the router answers a late admission
// itself only if its deadline passes before the apiserver gives up on the
// call, with a second left for the network and TLS.
func TestAdmissionDeadlineUnderTimeout(t *testing.T) {
	timeout := regexp.MustCompile(`(?m)^\s*timeoutSeconds:\s*(\d+)\s*$`)
	for _, file := range []string{"../deploy/base/webhooks.yaml", "../deploy/helm/canary-router/templates/webhooks.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		found := timeout.FindAllSubmatch(data, -1)
		if len(found) == 0 {
			t.Fatalf("%s: no timeoutSeconds", file)
		}
		for _, m := range found {
			secs, _ := strconv.Atoi(string(m[1]))
			if limit := time.Duration(secs)*time.Second - time.Second; admissionDeadline > limit {
				t.Errorf("%s: timeoutSeconds %d, but the admission deadline is %v (at most %v)", file, secs, admissionDeadline, limit)
			}
		}
	}
}
