#!/usr/bin/env bash
# Builds from Go modules into $1 (default _bin), by group ($2, default all):
#   control-plane  etcd, kube-apiserver, kube-controller-manager,
#                  kube-scheduler, kubectl and kwok (what the demo runs)
#   node           the kubelet of the real-node tests (test/node)
#   helm           helm, for the chart's tests (deploy/, test/helm)
#   argo           the Argo Rollouts controller and its CRDs, for the
#                  migration's Rollout test (test/migrate)
#   all            the four
# Idempotent: a stamp per group holds the hash of the pins, and a group is
# skipped when its binaries are present and the pins have not changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/../../_bin}" && cd "${1:-$here/../../_bin}" && pwd)
group=${2:-all}
k8s_version=v1.37.2
kwok_version=v0.8.0
helm_version=v3.22.0
argo_version=v1.10.2
# The h1: hash of argo-rollouts' module zip (sum.golang.org's), checked
# before its copy is built: the copy is built by directory, which go.sum
# does not cover.
argo_sum=h1:sEPWsY+HUvnXj3Vh0ejb+GDTceQ/palqhFo2FVQJMk0=

stamp=$( (cat "$here/go.mod" "$here/go.sum"; echo "$kwok_version $helm_version helm-ldflags-1") | sha256sum | cut -c1-16)
# up_to_date GROUP BIN...: the binaries exist and the group's stamp (or the
# single stamp of builds before groups) names these pins.
up_to_date() {
  local g=$1; shift
  for b in "$@"; do [ -x "$out/$b" ] || return 1; done
  [ "$(cat "$out/.stamp-$g" 2>/dev/null)" = "$stamp" ] || [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]
}
# The argo group has pins of its own (test/tools/argo), so moving them
# rebuilds only it.
argo_stamp=$( (cat "$here/argo/go.mod" "$here/argo/go.sum"; echo "$argo_version $argo_sum argo-1") | sha256sum | cut -c1-16)
case "$group" in
  all) groups=(control-plane node helm argo) ;;
  control-plane|node|helm|argo) groups=("$group") ;;
  *) echo "build.sh: unknown group $group (control-plane, node, helm, argo or all)" >&2; exit 2 ;;
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

build_argo() {
  if [ -x "$out/rollouts-controller" ] && [ -f "$out/argo-rollouts-crds.yaml" ] &&
    [ "$(cat "$out/.stamp-argo" 2>/dev/null)" = "$argo_stamp" ]; then
    echo "Argo Rollouts controller up to date in $out"; return
  fi
  echo ">> building the Argo Rollouts controller $argo_version (first build takes several minutes)"
  # v1.10.2's go.mod says `go 1.26.10`: a patch release, which adds no
  # language or library API, but a toolchain older than it (with
  # GOTOOLCHAIN=local) refuses the module outright, and GOTOOLCHAIN=auto
  # would download another toolchain. So the controller is built from a
  # copy of the module whose go line is lowered to this module's, through
  # the replace in test/tools/argo/go.mod; every other dependency is pinned
  # there, as upstream's go.mod pins them (k8s.io/* at v0.34.5).
  local modcache src work
  modcache=$(cd "$here" && GOFLAGS= go env GOMODCACHE)
  src="$modcache/github.com/argoproj/argo-rollouts@$argo_version"
  if [ ! -f "$src/go.mod" ]; then
    # go mod download verifies the zip against sum.golang.org and unpacks
    # it, then fails on the go line; the unpacked module is what is used.
    (cd / && GOFLAGS= GOTOOLCHAIN=local go mod download "github.com/argoproj/argo-rollouts@$argo_version" 2>/dev/null) || true
  fi
  local ziphash="$modcache/cache/download/github.com/argoproj/argo-rollouts/@v/$argo_version.ziphash"
  if [ ! -f "$src/go.mod" ] || [ "$(cat "$ziphash" 2>/dev/null)" != "$argo_sum" ]; then
    echo "build.sh: github.com/argoproj/argo-rollouts@$argo_version missing from the module cache or not $argo_sum" >&2
    return 1
  fi
  work=$(mktemp -d)
  cp -r "$src" "$work/argo-rollouts"
  chmod -R u+w "$work/argo-rollouts"
  sed -i -e "s/^go .*/$(grep '^go ' "$here/argo/go.mod")/" -e '/^toolchain /d' "$work/argo-rollouts/go.mod"
  cp "$here/argo/go.mod" "$here/argo/go.sum" "$work/"
  local v=github.com/argoproj/argo-rollouts/utils/version
  (cd "$work" && CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local go build -trimpath \
    -ldflags "-s -w -X $v.version=${argo_version#v} -X $v.gitTreeState=clean" \
    -o "$out/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller) || { rm -rf "$work"; return 1; }
  rm -rf "$work"
  # Every CRD the controller watches: without one its informers never sync.
  local f first=1
  for f in rollout analysis-run analysis-template cluster-analysis-template experiment; do
    [ -n "$first" ] || echo "---"
    first=
    cat "$src/manifests/crds/$f-crd.yaml"
  done > "$out/argo-rollouts-crds.yaml"
  echo "$argo_stamp" > "$out/.stamp-argo"
}

for g in "${groups[@]}"; do
  case "$g" in
    control-plane) build_control_plane ;;
    node) build_node ;;
    helm) build_helm ;;
    argo) build_argo ;;
  esac
done
echo "binaries ($group) ready in $out"
