#!/usr/bin/env bash
# Python bindings: build and lint tools, the gRPC peers the tests talk to, then the wheel
# itself built from this checkout unless it is installed already (`make python-install`
# rebuilds it when a source changes). It is built with the venv's maturin, as
# `make python-install` and `make dist` build it, so the three share one cargo build; a
# user's `pip install ./python` (an isolated build) is what `make test-dist` runs on the sdist.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
PY=${PYTHON:-$PWD/.venv/bin/python}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}   # maturin reuses the workspace build

need_pip "$PY" \
    maturin==1.16.0 \
    pytest pytest-timeout \
    grpcio==1.85.3 grpcio-health-checking==1.85.1 protobuf \
    mypy==2.4.1 ruff==0.17.6 types-grpcio types-protobuf typing-extensions \
    h2==4.3.0 \
    aiohttp==3.14.5   # h2: raw HTTP/2 requests in tests/test_grpcio.py (the same pin as tests/interop); aiohttp: examples/aiohttp_probes.py, run by tests/test_probes.py

need_go_install github.com/grpc-ecosystem/grpc-health-probe v0.4.61

# The dubbo extra of the package (apache-dubbo 3.0.0b1), for the host python/tests/test_dubbo.py
# serves from: read from python/pyproject.toml, so it follows the package's own pin.
need_pip "$PY" --extra python/pyproject.toml dubbo

STAMP=$CARGO_TARGET_DIR/python-installed.stamp
if [ ! -f "$STAMP" ] || ! "$PY" -c 'import dubbo_health' 2>/dev/null; then
    deps_install "the dubbo-health wheel into $PY (pip install ./python: compiles Rust for a few minutes)"
    PATH="$(dirname "$PY"):$PATH" "$PY" -m pip install -q --no-build-isolation ./python
    mkdir -p "$CARGO_TARGET_DIR"
    "$PY" -c 'import dubbo_health; print(dubbo_health.__version__)' >"$STAMP"
fi

# `make dist` checks that the sdist builds offline: the build backend in a local wheelhouse.
WHEELHOUSE=$CARGO_TARGET_DIR/wheelhouse
if ! compgen -G "$WHEELHOUSE/maturin-1.16.0-*.whl" >/dev/null; then
    deps_install "maturin 1.16.0 into the wheelhouse $WHEELHOUSE"
    "$PY" -m pip download -q -d "$WHEELHOUSE" maturin==1.16.0
fi
