package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// controllers are what a Deployment rollout, its Service's endpoints and
// pods' ServiceAccount tokens need, and the job controller for the
// chart's pre-delete hook Job. node-lifecycle-controller removes the
// not-ready taint admission puts on a new Node.
var controllers = []string{
	"deployment-controller", "replicaset-controller", "namespace-controller", "job-controller",
	"garbage-collector-controller", "serviceaccount-controller",
	"serviceaccount-token-controller", "endpointslice-controller",
	"endpoints-controller", "node-lifecycle-controller",
	"root-ca-certificate-publisher-controller", "disruption-controller",
}

// startControllers starts kube-controller-manager and kube-scheduler in
// the host namespace. test/cluster's Workloads option would also start
// kwok, whose --manage-all-nodes would take over the real node.
func (n *Node) startControllers() error {
	pki := filepath.Join(n.c.Dir, "pki")
	specs := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + n.c.Kubeconfig,
			"--controllers=" + strings.Join(controllers, ","),
			"--service-account-private-key-file=" + filepath.Join(pki, "sa.key"),
			"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--secure-port=0",
			"--kube-api-qps=100", "--kube-api-burst=200",
			// A pod of a dead node is evicted quickly, not after 5 minutes.
			"--node-monitor-grace-period=20s",
		}},
		{"kube-scheduler", []string{"--config=" + n.path("kube-scheduler.yaml"), "--secure-port=0"}},
	}
	for _, s := range specs {
		logf, err := os.Create(n.path("logs", s.name+".log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(filepath.Join(n.o.BinDir, s.name), s.args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		n.procs = append(n.procs, cmd)
		n.logf("%s started (pid %d)", s.name, cmd.Process.Pid)
	}
	return nil
}
