# canary-router build, test and demo entry points.
SHELL := bash
# The release: one variable, in the file VERSION. The binary reports it, `make
# image` tags the image with it, and the manifests, the Helm chart's
# appVersion and the Dockerfile name the same tag (deploy/version_test.go
# holds them to it). Override for a build of your own: make image VERSION=v0.2.0-rc.1
VERSION ?= $(shell cat VERSION 2>/dev/null || echo dev)
# The same flags build the binary here and in the Dockerfile: static,
# reproducible paths, version stamped.
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# Every go command here (build, vet, unit tests, fuzzing, the e2e suites'
# own builds and the control plane's in test/tools/build.sh) compiles with
# the same settings, so they share one build cache: a package compiled by
# `make unit` is reused by `make build` and the suites, instead of being
# compiled again for a different cgo or path setting.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath
TOOLS_DIR := $(CURDIR)/_bin
export CANARY_ROUTER_BIN_DIR := $(TOOLS_DIR)

.PHONY: all build tools demo test unit e2e vet fmt clean

all: build

## build: the static canary-router binary in bin/
build:
	go build $(GO_BUILD_FLAGS) -o bin/canary-router ./cmd/canary-router

## tools: the test control plane (etcd, kube-apiserver, kube-controller-manager,
## kube-scheduler, kubectl, kwok), kubelet, helm and the Argo Rollouts controller
## built from Go modules into _bin/; skipped when up to date
tools:
	@bash test/tools/build.sh $(TOOLS_DIR) all

## control-plane: only what the demo runs (etcd, kube-apiserver, kube-controller-manager,
## kube-scheduler, kubectl, kwok) into _bin/; skipped when up to date
.PHONY: control-plane
control-plane:
	@bash test/tools/build.sh $(TOOLS_DIR) control-plane

