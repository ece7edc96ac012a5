#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok), the kubelet of the real-node tests
# (test/node) and helm from Go modules into $1 (default _bin).
# Idempotent: a stamp holds the hash of the pins, and the build is skipped
# when every binary is present and the pins have not changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../../_bin}" && cd "${1:-$here/../../_bin}" && pwd)
k8s_version=v1.37.2
kwok_version=v0.8.0
helm_version=v3.22.0
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kwok helm)

stamp=$( (cat "$here/go.mod" "$here/go.sum"; echo "$kwok_version $helm_version helm-ldflags-1") | sha256sum | cut -c1-16)
missing=0
for b in "${bins[@]}"; do [ -x "$out/$b" ] || missing=1; done
if [ "$missing" = 0 ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "control plane binaries up to date in $out"
  exit 0
fi

ver_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${ver_pkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitTreeState=clean"
done

build() { # name package
  echo ">> building $1 (first build takes several minutes; later ones are seconds)"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$1" "$2")
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubectl k8s.io/kubernetes/cmd/kubectl
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubelet k8s.io/kubernetes/cmd/kubelet
echo ">> building kwok $kwok_version"
(cd "$here" && CGO_ENABLED=0 GOBIN="$out" GOFLAGS= go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$kwok_version")
# helm from its own module graph (a plain `go install`, like kwok): it brings
# its own Kubernetes libraries (v0.37.0 in v3.22.0) and dependencies, which
# in this module would move versions the control plane is pinned at.
echo ">> building helm $helm_version"
# The -X flags are helm's own Makefile's: without them `helm version` is
# blank and `helm template` assumes Kubernetes 1.20 and refuses the chart.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=37"
done
(cd "$here" && CGO_ENABLED=0 GOBIN="$out" GOFLAGS= go install -trimpath -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version")

# kwok's stage configs make fake pods turn Running and Ready.
kwok_src=$(cd "$here" && GOFLAGS= go env GOMODCACHE)/sigs.k8s.io/kwok@$kwok_version
"$out/kubectl" kustomize "$kwok_src/kustomize/stage/fast" > "$out/kwok-stages.yaml"
echo "$stamp" > "$out/.stamp"
echo "control plane binaries built in $out"
