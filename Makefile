# LruNet-Swift. Everything builds in release: debug builds of numeric code are
# far too slow to evaluate a data set. -enable-testing lets the test target
# reach internal kernels while sharing one build with the CLI and the bench.
# On CPUs with AVX2 and FMA the kernels are compiled for them (Package.swift
# stays portable, so packages depending on LruNet build anywhere).
SWIFT        ?= swift
ARCH_FLAGS   := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo "-Xswiftc -target-cpu -Xswiftc haswell")
BUILD_FLAGS  := -c release -Xswiftc -enable-testing $(ARCH_FLAGS)
BIN          := $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path 2>/dev/null)
PRETRAINED   ?= $(or $(LRUNET_PRETRAINED),../shared/pretrained)
APT_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev dataset-fashion-mnist
BASELINE     := Benchmarks/perf-baseline.json

.PHONY: all build deps demo test test-unit test-cli test-perf bench bench-baseline bench-compare train sweep clean

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

# Unit, parity and gradient tests; the command-line script (incl. a training smoke
# run and resume check); the performance regression check against the baseline.
test: build test-unit test-cli test-perf

test-unit:
	$(SWIFT) test $(BUILD_FLAGS) --skip-build

test-cli:
	LRUNET=$(BIN)/lrunet PRETRAINED=$(PRETRAINED) bash Tests/cli.sh

test-perf:
	$(BIN)/lrunet-bench --check $(BASELINE)

# The full benchmark: table on stdout, figures in Benchmarks/latest.json.
bench: build
	$(BIN)/lrunet-bench --json Benchmarks/latest.json

# Optional: ONNX Runtime on the same checkpoint, same machine, same run. Installs onnxruntime, onnx
# and numpy from PyPI into .build/compare-venv on first use; skips with a message if it cannot.
COMPARE_VENV := .build/compare-venv
COMPARE_CKPT := $(PRETRAINED)/fashionmnist-lru10-09346.safetensors
bench-compare: build
	@if [ ! -x $(COMPARE_VENV)/bin/python ] || ! $(COMPARE_VENV)/bin/python -c "import onnxruntime, onnx, numpy" 2>/dev/null; then \
	  echo "bench-compare: installing onnxruntime, onnx, numpy into $(COMPARE_VENV)"; \
	  (python3 -m venv $(COMPARE_VENV) && $(COMPARE_VENV)/bin/pip install -q onnxruntime onnx numpy) \
	    || { echo "bench-compare: skipped: could not install ONNX Runtime from PyPI (no Python venv or no network)"; exit 0; }; \
	fi; \
	if [ ! -f $(COMPARE_CKPT) ]; then echo "bench-compare: skipped: no checkpoint at $(COMPARE_CKPT)"; exit 0; fi; \
	echo "bench-compare: PyTorch is not measured: PyPI's torch wheel pulls several GB of CUDA libraries, and the CPU-only index is not reachable here"; \
	$(COMPARE_VENV)/bin/python Benchmarks/compare/ort_lrunet.py --weights $(COMPARE_CKPT) --lrunet $(BIN)/lrunet \
	  --threads $$(nproc) --json Benchmarks/compare-ort.json && \
	$(BIN)/lrunet-bench --compare Benchmarks/compare-ort.json --weights $(COMPARE_CKPT)

bench-baseline: build
	$(BIN)/lrunet-bench --write-baseline $(BASELINE)

# Issue 3's run: from scratch to >= 91% on Fashion-MNIST within 15 minutes.
train: build
	$(BIN)/lrunet train --dataset fashion-mnist --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2

# The paper's reuse experiment: N in {1, 2, 4, 6, 10} under one short schedule.
sweep: build
	$(BIN)/lrunet sweep --reuse 1,2,4,6,10 --epochs 2 --limit 20000 --no-augment --out runs/sweep

clean:
	rm -rf .build
