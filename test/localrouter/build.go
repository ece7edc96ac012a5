package localrouter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build compiles cmd/canary-router into dir, as `make build` does (static,
// CGO off), and returns the binary's path. Suites run the real binary as a
// separate process, the way it runs in a cluster.
func Build(dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(self), "..", "..", "cmd", "canary-router")
	bin := filepath.Join(dir, "canary-router")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building canary-router: %v\n%s", err, out)
	}
	return bin, nil
}
