#!/usr/bin/env bash
# Builds the external programs the tests run as real processes (MinIO, etcd,
# Helm, kube-apiserver)
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
HELM_VERSION=v3.22.0
FUNLEN_VERSION=v0.2.0
GOCOGNIT_VERSION=v1.3.0
KUBE_VERSION=v1.37.2

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
build_helm() { go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"; }
build_gocognit() { go_tool gocognit github.com/uudashr/gocognit/cmd/gocognit "$GOCOGNIT_VERSION"; }

# funlen is only an analyzer (github.com/ultraware/funlen); a throwaway
# module wraps it in a singlechecker whose -lines flag sets the limit.
build_funlen() {
  local out="$bin/funlen-$FUNLEN_VERSION"
  if [ ! -x "$out" ]; then
    log "building funlen $FUNLEN_VERSION"
    local mod; mod=$(mktemp -d)
    (
      cd "$mod"
      go mod init strata.local/funlen >/dev/null 2>&1
      cat >main.go <<'GO'
// Command funlen reports functions longer than -lines lines (comments
// inside a function count; its signature and closing brace do not).
package main

import (
	"github.com/ultraware/funlen"
	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/singlechecker"
)

func main() {
	var lines int
	a := &analysis.Analyzer{Name: "funlen", Doc: "reports functions longer than -lines lines"}
	a.Flags.IntVar(&lines, "lines", 70, "longest function body allowed, in lines")
	a.Run = func(p *analysis.Pass) (any, error) { return funlen.NewAnalyzer(lines, -1, false).Run(p) }
	singlechecker.Main(a)
}
GO
      go get "github.com/ultraware/funlen@$FUNLEN_VERSION" >/dev/null 2>&1
      go mod tidy >/dev/null 2>&1
      GOFLAGS=-buildvcs=false go build -o "$out.tmp" .
    )
    mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  ln -sf "$(basename "$out")" "$bin/funlen"
}

build_kube_apiserver() {
  local out="$bin/kube-apiserver-$KUBE_VERSION"
  if [ ! -x "$out" ]; then
    log "building kube-apiserver $KUBE_VERSION (about 15 minutes on 2 cores, once)"
    # k8s.io/kubernetes points every k8s.io/* staging module at ./staging/...
    # with replace directives, which go install refuses. A throwaway module
    # requires it and replaces each of those with the published v0.x.y module
    # of the same release.
    local mod; mod=$(mktemp -d)
    (
      cd "$mod"
      go mod init strata.local/kubebuild >/dev/null 2>&1
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
      local staging="v0.${KUBE_VERSION#v1.}"
      local args=()
      while read -r m; do
        args+=("-replace=$m=$m@$staging")
      done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod")
      [ "${#args[@]}" -gt 0 ] || { log "no staging replaces found in $gomod"; exit 1; }
      go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION" -tool=k8s.io/kubernetes/cmd/kube-apiserver "${args[@]}"
      go mod tidy >/dev/null 2>&1 || go mod tidy
      GOFLAGS=-buildvcs=false go build -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    )
    mv "$out.tmp" "$out"
    rm -rf "$mod"
  fi
  ln -sf "$(basename "$out")" "$bin/kube-apiserver"
}

case "${1:-all}" in
  minio) build_minio ;;
  etcd) build_etcd ;;
  staticcheck) build_staticcheck ;;
  complexity) build_funlen; build_gocognit ;;
  protoc-gen)
    # protoc itself comes from Debian's protobuf-compiler package.
    go_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
    go_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" ;;
  helm) build_helm ;;
  kube-apiserver) build_kube_apiserver ;;
  all) build_etcd; build_staticcheck; build_funlen; build_gocognit; build_minio; build_helm; build_kube_apiserver ;;
  *) echo "usage: $0 [all|minio|etcd|staticcheck|complexity|protoc-gen|helm|kube-apiserver]" >&2; exit 2 ;;
esac
echo "$bin"
