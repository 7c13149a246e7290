# Workspace-wide Rust checks and the core's proofs (unit, doc, loom, Miri, no_std).

LINT_TARGETS += lint-rust
TEST_TARGETS += test-rust test-nostd test-loom test-miri

.PHONY: lint-rust test-rust test-nostd test-loom test-miri bench-core

lint-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --locked

test-rust:
	$(CARGO) test --workspace --locked

# The core must build for targets that have no std (and, on thumbv7em, no 64-bit atomics), and
# its unit tests pass without the `std` feature (e.g. the drop guard that finishes a wake round
# when a waker panics, where `catch_unwind` is not available).
test-nostd:
	$(CARGO) build -p dubbo-health-core --locked --no-default-features --target x86_64-unknown-none
	$(CARGO) build -p dubbo-health-core --locked --no-default-features --target thumbv7em-none-eabihf
	$(CARGO) test -p dubbo-health-core --locked --no-default-features --lib

# loom gets its own target dir: --cfg loom must not rebuild (and clobber) the normal artifacts.
test-loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/loom \
		$(CARGO) test -p dubbo-health-core --locked --profile loom --test loom

test-miri:
	MIRIFLAGS=-Zmiri-strict-provenance RUSTFLAGS=-Zrandomize-layout CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/miri \
		$(CARGO) +nightly miri test -p dubbo-health-core --lib --locked

BENCH_TARGETS += bench-core
bench-core:
	$(CARGO) bench -p dubbo-health-core --locked --bench registry
