# The Dubbo hosts themselves.
#   apache-dubbo (Python): dubbo_health.dubbo, tested by python/tests/test_dubbo.py in test-python.
#   dubbo-rust: tests/dubbo-rust-host, the adapter that mounts HealthService in dubbo-rust 0.4's
#   triple server and a host serving it beside a dubbo-rust Greeter. A workspace of its own (its
#   own Cargo.lock): dubbo 0.4 brings hyper 0.14, http 0.2 and ~250 crates no other crate builds.
#
#   make test-dubbo-rust   its unit and doc tests, then the host against grpc-health-probe,
#                          the grpc-go client and a tonic client

TEST_TARGETS += test-dubbo-rust
LINT_TARGETS += lint-dubbo-rust
.PHONY: build-dubbo-rust test-dubbo-rust lint-dubbo-rust

DUBBO_RUST_MANIFEST := tests/dubbo-rust-host/Cargo.toml

build-dubbo-rust:
	$(CARGO) build --manifest-path $(DUBBO_RUST_MANIFEST) --locked

lint-dubbo-rust:
	$(CARGO) fmt --manifest-path $(DUBBO_RUST_MANIFEST) --check
	$(CARGO) clippy --manifest-path $(DUBBO_RUST_MANIFEST) --all-targets --locked -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --manifest-path $(DUBBO_RUST_MANIFEST) --no-deps --locked

test-dubbo-rust: interop-goclient
	command -v grpc-health-probe >/dev/null || { echo "grpc-health-probe missing: run ci/install-20-tonic.sh" >&2; exit 1; }
	$(CARGO) test --manifest-path $(DUBBO_RUST_MANIFEST) --locked

# The interop matrix serves from the dubbo-rust host too.
interop-hosts: build-dubbo-rust
