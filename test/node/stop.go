package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
)

// cgroupMount is where this machine mounts its cgroup v1 hierarchies.
const cgroupMount = "/sys/fs/cgroup"

// Stop tears the node down and removes everything Start made: the
// kubelet, containerd, its shims and every container (by the node's
// cgroup root, so only processes the node started), the controller
// manager and scheduler, the namespaces (they die with their last
// process; the veth and the pods' interfaces with them), the cgroups,
// the host folders run.sh mounted over, and Dir. It is safe to call more
// than once and returns what it could not remove.
func (n *Node) Stop() error {
	var errs []error
	n.stopOnce.Do(func() {
		if n.runner != nil && n.runner.Process != nil {
			// The kubelet first, so it restarts nothing; then every process
			// in the node's cgroups (containers, pause), then the shims
			// and containerd.
			_ = syscall.Kill(-n.runner.Process.Pid, syscall.SIGTERM)
			waitClosed(n.runnerDone, 10*time.Second)
			n.killCgroupProcs()
			n.killShims()
			_ = syscall.Kill(-n.runner.Process.Pid, syscall.SIGKILL)
		}
		for _, p := range n.procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range n.procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			if !waitClosed(done, 5*time.Second) {
				_ = p.Process.Kill()
				<-done
			}
		}
		if n.proxy != nil {
			n.proxy.close()
		}
		errs = append(errs, n.removeLeftovers())
	})
	return errors.Join(errs...)
}

// Leftovers lists what Stop should have removed but is still there: a
// cgroup, the veth, a host folder, the node's folder. Empty after a clean
// Stop; the suite fails otherwise.
func (n *Node) Leftovers() []string {
	var out []string
	for _, h := range append(cgroupHierarchies(), filepath.Join(cgroupMount, "unified")) {
		if _, err := os.Stat(filepath.Join(h, n.cgroupRoot)); err == nil {
			out = append(out, "cgroup "+filepath.Join(h, n.cgroupRoot))
		}
	}
	if linkExists(n.hostVeth) {
		out = append(out, "link "+n.hostVeth)
	}
	for _, d := range append([]string{n.Dir}, n.madeDirs...) {
		if _, err := os.Stat(d); err == nil {
			out = append(out, "folder "+d)
		}
	}
	if len(n.cgroupPids()) > 0 {
		out = append(out, "processes in the node's cgroups")
	}
	return out
}

// removeLeftovers removes what outlives the node's processes: the veth
// (normally gone with its namespace), the cgroups, the host folders
// run.sh mounted over, and Dir.
func (n *Node) removeLeftovers() error {
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for linkExists(n.hostVeth) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if linkExists(n.hostVeth) {
		if out, err := exec.Command("ip", "link", "del", n.hostVeth).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", n.hostVeth, err, out))
		}
	}
	errs = append(errs, n.removeCgroupRoot())
	for _, d := range n.madeDirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("removing %s, which the node created: %w", d, err))
		}
	}
	if n.Dir != "" {
		// Container layers were mounted in the node's mount namespace,
		// gone with its processes, so this is plain files.
		errs = append(errs, os.RemoveAll(n.Dir))
	}
	return errors.Join(errs...)
}

func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// cgroupHierarchies lists the mounted v1 hierarchies (cpu, memory, ...,
// the named systemd one); the cgroup2 mount in this hybrid layout has no
// controllers and the kubelet does not use it.
func cgroupHierarchies() []string {
	entries, _ := os.ReadDir(cgroupMount)
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" {
			out = append(out, filepath.Join(cgroupMount, e.Name()))
		}
	}
	return out
}

// makeCgroupRoot creates the kubelet's cgroupRoot in every hierarchy: the
// kubelet refuses a root that does not exist.
func (n *Node) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		dir := filepath.Join(h, n.cgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) == "cpuset" {
			// A new cpuset has no CPUs or memory nodes until given some.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("%s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// killCgroupProcs SIGKILLs every process in the node's cgroups: the
// containers and pause processes, which the runtime started and nobody
// else did.
func (n *Node) killCgroupProcs() {
	for round := 0; round < 20; round++ {
		pids := n.cgroupPids()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *Node) cgroupPids() []int {
	seen := map[int]bool{}
	_ = filepath.WalkDir(filepath.Join(cgroupMount, "pids", n.cgroupRoot), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				seen[pid] = true
			}
		}
		return nil
	})
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	return pids
}

// killShims SIGKILLs the containerd shims of this node's containerd:
// they detach into their own session, so they are found by the socket
// address in their command line, which names this node's Dir.
func (n *Node) killShims() {
	sock := n.path("containerd.sock")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(cmdline), sock) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroupRoot removes the node's cgroups, deepest first; a cgroup
// can only be removed once its processes are gone, so it retries briefly.
func (n *Node) removeCgroupRoot() error {
	var dirs []string
	// runc also mirrors the pod cgroups into the controller-less cgroup2
	// mount of the hybrid layout.
	for _, h := range append(cgroupHierarchies(), filepath.Join(cgroupMount, "unified")) {
		_ = filepath.WalkDir(filepath.Join(h, n.cgroupRoot), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		var err error
		for i := 0; i < 50; i++ {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// proxy forwards the node's connections to the apiserver, which listens
// on 127.0.0.1 only, from the host end of the veth.
type proxy struct {
	port   int
	target string
	ln     net.Listener
	wg     sync.WaitGroup
}

// startProxy picks the proxy's port; listen binds it once the veth
// address exists.
func (n *Node) startProxy() (int, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return 0, err
	}
	n.proxy = &proxy{port: port, target: strings.TrimPrefix(n.c.Config.Host, "https://")}
	return port, nil
}

func (p *proxy) listen() error {
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", hostIP, p.port))
	if err != nil {
		return err
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(conn)
		}
	}()
	return nil
}

func (p *proxy) forward(in net.Conn) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

func (p *proxy) close() {
	if p.ln != nil {
		_ = p.ln.Close()
		p.wg.Wait()
	}
}
