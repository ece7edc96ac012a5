# canary-router build, test and demo entry points.
SHELL := bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The same flags build the binary here and in the Dockerfile: static,
# reproducible paths, version stamped.
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
TOOLS_DIR := $(CURDIR)/_bin
export CANARY_ROUTER_BIN_DIR := $(TOOLS_DIR)

.PHONY: all build tools test unit e2e vet fmt clean

all: build

## build: the static canary-router binary in bin/
build:
	CGO_ENABLED=0 go build $(GO_BUILD_FLAGS) -o bin/canary-router ./cmd/canary-router

## tools: the test control plane (etcd, kube-apiserver, kube-controller-manager,
## kube-scheduler, kubectl, kwok) built from Go modules into _bin/; skipped when up to date
tools:
	@bash test/tools/build.sh $(TOOLS_DIR)

## test: everything CI runs: vet, unit tests, then end-to-end tests on a real control plane
test: tools vet unit e2e

## unit: tests that need no control plane
unit:
	go test -short -count=1 ./...

## e2e: end-to-end tests against a real kube-apiserver, etcd, controller manager and kwok
e2e: tools
	go test -count=1 -timeout 25m -v ./test/...

vet:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
