#!/usr/bin/env bash
# The node's inside: run by test/node under `unshare --net --mount
# --propagation private`, so containerd, the kubelet and every pod share a
# network namespace the harness wires (never the host's) and a private
# mount namespace whose mounts all vanish with it. Masks what the kubelet
# would change on the host, starts containerd, imports the images (nothing
# is ever pulled), then becomes the kubelet.
#
# Environment: NODE_DIR (the node's scratch folder, see node.go), KUBELET,
# IMAGES (image archives), KUBELET_ARGS.
set -euo pipefail
dir=$NODE_DIR

# The harness moves the veth in and writes net-ready once the routes and
# the apiserver DNAT are in place.
for _ in $(seq 1 600); do [ -e "$dir/net-ready" ] && break; sleep 0.05; done
[ -e "$dir/net-ready" ] || { echo "run.sh: the harness never wired the network" >&2; exit 1; }

# Host paths the kubelet, containerd, its shims and the CNI plugins write
# to whatever their configuration says. A tmpfs over each keeps their
# files in this mount namespace; node.go removes any mount point folder it
# had to create.
for d in /run/containerd /run/netns /var/lib/kubelet /var/lib/cni /var/log/containers; do
  mkdir -p "$d"
  mount -t tmpfs -o mode=0755 tmpfs "$d"
done

# kubelet (protectKernelDefaults: false) sets vm.overcommit_memory,
# kernel.panic and kernel.panic_on_oops: it writes copies here instead.
mkdir -p "$dir/sysctl"
for f in vm/overcommit_memory kernel/panic kernel/panic_on_oops; do
  copy="$dir/sysctl/${f//\//_}"
  cat "/proc/sys/$f" > "$copy"
  mount --bind "$copy" "/proc/sys/$f"
done

ip link set lo up
containerd --config "$dir/containerd.toml" > "$dir/logs/containerd.log" 2>&1 &
for _ in $(seq 1 200); do [ -S "$dir/containerd.sock" ] && break; sleep 0.05; done
ctr=(ctr --address "$dir/containerd.sock" -n k8s.io)
"${ctr[@]}" version > /dev/null
for img in $IMAGES; do
  "${ctr[@]}" images import "$img" > /dev/null
done
"${ctr[@]}" images ls -q > "$dir/images"
touch "$dir/containerd-ready"
# shellcheck disable=SC2086 # KUBELET_ARGS is a list of flags
exec "$KUBELET" $KUBELET_ARGS