.PHONY: image pause-image
# The image `make image` builds: override IMAGE_REPO for your registry
# (the manifests and the Helm chart name
# ghcr.io/canary-router/canary-router:$(VERSION)).
IMAGE_REPO ?= ghcr.io/canary-router/canary-router
IMAGE_TAG ?= $(VERSION)
IMAGE_ARCHIVE ?= bin/canary-router-image.tar
# The commit's time is the image's only timestamp, so every build of one
# commit has the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_TOOL := bin/image-tool
$(IMAGE_TOOL): $(wildcard test/tools/image/*.go) test/tools/image/go.mod
	@mkdir -p bin && cd test/tools/image && go build -o $(CURDIR)/$(IMAGE_TOOL) .

## image: an OCI image archive of bin/canary-router (empty base, one layer, user
## 65532:65532) in $(IMAGE_ARCHIVE), built in Go without a container engine; prints its digest
image: build $(IMAGE_TOOL)
	@$(IMAGE_TOOL) -binary bin/canary-router -path /canary-router -cmd serve \
	  -user 65532:65532 -port 9443/tcp -port 8081/tcp -tag $(IMAGE_REPO):$(IMAGE_TAG) \
	  -created $(SOURCE_DATE_EPOCH) \
	  -label org.opencontainers.image.title=canary-router \
	  -label "org.opencontainers.image.description=Percentage-based Istio control-plane canaries" \
	  -label org.opencontainers.image.version=$(VERSION) \
	  -label org.opencontainers.image.revision=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  -label org.opencontainers.image.source=https://github.com/canary-router/canary-router \
	  -o $(IMAGE_ARCHIVE)

## pause-image: the pod sandbox image for the real-node tests (test/node), from a tiny
## static Go binary, tagged registry.k8s.io/pause:3.6 (containerd 1.6's sandbox image)
pause-image: $(IMAGE_TOOL)
	@cd test/tools/image && go build -ldflags "-s -w" -o $(CURDIR)/bin/pause ./pause
	@$(IMAGE_TOOL) -binary bin/pause -path /pause -user 65535:65535 -tag registry.k8s.io/pause:3.6 \
	  -created $(SOURCE_DATE_EPOCH) -label org.opencontainers.image.title=pause -o bin/pause-image.tar

.PHONY: node-tools
## node-tools: containerd, runc and the CNI plugins for the real-node tier (test/node),
## from Debian (apt-get, as root or through sudo); skipped when already installed
node-tools:
	@bash test/tools/install-node.sh

.PHONY: chromium
## chromium: headless Chromium from Debian's `chromium` package, for the dashboard's
## browser test (test/dashboard); skipped when already on PATH
chromium:
	@bash test/tools/install-chromium.sh

.PHONY: prometheus
## prometheus: Prometheus and promtool for test/observability, from Debian's
## `prometheus` package, and tmux for test/rollout's watch test (apt-get, as root or
## through sudo); skipped when all three are on PATH
prometheus:
	@bash test/tools/install-prometheus.sh

## demo: a local control plane, a stand-in Istio with revisions stable and canary,
## the router installed from deploy/, a canary raised from 10 to 50 percent, then
## two self-driving rollouts (0 -> 5 -> 25 -> 50 -> 100, and a bad canary rolled
## back at 25; its PromQL gate uses Prometheus when on PATH, see `make prometheus`);
## DEMO_NONINTERACTIVE=1 exits at the end instead of waiting for Ctrl-C
demo: control-plane build
	@go build -o bin/demo ./test/demo
	@bin/demo

## test: everything CI runs: vet, unit tests, 10 s of each fuzz target, then end-to-end tests on a real control plane
test: tools prometheus chromium node-tools vet unit fuzz-short e2e

## unit: tests that need no control plane
unit:
	go test -short -count=1 ./...
	cd test/tools/image && go vet ./... && go test -count=1 ./...

# The suites run bin/canary-router, built once before any of them starts,
# so no suite compiles the router while its set-up clock runs.
TEST_BINARY_ENV := CANARY_ROUTER_TEST_BINARY=$(CURDIR)/bin/canary-router
## e2e: end-to-end tests against a real kube-apiserver, etcd, controller manager and kwok,
## the Helm chart (test/helm) and the router's image on a real kubelet node (test/node, as root);
## what tests save (the dashboard's screenshots) stays in bin/e2e-artifacts
e2e: tools prometheus chromium node-tools build
	@mkdir -p $(CURDIR)/bin/e2e-artifacts
	$(TEST_BINARY_ENV) go test -count=1 -timeout 25m -v -artifacts -outputdir $(CURDIR)/bin/e2e-artifacts ./test/...

.PHONY: manifests
## manifests: render deploy/install.yaml (the default overlay) with the built kubectl's kustomize
manifests: tools
	@{ echo "# canary-router install manifests, rendered by \`make manifests\` from deploy/overlays/default."; \
	  echo "# Do not edit: change deploy/base or an overlay and re-run \`make manifests\`."; \
	  echo "# Istio must be installed first: one Role lives in istio-system (see deploy/README.md)."; \
	  $(TOOLS_DIR)/kubectl kustomize deploy/overlays/default; } > deploy/install.yaml.tmp \
	  || { rm -f deploy/install.yaml.tmp; exit 1; }
	@mv deploy/install.yaml.tmp deploy/install.yaml
	@echo "rendered deploy/install.yaml"

.PHONY: bench
BENCH_OUT := bin/bench
BENCH_CMD := go test -run '^$$' -bench . -benchmem -count 5 ./webhook/ ./webhook/wire/ ./view/podview/
## bench: in-process benchmarks (admission, decoder, pod placement), router vs no-decode
## floor over HTTP/2 and TLS in each granularity with a 60 s pod-granularity drift run,
## and pod creation through a real control plane with and without the router in each granularity; writes the
## results and the load average into docs/performance.md (about 13 minutes; not part of `make test`)
bench: build tools
	@mkdir -p $(BENCH_OUT) && cat /proc/loadavg > $(BENCH_OUT)/loadavg-start
	go build -o bin/canary-router-load ./test/load
	set -o pipefail; $(BENCH_CMD) | tee $(BENCH_OUT)/bench.txt
	bin/canary-router-load compare -router bin/canary-router -md $(BENCH_OUT)/load.md
	bin/canary-router-load apiserver -router bin/canary-router -md $(BENCH_OUT)/e2e.md
	bin/canary-router-load podview -md $(BENCH_OUT)/podview.md
	bin/canary-router-load report -bench $(BENCH_OUT)/bench.txt -bench-cmd "$(BENCH_CMD)" \
	  -load $(BENCH_OUT)/load.md -e2e $(BENCH_OUT)/e2e.md -podview $(BENCH_OUT)/podview.md -loadavg-start $(BENCH_OUT)/loadavg-start -doc docs/performance.md

.PHONY: scale
SCALE_PODS ?= 10000,30000,100000
## scale: two router replicas, with the manifests' arguments and memory limit, on a control
## plane filled with SCALE_PODS pods (10 per Deployment, 20 Deployments per namespace): memory,
## sync time, apiserver traffic, admission p99 against a no-op webhook, leader failover; writes
## docs/performance.md's scale section and docs/images/scale.svg (about 25 minutes; not part of `make test`)
scale: build tools
	go build -o bin/canary-router-load ./test/load
	bin/canary-router-load scale -router bin/canary-router -pods $(SCALE_PODS) -doc docs/performance.md -svg docs/images/scale.svg

vet:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

.PHONY: fuzz-short
# Every fuzz target, as package:name. Their seed corpora (f.Add and
# testdata/fuzz) also run as plain tests in `make unit`.
FUZZ_TARGETS := ./webhook:FuzzAdmissionHTTP ./webhook/wire:FuzzDecodeReview \
  ./policy:FuzzParse ./policy:FuzzDecidePod ./policy:FuzzDecide
FUZZTIME ?= 10s
## fuzz-short: run each fuzz target for FUZZTIME (10s, about a minute in all); FUZZTIME=10m
## gives the long runs docs/reliability.md reports. A finding fails the target and is
## written to the package's testdata/fuzz, where it stays as a regression seed
##
## Go's fuzzing coordinator can end a run with a bare "context deadline
## exceeded" and no failing input when a worker does not report back before
## FUZZTIME runs out (seen on a loaded 2-core machine). That run found
## nothing, so it is run once more; a real finding ("Failing input written
## to") always fails.
fuzz-short:
	@mkdir -p bin; set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  for try in 1 2; do \
	    echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
	    if go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee bin/fuzz.log; \
	      [ "$${PIPESTATUS[0]}" = 0 ]; then break; fi; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' bin/fuzz.log && ! grep -q 'Failing input written' bin/fuzz.log; then \
	      echo "fuzz $$name: the coordinator timed out with no finding; running it once more"; continue; fi; \
	    exit 1; \
	  done; \
	done
