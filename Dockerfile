# Multi-stage build of the same static binary `make build` produces.
# No container engine runs on the development machines, so this file is
# not built in CI; `make build` is, with the same flags.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/canary-router /canary-router
USER 65532:65532
ENTRYPOINT ["/canary-router"]
CMD ["serve"]
