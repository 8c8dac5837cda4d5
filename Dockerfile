# syntax=docker/dockerfile:1
#
# One image for every role: /usr/local/bin holds coordinator, broker, proxy
# and the strata CLI; the Helm chart picks the binary per Deployment. The
# binaries are static (CGO_ENABLED=0), the final image is distroless and runs
# as the nonroot user (65532).
#
#   docker build -t strata:dev .                      # the server image
#   docker build --target debug -t strata:dev-debug . # + busybox, for helm test
#
# `make image` builds both.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/...

# The test image: the same binaries plus busybox (/busybox/sh), for the
# chart's `helm test` pod.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS debug
COPY --from=build /out/ /usr/local/bin/
ENV PATH=/usr/local/bin:/busybox
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/strata"]

# The server image (the default target, last in the file).
FROM gcr.io/distroless/static-debian12:nonroot AS strata
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# 7070 proxy, 7071 broker, 7072 coordinator, 9470 metrics.
EXPOSE 7070 7071 7072 9470
ENTRYPOINT ["/usr/local/bin/strata"]
