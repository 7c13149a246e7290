# dubbo-health: one entry point for building, testing and benchmarking every door.
#   make demo   build and run `dubbo-health serve` on 127.0.0.1:20000 with a demo registry
#   make test   everything CI runs: lint, Rust unit/doc/loom/Miri/no_std, C, Python, interop
#   make bench  side-by-side benchmarks against the stock health services (long)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CARGO_TARGET_DIR ?= $(CURDIR)/target
export PATH := $(HOME)/go/bin:$(CURDIR)/.venv/bin:$(HOME)/.cargo/bin:$(PATH)
export PYTHON ?= $(CURDIR)/.venv/bin/python
CARGO ?= cargo

TEST_TARGETS :=
BENCH_TARGETS :=
LINT_TARGETS :=

.PHONY: all test lint bench demo
all: test

include $(sort $(wildcard mk/*.mk))

test: lint $(TEST_TARGETS)
	@echo "make test: all suites passed"

lint: $(LINT_TARGETS)

bench: $(BENCH_TARGETS)
