#!/usr/bin/env bash
# Builds the external programs the tests run as real processes (MinIO, etcd)
# from the Go module proxy and caches them outside the repository, so that a
# second run on the same machine costs nothing. Prints the cache bin dir.
#
#   STRATA_TOOLS_DIR  where the binaries go (default $HOME/.cache/strata/bin)
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ETCD_VERSION=v3.7.3
STATICCHECK_VERSION=v0.8.2
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

bin=${STRATA_TOOLS_DIR:-$HOME/.cache/strata/bin}
mkdir -p "$bin"
log() { printf 'tools: %s\n' "$*" >&2; }

# Several test processes may ask for the tools at once; build one at a time.
exec 9>"$bin/.lock"
flock 9

build_etcd() {
  local out="$bin/etcd-$ETCD_VERSION"
  if [ ! -x "$out" ]; then
    log "building etcd $ETCD_VERSION (about a minute, once)"
    # etcd's own module has replace directives, so go install refuses it;
    # a throwaway module that requires the server builds it.
    local mod; mod=$(mktemp -d)
    (
      cd "$mod"
      go mod init strata.local/etcdbuild >/dev/null 2>&1
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
      GOFLAGS=-buildvcs=false go build -o "$out.tmp" go.etcd.io/etcd/server/v3
    )
    mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  ln -sf "$(basename "$out")" "$bin/etcd"
}

# go_tool NAME PACKAGE VERSION: go install a Go tool into the cache.
go_tool() {
  local name=$1 pkg=$2 version=$3
  local out="$bin/$name-$version"
  if [ ! -x "$out" ]; then
    log "building $name $version"
    local tmp; tmp=$(mktemp -d)
    GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$pkg@$version"
    mv "$tmp/$name" "$out"
    rm -rf "$tmp"
  fi
  ln -sf "$(basename "$out")" "$bin/$name"
}

build_minio() {
  # MinIO is AGPL: it runs as a separate process and is never imported.
  go_tool minio github.com/minio/minio "$MINIO_VERSION"
}
build_staticcheck() { go_tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"; }

case "${1:-all}" in
  minio) build_minio ;;
  etcd) build_etcd ;;
  staticcheck) build_staticcheck ;;
  protoc-gen)
    # protoc itself comes from Debian's protobuf-compiler package.
    go_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
    go_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" ;;
  all) build_etcd; build_staticcheck; build_minio ;;
  *) echo "usage: $0 [all|minio|etcd|staticcheck|protoc-gen]" >&2; exit 2 ;;
esac
echo "$bin"
