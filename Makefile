# Strata's build and test entry points. `make test` is the one command that
# runs the whole suite; .ci/run calls it.

GO        ?= go
TOOLS_DIR ?= $(HOME)/.cache/strata/bin
export STRATA_TOOLS_DIR := $(TOOLS_DIR)

.PHONY: all build test tools lint fmt vet staticcheck complexity test-unit fuzz bench proto proto-check clean image helm-test

all: build

build:
	$(GO) build ./...

## tools: build etcd, MinIO, staticcheck, Helm and kube-apiserver once into
## $(TOOLS_DIR) (from the Go module proxy; kube-apiserver takes ~15 minutes).
tools:
	bash scripts/tools.sh all

## test: everything CI checks — lint, then every test under the race detector
## against real etcd and MinIO processes. The end-to-end tests run after the
## other packages rather than beside them: they start many processes and
## measure pauses, and two cores shared with the rest of the suite make
## their timings, not the code, the thing under test.
test: tools lint
	$(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v '/e2e$$')
	$(GO) test -race -count=1 -timeout 30m ./e2e/

## test-unit: the fast packages only (no external processes).
test-unit:
	$(GO) test -race -count=1 ./pkg/segment/... ./pkg/cache/...

lint: fmt vet staticcheck complexity

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	@bash scripts/tools.sh staticcheck >/dev/null
	$(TOOLS_DIR)/staticcheck ./...

## complexity: no function may grow longer or more tangled than the worst
## one today. The limits only ever go down: lower them when you split the
## function at the limit (funlen counts body lines; gocognit is cognitive
## complexity). Generated code is exempt.
MAX_FUNC_LINES ?= 70
MAX_COGNITIVE  ?= 38
complexity:
	@bash scripts/tools.sh complexity >/dev/null
	$(TOOLS_DIR)/funlen -test=false -lines $(MAX_FUNC_LINES) ./...
	$(TOOLS_DIR)/gocognit -test=false -ignore '\.pb\.go$$' -over $(MAX_COGNITIVE) .

## fuzz: run each segment fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	@for f in $$($(GO) test ./pkg/segment -list 'Fuzz.*' | grep ^Fuzz); do \
		echo "== $$f"; $(GO) test ./pkg/segment -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: codec and commit benchmarks.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./pkg/segment ./pkg/meta ./pkg/cache

## proto: regenerate api/proto's Go code with the pinned generators.
## protoc comes from Debian: apt-get install protobuf-compiler.
PROTOS := $(wildcard api/proto/strata/v1/*.proto)
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	bash scripts/tools.sh protoc-gen >/dev/null
	PATH="$(TOOLS_DIR):$$PATH" protoc -I api/proto \
		--go_out=api/proto --go_opt=paths=source_relative \
		--go-grpc_out=api/proto --go-grpc_opt=paths=source_relative \
		$(PROTOS)

## proto-check: fail if the committed generated code is not what proto makes.
proto-check: proto
	git diff --exit-code -- api/proto

## image: the container image (all roles) and its -debug variant for `helm test`.
## Needs Docker with BuildKit; not run by `make test`.
IMAGE     ?= ghcr.io/strata-mq/strata
IMAGE_TAG ?= dev
image:
	docker build -t $(IMAGE):$(IMAGE_TAG) .
	docker build --target debug -t $(IMAGE):$(IMAGE_TAG)-debug .

## helm-test: the Helm chart's tests only (lint, template, install into a real
## kube-apiserver, wiring of the real binaries). `make test` runs them too.
helm-test:
	bash scripts/tools.sh helm >/dev/null
	bash scripts/tools.sh kube-apiserver >/dev/null
	$(GO) test -race -count=1 ./charts/strata/charttest/

clean:
	rm -rf strata-data
