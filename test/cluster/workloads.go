package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// FakeNodeName is the name of the kwok-managed Node created with Workloads.
	FakeNodeName = "kwok-node-0"
	// kwokStagesFile holds kwok's "fast" stages, rendered by `make tools`;
	// without them kwok never moves pods to Running and Ready.
	kwokStagesFile = "kwok-stages.yaml"
	// podCIDR sizes the fake pod IP pool; kwok's default /24 runs out of
	// addresses after 254 pods.
	podCIDR = "10.64.0.0/16"
	// clientQPS lifts the controllers' client rate limits (20 QPS by default
	// in the controller manager) so rollouts of hundreds of pods are quick.
	clientQPS   = "200"
	clientBurst = "400"
)

// controllers are the kube-controller-manager controllers a Deployment
// rollout needs. node-lifecycle-controller is the easy one to miss: it
// removes the not-ready taint that admission puts on every new Node, and
// without it nothing schedules.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"endpointslice-controller",
	"endpoints-controller",
	"node-lifecycle-controller",
	"root-ca-certificate-publisher-controller",
}

// startWorkloads starts kube-controller-manager, kube-scheduler and kwok,
// registers the fake Node and waits until workloads can run.
func (c *Cluster) startWorkloads(ctx context.Context) error {
	pki := c.pkiDir()
	schedulerConfig := filepath.Join(c.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedulerConfig, []byte(schedulerConfigYAML(c.Kubeconfig)), 0o600); err != nil {
		return err
	}
	specs := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--controllers=" + strings.Join(controllers, ","),
			"--service-account-private-key-file=" + filepath.Join(pki, "sa.key"),
			"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--secure-port=0",
			"--kube-api-qps=" + clientQPS,
			"--kube-api-burst=" + clientBurst,
		}},
		// The scheduler takes its kubeconfig and leader election from a
		// config file; the equivalent flags are deprecated.
		{"kube-scheduler", []string{"--config=" + schedulerConfig, "--secure-port=0"}},
		// kwok serves nothing unless --server-address or --node-port is set.
		{"kwok", []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--manage-all-nodes=true",
			"--cidr=" + podCIDR,
			// Without a node lease kwok posts the node's Ready status
			// about once a minute, past kube-controller-manager's 40 s
			// grace: the node flaps NotReady and node-lifecycle marks
			// every pod NotReady for good, so Deployments turn
			// unavailable mid-test. A renewed lease keeps it Ready.
			"--node-lease-duration-seconds=40",
			"-c", filepath.Join(c.binDir, kwokStagesFile),
		}},
	}
	began := time.Now()
	watch := []*process{c.etcd, c.apiserver}
	started := map[string]*process{}
	for _, s := range specs {
		p, err := startProcess(s.name, filepath.Join(c.binDir, s.name), s.args, c.logDir())
		if err != nil {
			return err
		}
		c.trackWorkload(p)
		watch = append(watch, p)
		started[s.name] = p
		c.logf("%s started (pid %d)", s.name, p.cmd.Process.Pid)
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, fakeNode(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", FakeNodeName, err)
	}
	err := waitFor(ctx, "node "+FakeNodeName+" Ready and untainted", readyTimeout, started["kwok"], watch, func(ctx context.Context) (bool, error) {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, FakeNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeSchedulable(node)
	})
	if err != nil {
		return err
	}
	c.logf("node %s ready in %s", FakeNodeName, since(began))
	// Pods are rejected until the namespace's default ServiceAccount exists.
	err = waitFor(ctx, `serviceaccount "default" in namespace "default"`, readyTimeout, started["kube-controller-manager"], watch, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	// Nothing above needs the scheduler, and it has no port to probe.
	if err := c.probePod(ctx, started["kube-scheduler"], watch); err != nil {
		return err
	}
	c.logf("workloads ready in %s", since(began))
	return nil
}

// nodeSchedulable reports whether node is Ready and free of the taints the
// control plane puts on nodes that are not (yet) ready.
func nodeSchedulable(node *corev1.Node) (bool, error) {
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return false, fmt.Errorf("node %s is not Ready yet", node.Name)
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false, fmt.Errorf("node %s still has taint %s", node.Name, t.Key)
		}
	}
	return true, nil
}

// fakeNode is the Node kwok adopts. Its capacity fits the load tests'
// thousands of pods; the os/arch labels satisfy the nodeSelectors common in
// real manifests.
func fakeNode() *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("2000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        FakeNodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": FakeNodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
		},
	}
}

func schedulerConfigYAML(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: %s
  burst: %s
leaderElection:
  leaderElect: false
`, kubeconfig, clientQPS, clientBurst)
}
