# Multi-stage build of the same static binary `make build` produces, with
# the same flags (the build stage runs `make build`). No container engine
# runs on the development machines, so this file is not built in CI;
# `make build` is.
#
# The build stage runs on the builder's platform and cross-compiles for the
# target one (`docker buildx build --platform linux/amd64,linux/arm64`):
# the binary is pure Go, so no emulation is needed.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release, as in the file VERSION (make build reads it; this default
# is for the labels below, and deploy/version_test.go keeps it equal).
ARG VERSION=v0.1.0
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} make build VERSION=${VERSION}

# An empty base, like `make image` (test/tools/image): the filesystem is
# the one static binary, run as 65532:65532, which
# deploy/base/deployment.yaml runs as (runAsNonRoot, read-only root file
# system: the router writes no files; self-managed certificates live in
# memory, external ones are read from a mounted Secret). The router needs
# no CA bundle, /etc/passwd or time zone data: it only talks to the
# apiserver, with the service-account CA. test/tools/image checks that this
# stage and `make image` agree on user, entrypoint, cmd and ports.
FROM scratch
ARG VERSION=v0.1.0
ARG REVISION=unknown
# The labels `make image` sets (test/tools/image checks they agree).
LABEL org.opencontainers.image.title="canary-router" \
      org.opencontainers.image.description="Percentage-based Istio control-plane canaries" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/canary-router/canary-router"
COPY --from=build --chmod=0755 /src/bin/canary-router /canary-router
USER 65532:65532
EXPOSE 9443 8081
ENTRYPOINT ["/canary-router"]
CMD ["serve"]
