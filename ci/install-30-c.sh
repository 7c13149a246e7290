#!/usr/bin/env bash
# C ABI (c-api/): the pinned header generator, sanitizer/valgrind/fuzz tools, grpc++ for the
# example host, and grpc-health-probe for the server tests.
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.4
CARGO_FUZZ_VERSION=0.13.2
PROBE_VERSION=v0.4.61

apt-get install -y -qq valgrind \
    libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc pkg-config cmake >/dev/null

if ! cbindgen --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
    cargo install --quiet --locked cbindgen --version "$CBINDGEN_VERSION"
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if [ ! -x "$HOME/go/bin/grpc-health-probe" ]; then
    go install "github.com/grpc-ecosystem/grpc-health-probe@$PROBE_VERSION"
fi
