package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a component gets to exit after SIGTERM.
	stopGrace = 5 * time.Second
	// readyTimeout bounds every readiness wait. A quiet machine needs
	// about 3 s; the margin is for CI running two suites' control planes
	// side by side on 2 cores, where a start-up has been seen to need more
	// than a minute. A component that dies still fails at once.
	readyTimeout = 150 * time.Second
	pollInterval = 100 * time.Millisecond
	logTailLines = 30
)

// process is one running control-plane binary whose output goes to a file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // valid after done is closed
}

// startProcess runs bin with args in its own process group, appending its
// stdout and stderr to <logDir>/<name>.log.
func startProcess(name, bin string, args []string, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	// Append so a restarted apiserver keeps the log of its previous run.
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "==== %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets Stop signal the component and anything it
		// forks, and keeps a Ctrl-C on the test from racing our shutdown.
		Setpgid: true,
		// If the test binary dies (go test -timeout panics, SIGKILL), the
		// kernel kills the component rather than leaving it holding ports.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has already terminated.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits until the process is reaped. Stopping a dead process is a no-op.
func (p *process) stop(grace time.Duration) error {
	pgid := -p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Also sweeps up any child left in the group after the leader exited.
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// diedError describes an unexpected exit, with the tail of the log.
func (p *process) diedError() error {
	return fmt.Errorf("%s exited early (%v); last lines of %s:\n%s", p.name, p.waitErr, filepath.Base(p.logPath), p.logTail())
}

// logTail returns the last lines of the process log.
func (p *process) logTail() string {
	return tailFile(p.logPath, logTailLines)
}

// addrInUse reports whether the process failed because a port was taken,
// which happens when another cluster grabbed a port between FreePort and bind.
func (p *process) addrInUse() bool {
	return p.exited() && strings.Contains(p.logTail(), "address already in use")
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitFor polls check until it returns true, the timeout passes, ctx ends, or
// one of the watched processes exits. Errors name what was awaited and
// include the log tail of the process most likely at fault.
func waitFor(ctx context.Context, what string, timeout time.Duration, blame *process, watch []*process, check func(context.Context) (bool, error)) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		for _, p := range watch {
			if p.exited() {
				return fmt.Errorf("waiting for %s: %w", what, p.diedError())
			}
		}
		// A hung component must not stall the loop past the deadline.
		checkCtx, cancelCheck := context.WithTimeout(ctx, 5*time.Second)
		ok, err := check(checkCtx)
		cancelCheck()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("gave up waiting for %s after %s (%v)", what, since(began), ctx.Err())
			if lastErr != nil {
				msg += fmt.Sprintf(" (last error: %v)", lastErr)
			}
			if blame != nil {
				msg += fmt.Sprintf("; last lines of %s:\n%s", filepath.Base(blame.logPath), blame.logTail())
			}
			return errors.New(msg)
		case <-time.After(pollInterval):
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may still take it before it is bound; Start retries a
// component that fails with "address already in use".
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago, as FreePort does for one.
func FreePorts(n int) ([]int, error) {
	// Hold all listeners until every port is chosen so the n ports differ.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
