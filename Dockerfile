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
ARG VERSION=dev
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
COPY --from=build --chmod=0755 /src/bin/canary-router /canary-router
USER 65532:65532
EXPOSE 9443 8081
ENTRYPOINT ["/canary-router"]
CMD ["serve"]
