# dubbo-health: one entry point for building, testing and benchmarking every door.
#   make demo   build and run `dubbo-health serve` on 127.0.0.1:20000 (needs only Rust)
#   make test   everything CI runs: lint, Rust unit/doc/loom/Miri/no_std, C, Python, interop;
#               first installs whatever is missing (make deps: ci/install-*.sh)
#   make dist   the packages: crates, Python wheel and sdist, C tarballs, in dist/
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

.PHONY: all test test-suites lint bench demo
all: test

include $(sort $(wildcard mk/*.mk))

# Installing comes first and alone (a sub-make), so no suite starts before its tools exist.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory test-suites

test-suites: lint $(TEST_TARGETS)
	@echo "make test: all suites passed"

lint: $(LINT_TARGETS)

bench: $(BENCH_TARGETS)
