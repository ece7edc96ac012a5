package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
)

// fakeBinDir returns a BinDir whose etcd is the given shell script and whose
// other binaries are never reached.
func fakeBinDir(t *testing.T, etcdScript string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"etcd":           etcdScript,
		"kube-apiserver": "exit 1",
		"kubectl":        "exit 1",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStartFailsWithLogTailWhenComponentDies(t *testing.T) {
	bin := fakeBinDir(t, `echo "fatal: cannot open data dir" >&2; exit 3`)
	began := time.Now()
	_, err := cluster.Start(t.Context(), cluster.Options{BinDir: bin})
	if err == nil {
		t.Fatal("Start succeeded with an etcd that exits at once")
	}
	for _, want := range []string{"etcd exited early", "exit status 3", "fatal: cannot open data dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Start took %s to notice the dead process", d)
	}
}

func TestStartGivesUpAndKillsProcessGroup(t *testing.T) {
	// The fake etcd never becomes healthy and leaves a child in its group,
	// which Stop must kill along with it.
	bin := fakeBinDir(t, `sleep 600 & echo $$ $! > "$(dirname "$0")/pids"; echo "starting forever"; wait`)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := cluster.Start(ctx, cluster.Options{BinDir: bin})
	if err == nil || !strings.Contains(err.Error(), "etcd health") || !strings.Contains(err.Error(), "starting forever") {
		t.Fatalf("err = %v, want a give-up on etcd health with the log tail", err)
	}
	data, err := os.ReadFile(filepath.Join(bin, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(field)
		if !processGone(pid, 5*time.Second) {
			t.Errorf("process %d still running after Start failed", pid)
		}
	}
}

// processGone polls until pid no longer exists. An orphaned child is reaped
// by init a moment after it dies, so a zombie may linger briefly.
func processGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil && strings.Contains(string(stat), ") Z ") {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
