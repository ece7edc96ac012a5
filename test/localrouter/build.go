package localrouter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// TestBinaryEnv names a canary-router binary the suites run instead of
// building their own. `make e2e` builds bin/canary-router once and sets
// it, so no suite compiles while its set-up clock runs.
const TestBinaryEnv = "CANARY_ROUTER_TEST_BINARY"

// modulePath is the router's import path; the build names it rather than
// a folder, so it works from any package of the module and under
// -trimpath, where a test binary does not know its source paths.
const modulePath = "github.com/canary-router/canary-router/cmd/canary-router"

// Build returns the canary-router binary the suites run as a separate
// process, the way it runs in a cluster: $CANARY_ROUTER_TEST_BINARY when
// set, else a build into dir with `make build`'s flags (static, CGO off,
// -trimpath), which are the flags every other build of the project uses,
// so it reuses the packages `make unit` and `make build` compiled.
func Build(dir string) (string, error) {
	if b := os.Getenv(TestBinaryEnv); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("$%s: %w", TestBinaryEnv, err)
		}
		return b, nil
	}
	bin := filepath.Join(dir, "canary-router")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, modulePath)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building canary-router: %v\n%s", err, out)
	}
	return bin, nil
}
