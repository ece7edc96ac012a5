package node

import (
	"encoding/json"
	"fmt"
)

// Addresses the harness creates. Nothing else is ever sent anywhere: the
// node's namespace has no default route, so an image pull or a stray
// connection fails at once instead of leaving the machine.
const (
	// hostIP and nodeIP are the two ends of the veth between the host and
	// the node's network namespace (a /30).
	hostIP = "10.213.0.1"
	nodeIP = "10.213.0.2"
	// PodCIDR is the pod network, on a bridge inside the node's namespace;
	// the host routes it through the veth so the apiserver reaches pods.
	PodCIDR   = "10.213.1.0/24"
	podGW     = "10.213.1.1"
	bridgeDev = "crbr0"
	// kubernetesServiceIP is the "kubernetes" Service's ClusterIP, which
	// in-cluster clients dial (KUBERNETES_SERVICE_HOST). With no kube-proxy
	// a DNAT rule in the node's namespace sends it to the apiserver proxy.
	kubernetesServiceIP = "10.0.0.1"
	// SandboxImage is the pause image containerd 1.6 runs for every pod.
	SandboxImage = "registry.k8s.io/pause:3.6"
)

func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %[3]q

[ttrpc]
  address = "%[3]s.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # Without CAP_SYS_RESOURCE runc cannot write oom_score_adj below the
  # parent's, and fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, dir+"/containerd/root", dir+"/containerd/state", dir+"/containerd.sock", dir+"/containerd/opt",
		SandboxImage, dir+"/runc", dir+"/cni")
}

// cniConfig is a bridge with host-local addresses from PodCIDR. No
// masquerade: pods only talk to the harness's addresses, which route back.
func cniConfig(dir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "0.4.0",
		"name":       "canary-node",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": bridgeDev, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": PodCIDR, "gateway": podGW}}},
					// The pods' default route is the bridge, where the DNAT
					// for the kubernetes Service waits; the node namespace
					// itself has no default route, so nothing else leaves.
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": dir + "/cni-ipam",
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
}

func kubeletConfig(dir, cgroupRoot, caFile string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# 1.37 refuses cgroup v1 unless told; this machine has v1 in hybrid layout.
failCgroupV1: false
cgroupDriver: cgroupfs
# Every pod cgroup under one root the harness creates and removes.
cgroupRoot: %[2]q
containerRuntimeEndpoint: unix://%[1]s/containerd.sock
address: %[4]s
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[3]q}
authorization: {mode: AlwaysAllow}
# The three sysctls it would set are masked by run.sh, so the host's
# values never change.
protectKernelDefaults: false
failSwapOn: false
resolvConf: ""
podLogsDir: %[1]s/pod-logs
volumePluginDir: %[1]s/volume-plugins
podCIDR: %[5]s
maxPods: 40
serializeImagePulls: false
# A shared build machine's disk and memory must not evict the test's pods.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
`, dir, cgroupRoot, caFile, nodeIP, PodCIDR)
}

func schedulerConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: %q, qps: 100, burst: 200}
leaderElection: {leaderElect: false}
`, kubeconfig)
}

// kubeconfig is a client-certificate kubeconfig; serverName is what the
// apiserver's certificate names, since the node dials it by IP.
func kubeconfig(server, serverName, caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: %q, certificate-authority: %q, tls-server-name: %q}
users:
- name: node
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: local
  context: {cluster: local, user: node}
current-context: local
`, server, caFile, serverName, certFile, keyFile)
}
