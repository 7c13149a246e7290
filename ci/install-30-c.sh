#!/usr/bin/env bash
# C ABI (c-api/): the pinned header generator, sanitizer/valgrind/fuzz tools, grpc++ for the
# example host, grpc-health-probe for the server tests, and binutils/gdb for the packaging
# (stripped libraries, split debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
CBINDGEN_VERSION=0.29.4
CARGO_FUZZ_VERSION=0.13.2
PROBE_VERSION=v0.4.61

need_apt valgrind \
    libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc pkg-config cmake binutils gdb

need_cargo_install cbindgen "$CBINDGEN_VERSION"
need_cargo_install cargo-fuzz "$CARGO_FUZZ_VERSION"
need_go_install github.com/grpc-ecosystem/grpc-health-probe "$PROBE_VERSION"
