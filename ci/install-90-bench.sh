#!/usr/bin/env bash
# Benchmark tools: grpc C++ (headers, libs, codegen) for the grpc C++ anchor, h2load for the
# raw-HTTP/2 cross-check, matplotlib for the plot, and the Go modules of the grpc-go anchor.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc \
    nghttp2-client util-linux >/dev/null
PY=${PYTHON:-$PWD/.venv/bin/python}
if [ ! -x "$PY" ]; then
    python3 -m venv .venv
    PY=$PWD/.venv/bin/python
fi
"$PY" -m pip install -q matplotlib
(cd tests/bench/grpc-go-anchor && go mod download)
