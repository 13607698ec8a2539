# LruNet-Swift. Everything builds in release: debug builds of numeric code are
# far too slow to evaluate a data set. -enable-testing lets the test target
# reach internal kernels while sharing one build with the CLI and the bench.
# No CPU flags: the kernels pick AVX-512, AVX2 or the baseline at run time, so a
# package that depends on LruNet gets the same speed (Examples/Classify checks it).
SWIFT        ?= swift
BUILD_FLAGS  := -c release -Xswiftc -enable-testing
BIN          := $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path 2>/dev/null)
EXAMPLE      := Examples/Classify
REUSE_EXAMPLE := Examples/CustomReuse
# The authors' checkpoints as safetensors: $LRUNET_PRETRAINED or ../shared/pretrained, or, given
# AUTHORS=DIR (a folder of their .t7 files), imported from it into .build/pretrained.
AUTHORS      ?=
PRETRAINED   ?= $(if $(AUTHORS),.build/pretrained,$(or $(LRUNET_PRETRAINED),../shared/pretrained))
APT_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin
BASELINE     := Benchmarks/perf-baseline.json

.PHONY: all build build-mpi example deps demo test test-unit test-cli test-examples test-faults test-perf test-fuzz test-mpi test-asan test-tsan fuzz fuzz-build fuzz-merge bench bench-baseline bench-compare bench-ort bench-torch bench-ab compare docs train sweep study clean

all: build

build:
	$(SWIFT) build $(BUILD_FLAGS) --build-tests

# Debian packages the build, the tests and the data need (run as root).
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(APT_PACKAGES)

