# LruNet-Swift. Everything builds in release: debug builds of numeric code are
# far too slow to evaluate a data set. -enable-testing lets the test target
# reach internal kernels while sharing one build with the CLI and the bench.
SWIFT       ?= swift
BUILD_FLAGS := -c release -Xswiftc -enable-testing
BIN         := $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path 2>/dev/null)
PRETRAINED  ?= $(or $(LRUNET_PRETRAINED),../shared/pretrained)
APT_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev dataset-fashion-mnist

.PHONY: all build deps demo test test-unit test-cli bench bench-baseline bench-check bench-compare sweep clean

all: build

build:
	$(SWIFT) build $(BUILD_FLAGS) --build-tests

# Debian packages the build, the tests and the data need (run as root).
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(APT_PACKAGES)

# The main job on a fresh machine: install, build, evaluate the authors' lru10
# and lru1 Fashion-MNIST checkpoints on the real test set, compare their costs.
demo: deps build
	$(BIN)/lrunet eval --weights $(PRETRAINED)/fashionmnist-lru10-09346.safetensors
	@echo
	$(BIN)/lrunet eval --weights $(PRETRAINED)/fashionmnist-lru1-09117.safetensors

test: build test-unit test-cli

test-unit:
	$(SWIFT) test $(BUILD_FLAGS) --skip-build

test-cli:
	LRUNET=$(BIN)/lrunet PRETRAINED=$(PRETRAINED) bash Tests/cli.sh

clean:
	rm -rf .build
