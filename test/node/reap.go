package node

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// state is what a later run needs to remove this node if the test process
// dies without Stop (a `go test -timeout` panic, a SIGKILL): Start saves
// it in Dir and reapStale reads it back.
type state struct {
	Owner      int      `json:"owner"`
	OwnerStart string   `json:"ownerStart"`
	Runner     int      `json:"runner"`
	CgroupRoot string   `json:"cgroupRoot"`
	HostVeth   string   `json:"hostVeth"`
	MadeDirs   []string `json:"madeDirs"`
	// Controllers maps the controller manager's and scheduler's pids to
	// their start times.
	Controllers map[int]string `json:"controllers"`
}

func (n *Node) saveState() error {
	s := state{
		Owner: os.Getpid(), OwnerStart: startTime(os.Getpid()), Runner: n.runner.Process.Pid,
		CgroupRoot: n.cgroupRoot, HostVeth: n.hostVeth, MadeDirs: n.madeDirs,
		Controllers: map[int]string{},
	}
	for _, p := range n.procs {
		s.Controllers[p.Process.Pid] = startTime(p.Process.Pid)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(n.path("state.json"), data, 0o600)
}

// startTime is a process's start time in clock ticks (field 22 of
// /proc/<pid>/stat), so a reused pid is not taken for the same process.
func startTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields after it do not.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// reapStale removes nodes whose test process is gone: their kubelet,
// containerd, shims and containers (found by the dead node's folder, its
// containerd socket and its cgroup root, never by name), veth, cgroups and
// folders.
func reapStale(log io.Writer) {
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "canary-node-*", "state.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		var s state
		if err != nil || json.Unmarshal(data, &s) != nil {
			continue
		}
		if st := startTime(s.Owner); st != "" && st == s.OwnerStart {
			continue // its owner is alive: another run's node
		}
		dir := filepath.Dir(f)
		fmt.Fprintf(log, "node: removing a node left by a test process that died (%s)\n", dir)
		n := &Node{Dir: dir, cgroupRoot: s.CgroupRoot, hostVeth: s.HostVeth, madeDirs: s.MadeDirs}
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.Runner)); strings.Contains(string(cmdline), dir) {
			_ = syscall.Kill(-s.Runner, syscall.SIGKILL)
		}
		for pid, st := range s.Controllers {
			if st != "" && startTime(pid) == st {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		n.killCgroupProcs()
		n.killShims()
		if err := n.removeLeftovers(); err != nil {
			fmt.Fprintf(log, "node: %v\n", err)
		}
	}
}
