// Package harness is what every end-to-end suite under test/ shares: the
// TestMain preamble (skip in -short, a scratch folder, a control plane,
// the router binary, cleanup, log tails on failure) and the helpers that
// create workloads on that control plane, wait for them, and inspect the
// router's decisions and metrics. A new suite is a Suite literal and the
// objects only it needs:
//
//	var env struct{ *harness.Env }
//
//	func TestMain(m *testing.M) {
//		os.Exit(harness.Main(m, harness.Suite{Name: "mysuite", Workloads: true,
//			Setup: func(ctx context.Context, e *harness.Env) error {
//				env.Env = e
//				_, err := e.StartIstio(ctx, "stable", "stable", "canary")
//				return err
//			}}))
//	}
package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/localrouter"
)

// setupTimeout bounds a suite's set-up once everything it runs is built:
// the control plane's start and the suite's own Setup. Compiling is never
// under it (a first run on an empty build cache compiles about 1 GB of
// packages, in minutes that depend on the machine, not on the router):
// the router is built, or taken from $CANARY_ROUTER_TEST_BINARY, before
// the clock starts. Nothing started under it outlives it; processes run
// until the suite ends.
const setupTimeout = 5 * time.Minute

// setupLogBytes is how much of each component's log a failed set-up
// prints.
const setupLogBytes = 4000

// Suite describes one end-to-end test package.
type Suite struct {
	// Name prefixes the suite's messages and its scratch folder.
	Name string
	// Needs says what the suite needs, for the -short skip message.
	// Default: the control plane from `make tools`.
	Needs string
	// Tools must be on PATH; ToolsHint says how to get them.
	Tools     []string
	ToolsHint string
	// NoControlPlane skips the control plane (a suite whose binaries
	// start their own).
	NoControlPlane bool
	// Workloads also starts the controller manager, scheduler and kwok,
	// so Deployments roll out (cluster.Options.Workloads).
	Workloads bool
	// Setup prepares what the suite's tests share, once the control plane
	// runs and the router is built. What it starts it hands to Env.Cleanup.
	Setup func(ctx context.Context, e *Env) error
}

// Env is a suite's shared environment.
type Env struct {
	// Name is the suite's name.
	Name string
	// Dir is the suite's scratch folder, removed when the suite ends.
	Dir string
	// Cluster is the control plane; nil with Suite.NoControlPlane.
	Cluster *cluster.Cluster
	// Bin is the canary-router binary under test, built into Dir.
	Bin string

	cleanups []func()
	logs     []failureLog
	// keepDir leaves Dir in place for inspection after a failed set-up or
	// a failed test.
	keepDir bool
}

// failureLog is a log file whose tail is printed when the suite fails.
type failureLog struct {
	what string
	path func() string
	n    int
}

// Main runs a suite: in -short mode it skips; otherwise it builds the
// environment, runs the tests and tears everything down, and returns the
// exit code for os.Exit. A missing binary fails, never skips: a forgotten
// `make tools` must not pass as green.
func Main(m *testing.M, s Suite) int {
	flag.Parse()
	if testing.Short() {
		needs := s.Needs
		if needs == "" {
			needs = "the control plane from `make tools`"
		}
		fmt.Printf("%s: skipped in -short mode (needs %s)\n", s.Name, needs)
		return 0
	}
	e := &Env{Name: s.Name}
	defer e.teardown()
	if err := e.setup(s); err != nil {
		fmt.Fprintf(os.Stderr, "%s: set-up failed: %v\n", s.Name, err)
		e.printLogs()
		if e.Dir != "" {
			e.keepDir = true
			fmt.Fprintf(os.Stderr, "%s: kept %s for inspection (control plane logs in %s)\n",
				s.Name, e.Dir, filepath.Join(e.Dir, "cluster", "logs"))
		}
		return 1
	}
	code := m.Run()
	if code != 0 {
		e.printLogs()
		e.keepDir = true
		fmt.Fprintf(os.Stderr, "%s: kept %s for inspection (router and control plane logs)\n", s.Name, e.Dir)
	}
	return code
}

// printLogs prints the tail of every log the suite registered, then of
// each control-plane component's log.
func (e *Env) printLogs() {
	for _, l := range e.logs {
		path := l.path()
		fmt.Fprintf(os.Stderr, "--- last %s log (%s):\n%s\n", l.what, path, TailFile(path, l.n))
	}
	if e.Dir == "" {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(e.Dir, "cluster", "logs", "*"))
	for _, path := range paths {
		fmt.Fprintf(os.Stderr, "--- last %s log (%s):\n%s\n", filepath.Base(path), path, TailFile(path, setupLogBytes))
	}
}

func (e *Env) setup(s Suite) error {
	for _, tool := range s.Tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not on PATH: %s", tool, s.ToolsHint)
		}
	}
	dir, err := os.MkdirTemp("", "canary-router-"+s.Name+"-")
	if err != nil {
		return err
	}
	e.Dir = dir
	began := time.Now()
	if e.Bin, err = localrouter.Build(dir); err != nil {
		return err
	}
	if d := time.Since(began); d > 5*time.Second {
		fmt.Printf("%s: router built in %s (before the set-up clock)\n", s.Name, d.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if !s.NoControlPlane {
		began := time.Now()
		c, err := cluster.Start(ctx, cluster.Options{Workloads: s.Workloads, Log: os.Stdout, Dir: filepath.Join(dir, "cluster")})
		if err != nil {
			return fmt.Errorf("starting the control plane: %w", err)
		}
		e.Cluster = c
		fmt.Printf("%s: control plane ready in %s\n", s.Name, time.Since(began).Round(time.Millisecond))
	}
	if s.Setup != nil {
		return s.Setup(ctx, e)
	}
	return nil
}

// teardown runs the cleanups last in, first out, then stops the control
// plane and removes Dir.
func (e *Env) teardown() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	if e.Cluster != nil {
		_ = e.Cluster.Stop()
	}
	if e.Dir != "" && !e.keepDir {
		_ = os.RemoveAll(e.Dir)
	}
}

// Cleanup registers f to run when the suite ends, before the control
// plane stops; the last registered runs first.
func (e *Env) Cleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// LogOnFailure prints the last n bytes of the log at path() when the
// suite fails. path is read then, so a router restarted with a new log
// shows its latest.
func (e *Env) LogOnFailure(what string, path func() string, n int) {
	e.logs = append(e.logs, failureLog{what: what, path: path, n: n})
}

// Context is a context for one test step, cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TailFile returns the last n bytes of the file at path, or what it can.
func TailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
