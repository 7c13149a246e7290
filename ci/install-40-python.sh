#!/usr/bin/env bash
# Python bindings: build and lint tools, the gRPC peers the tests talk to, then the wheel
# itself built from this checkout (`pip install ./python`, as a user would).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$PWD/.venv/bin/python}
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}   # maturin reuses the workspace build

"$PY" -m pip install -q \
    maturin==1.16.0 \
    pytest pytest-timeout \
    grpcio==1.85.3 grpcio-health-checking==1.85.1 protobuf \
    mypy==2.4.1 ruff==0.17.6 types-grpcio types-protobuf typing-extensions \
    h2==4.3.0 \
    aiohttp==3.14.5   # h2: raw HTTP/2 requests in tests/test_grpcio.py (the same pin as tests/interop); aiohttp: examples/aiohttp_probes.py, run by tests/test_probes.py

if [ ! -x "$HOME/go/bin/grpc-health-probe" ]; then
    go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.61
fi

# With the dubbo extra: apache-dubbo 3.0.0b1, the host python/tests/test_dubbo.py serves from.
"$PY" -m pip install -q "./python[dubbo]"
mkdir -p "$CARGO_TARGET_DIR"
"$PY" - <<'PYEOF' > "$CARGO_TARGET_DIR/python-installed.stamp"
import dubbo_health
print(dubbo_health.__version__)
PYEOF
