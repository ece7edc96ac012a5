#!/usr/bin/env bash
# Builds from Go modules into $1 (default _bin), by group ($2, default all):
#   control-plane  etcd, kube-apiserver, kube-controller-manager,
#                  kube-scheduler, kubectl and kwok (what the demo runs)
#   node           the kubelet of the real-node tests (test/node)
#   helm           helm, for the chart's tests (deploy/, test/helm)
#   all            the three
# Idempotent: a stamp per group holds the hash of the pins, and a group is
# skipped when its binaries are present and the pins have not changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../../_bin}" && cd "${1:-$here/../../_bin}" && pwd)
group=${2:-all}
k8s_version=v1.37.2
kwok_version=v0.8.0
helm_version=v3.22.0

stamp=$( (cat "$here/go.mod" "$here/go.sum"; echo "$kwok_version $helm_version helm-ldflags-1") | sha256sum | cut -c1-16)
# up_to_date GROUP BIN...: the binaries exist and the group's stamp (or the
# single stamp of builds before groups) names these pins.
up_to_date() {
  local g=$1; shift
  for b in "$@"; do [ -x "$out/$b" ] || return 1; done
  [ "$(cat "$out/.stamp-$g" 2>/dev/null)" = "$stamp" ] || [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]
}
case "$group" in
  all) groups=(control-plane node helm) ;;
  control-plane|node|helm) groups=("$group") ;;
  *) echo "build.sh: unknown group $group (control-plane, node, helm or all)" >&2; exit 2 ;;
esac

ver_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${ver_pkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitTreeState=clean"
done

build() { # name package...: one go build, so links overlap compiles
  echo ">> building $* (first build takes several minutes; later ones are seconds)"
  (cd "$here" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "$ldflags" -o "$out/" "$@")
}

build_control_plane() {
  if up_to_date control-plane etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwok-stages.yaml; then
    echo "control plane binaries up to date in $out"; return
  fi
  # etcd's main package is go.etcd.io/etcd/server/v3, which go build names
  # "server": built on its own and renamed.
  echo ">> building etcd"
  (cd "$here" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "$ldflags" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  build k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
  echo ">> building kwok $kwok_version"
  (cd "$here" && CGO_ENABLED=0 GOBIN="$out" GOFLAGS= go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$kwok_version")
  # kwok's stage configs make fake pods turn Running and Ready.
  kwok_src=$(cd "$here" && GOFLAGS= go env GOMODCACHE)/sigs.k8s.io/kwok@$kwok_version
  "$out/kubectl" kustomize "$kwok_src/kustomize/stage/fast" > "$out/kwok-stages.yaml"
  echo "$stamp" > "$out/.stamp-control-plane"
}

build_node() {
  if up_to_date node kubelet; then echo "kubelet up to date in $out"; return; fi
  build k8s.io/kubernetes/cmd/kubelet
  echo "$stamp" > "$out/.stamp-node"
}

build_helm() {
  if up_to_date helm helm; then echo "helm up to date in $out"; return; fi
  # helm from its own module graph (a plain `go install`, like kwok): it
  # brings its own Kubernetes libraries (v0.37.0 in v3.22.0) and
  # dependencies, which in this module would move versions the control
  # plane is pinned at.
  echo ">> building helm $helm_version"
  # The -X flags are helm's own Makefile's: without them `helm version` is
  # blank and `helm template` assumes Kubernetes 1.20 and refuses the chart.
  local helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=37"
  done
  (cd "$here" && CGO_ENABLED=0 GOBIN="$out" GOFLAGS= go install -trimpath -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version")
  echo "$stamp" > "$out/.stamp-helm"
}

for g in "${groups[@]}"; do
  case "$g" in
    control-plane) build_control_plane ;;
    node) build_node ;;
    helm) build_helm ;;
  esac
done
echo "binaries ($group) ready in $out"
