package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/localrouter"
)

// TestDemo runs the whole demo unattended, as `DEMO_NONINTERACTIVE=1 make
// demo` does, and checks that the shares it prints match the policy.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the control plane from `make tools`")
	}
	dir := t.TempDir()
	bin, err := localrouter.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err = run(ctx, options{dir: filepath.Join(dir, "demo"), router: bin, nonInteractive: true}, &out)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"canary share: 5 of 50 pods = 10%, as the policy asks",
		"canary share: 25 of 50 pods = 50%, as the policy asks",
		"done: 4 workloads restarted in 2 batches",
		"Warning: canary-router replaced istio-injection=enabled",
		"export KUBECONFIG=",
		"healthy rollout: Complete in",
		"4 of 4 workloads and 50 of 50 pods on canary, 0 without a sidecar",
		"now all 4 workloads and 50 of 50 pods on stable, 0 on canary, 0 without a sidecar",
		"Phase:    Complete",
		"Phase:    Aborted",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