# The main job on a fresh machine: install, build, (import the authors' .t7 files,) evaluate
# their lru10 and lru1 Fashion-MNIST checkpoints on the real test set, compare their costs.
demo: deps build
	@if [ -n "$(AUTHORS)" ]; then $(BIN)/lrunet import $(AUTHORS)/*.t7 --out-dir $(PRETRAINED) || exit 1; fi
	@[ -f $(PRETRAINED)/fashionmnist-lru10-09346.safetensors ] || { echo "make demo: no checkpoints in $(PRETRAINED)."; \
	  echo "  The authors publish them as .t7 files in pretrained/ of okankop/CNN-layer-reuse (MIT licence):"; \
	  echo "  clone that repository and run make demo AUTHORS=path/to/CNN-layer-reuse/pretrained"; exit 1; }
	$(BIN)/lrunet eval --weights $(PRETRAINED)/fashionmnist-lru10-09346.safetensors
	@echo
	$(BIN)/lrunet eval --weights $(PRETRAINED)/fashionmnist-lru1-09117.safetensors

# Packages that import LruNet, built the way their users build: plain `swift build -c release`.
example:
	$(SWIFT) build -c release --package-path $(EXAMPLE)
	$(SWIFT) build -c release --package-path $(REUSE_EXAMPLE)

# Unit, parity and gradient tests (every kernel path the CPU has); the command-line script
# (incl. a training smoke run and resume check); the fault script; the performance regression
# check against the baseline, with the example consumer's speed against lrunet's; a short
# fuzzing pass with the replay of the corpus and of every past crash.
test: build example test-unit test-cli test-examples test-faults test-perf test-fuzz test-mpi

test-unit:
	$(SWIFT) test $(BUILD_FLAGS) --skip-build

test-cli:
	LRUNET=$(BIN)/lrunet CLASSIFY=$(EXAMPLE)/.build/release/Classify PRETRAINED=$(PRETRAINED) bash Tests/cli.sh

# Examples/CustomReuse: a reused network of its own description trained, saved, reloaded, evaluated.
test-examples:
	CUSTOM_REUSE=$(REUSE_EXAMPLE)/.build/release/CustomReuse bash Tests/examples.sh

# Kills at every step of a checkpoint save and at 20 random moments, a full disk, unwritable and
# corrupt checkpoints, non-finite numbers: nothing may be lost (Tests/faults.sh).
test-faults:
	LRUNET=$(BIN)/lrunet PRETRAINED=$(PRETRAINED) bash Tests/faults.sh

# Data-parallel training over Open MPI: the build with the MPI trait (in its own scratch
# directory, so the plain build stays as it is) and two processes on this machine (Tests/mpi.sh).
build-mpi:
	$(SWIFT) build -c release --traits MPI --scratch-path .build-mpi
test-mpi: build-mpi
	LRUNET=.build-mpi/release/lrunet PLAIN=$(BIN)/lrunet bash Tests/mpi.sh

test-perf:
	$(BIN)/lrunet-bench --check $(BASELINE) --consumer $(EXAMPLE)/.build/release/Classify --lrunet $(BIN)/lrunet \
	  --weights $(PRETRAINED)/fashionmnist-lru10-09346.safetensors

# The test suite under AddressSanitizer and ThreadSanitizer, each in its own scratch directory.
# The Swift runtime's crash reporter is off so the sanitizer reports instead.
SAN_FLAGS := -c release -Xswiftc -enable-testing
test-asan:
	$(SWIFT) build $(SAN_FLAGS) --sanitize=address --scratch-path .build-asan --build-tests
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  $(SWIFT) test $(SAN_FLAGS) --sanitize=address --scratch-path .build-asan --skip-build
test-tsan:
	$(SWIFT) build $(SAN_FLAGS) --sanitize=thread --scratch-path .build-tsan --build-tests
	SWIFT_BACKTRACE=enable=no TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 LRUNET_SKIP_FULL_TEST_SET=1 \
	  $(SWIFT) test $(SAN_FLAGS) --sanitize=thread --scratch-path .build-tsan --skip-build

# libFuzzer harnesses for every reader (Fuzz/): `make fuzz` runs each for FUZZ_SECONDS;
# `make test-fuzz` is the short pass CI runs, with a replay of the corpus and every past crash.
FUZZ_SECONDS ?= 600
fuzz-build:
	Fuzz/build.sh
fuzz: fuzz-build
	Fuzz/run.sh $(FUZZ_SECONDS)
test-fuzz: fuzz-build
	Fuzz/run.sh 20
# Folds what a long run found into the committed corpus, minimised by coverage.
fuzz-merge:
	for t in safetensors npy idx cifar checkpoint t7; do \
	  SWIFT_BACKTRACE=enable=no .build-fuzz/harness/fuzz-$$t -merge=1 -max_len=65536 Fuzz/corpus/$$t .build-fuzz/work/$$t; done

# The full benchmark: table on stdout, figures in Benchmarks/latest.json.
bench: build
	$(BIN)/lrunet-bench --json Benchmarks/latest.json

# Optional: ONNX Runtime and PyTorch on the same checkpoints, same machine, same run (lru10 and
# the four Fashion-MNIST baselines). Installs onnxruntime, onnx and numpy from PyPI and CPU-only
# torch from PyTorch's index (its own dependencies from PyPI; PyPI's torch would pull GBs of CUDA
# libraries) into .build/compare-venv on first use. A framework that cannot be installed is skipped.
COMPARE_VENV  := .build/compare-venv
COMPARE_PY    := $(COMPARE_VENV)/bin/python
COMPARE_CKPTS := fashionmnist-lru10-09346 fashionmnist-mobilenet-025x-09063 fashionmnist-mobilenetv2-025x-09343 \
                 fashionmnist-shufflenet-05x-09411 fashionmnist-shufflenetv2-025x-09342
# PyTorch's CPU wheel (PyPI's pulls GBs of CUDA libraries), its dependencies from PyPI.
INSTALL_TORCH = $(COMPARE_PY) -c "import torch" 2>/dev/null || { $(COMPARE_VENV)/bin/pip install -q --retries 1 --no-deps torch \
	  --index-url https://download.pytorch.org/whl/cpu && $(COMPARE_VENV)/bin/pip install -q filelock typing-extensions sympy \
	  networkx jinja2 fsspec; }
bench-compare: build
	@[ -x $(COMPARE_PY) ] || python3 -m venv $(COMPARE_VENV) || { echo "bench-compare: skipped: no Python venv"; exit 0; }; \
	$(COMPARE_PY) -c "import onnxruntime, onnx, numpy" 2>/dev/null || $(COMPARE_VENV)/bin/pip install -q onnxruntime onnx numpy \
	  || echo "bench-compare: ONNX Runtime could not be installed from PyPI; skipping it"; \
	$(INSTALL_TORCH) || echo "bench-compare: PyTorch (CPU wheel) could not be installed; skipping it"; \
	$(COMPARE_PY) -c "import numpy" 2>/dev/null || { echo "bench-compare: skipped: numpy unavailable"; exit 0; }; \
	for ckpt in $(COMPARE_CKPTS); do \
	  w=$(PRETRAINED)/$$ckpt.safetensors; [ -f $$w ] || { echo "bench-compare: no $$w"; continue; }; \
	  $(COMPARE_PY) Benchmarks/compare/frameworks.py --weights $$w --lrunet $(BIN)/lrunet --threads $$(nproc) \
	    --json Benchmarks/compare-$$ckpt.json && \
	  $(BIN)/lrunet-bench --compare Benchmarks/compare-$$ckpt.json --weights $$w || exit 1; \
	done

# Same-run ratios to ONNX Runtime: lrunet and ONNX Runtime alternating, each in a fresh process,
# ROUNDS rounds per checkpoint and batch size; prints the median paired ratio ours / theirs.
ROUNDS ?= 5
bench-ort: build
	@[ -x $(COMPARE_PY) ] || python3 -m venv $(COMPARE_VENV) || { echo "bench-ort: skipped: no Python venv"; exit 0; }; \
	$(COMPARE_PY) -c "import onnxruntime, onnx, numpy" 2>/dev/null || $(COMPARE_VENV)/bin/pip install -q onnxruntime onnx numpy \
	  || { echo "bench-ort: skipped: ONNX Runtime could not be installed from PyPI"; exit 0; }; \
	$(COMPARE_PY) Benchmarks/compare/interleaved.py --lrunet $(BIN)/lrunet --threads $$(nproc) --rounds $(ROUNDS) \
	  --weights $(COMPARE_CKPTS:%=$(PRETRAINED)/%.safetensors)

# The same pairing for a training step at batch 128 against eager PyTorch, on the four baselines.
bench-torch: build
	@[ -x $(COMPARE_PY) ] || python3 -m venv $(COMPARE_VENV) || { echo "bench-torch: skipped: no Python venv"; exit 0; }; \
	$(COMPARE_PY) -c "import numpy" 2>/dev/null || $(COMPARE_VENV)/bin/pip install -q numpy \
	  || { echo "bench-torch: skipped: numpy could not be installed from PyPI"; exit 0; }; \
	$(INSTALL_TORCH) || { echo "bench-torch: skipped: PyTorch (CPU wheel) could not be installed"; exit 0; }; \
	$(COMPARE_PY) Benchmarks/compare/interleaved.py --train --lrunet $(BIN)/lrunet --threads $$(nproc) --rounds $(ROUNDS) \
	  --weights $(filter-out %lru10-09346.safetensors,$(COMPARE_CKPTS:%=$(PRETRAINED)/%.safetensors))

# Same-run speed against an earlier commit: its lrunet, built from this clone's history, and
# this one alternate on the five Fashion-MNIST checkpoints (inference at 1, 64, 256; a training
# step at 128); prints each workload's median paired ratio new / old. AB="--rounds 11" passes options.
REF ?= HEAD~1
bench-ab: build
	@old=$$(REF_BUILD_FLAGS="$(BUILD_FLAGS)" bash Benchmarks/reference.sh $$(git rev-parse $(REF)) lrunet | tail -1) && \
	python3 Benchmarks/ab.py $(AB) --old $$old --new $(BIN)/lrunet --weights $(COMPARE_CKPTS:%=$(PRETRAINED)/%.safetensors)

# API documentation (DocC) as a static archive in .build/docs.
docs:
	mkdir -p .build/docs/symbol-graphs
	$(SWIFT) build -c release --target LruNet --scratch-path .build-docs \
	  -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc $(CURDIR)/.build/docs/symbol-graphs
	docc convert Sources/LruNet/LruNet.docc --additional-symbol-graph-dir .build/docs/symbol-graphs \
	  --output-path .build/docs/LruNet.doccarchive \
	  --fallback-display-name LruNet --fallback-bundle-identifier org.lrunet.LruNet --warnings-as-errors

# The paper's comparison table and picture: all checkpoints' sizes, accuracy and speed.
compare: build
	$(BIN)/lrunet compare --out docs/compare

bench-baseline: build
	$(BIN)/lrunet-bench --write-baseline $(BASELINE)

# Issue 3's run: from scratch to >= 91% on Fashion-MNIST within 15 minutes.
train: build
	$(BIN)/lrunet train --dataset fashion-mnist --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2

# The paper's reuse experiment: N in {1, 2, 4, 6, 10} under one short schedule.
sweep: build
	$(BIN)/lrunet sweep --reuse 1,2,4,6,10 --epochs 2 --limit 20000 --no-augment --out runs/sweep

# The reuse study (docs/reuse-study.md): N = 1 and 10, three seeds, the authors' recipe at 15
# epochs, then the budget trend; finished runs in docs/study are kept, so this only runs what is missing.
study: build
	$(BIN)/lrunet study --reuse 1,10 --seeds 1,2,3 --epochs 15 --recipe authors
	$(BIN)/lrunet study --reuse 1,10 --seeds 1 --epochs 10,20,40 --recipe authors

clean:
	rm -rf .build .build-asan .build-tsan .build-fuzz .build-docs .build-mpi $(EXAMPLE)/.build
