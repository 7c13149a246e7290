#!/usr/bin/env bash
# Benchmark tools: grpc C++ (headers, libs, codegen) for the grpc C++ anchor, h2load for the
# raw-HTTP/2 cross-check, matplotlib for the plot, and the Go modules of the grpc-go anchor.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
need_apt libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc \
    nghttp2-client util-linux
PY=${PYTHON:-$PWD/.venv/bin/python}
if [ ! -x "$PY" ]; then
    need_venv .venv
    PY=$PWD/.venv/bin/python
fi
need_pip "$PY" matplotlib
need_go_mod tests/bench/grpc-go-anchor
