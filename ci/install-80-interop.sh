#!/usr/bin/env bash
# Interop suite peers: grpc-health-probe, the grpc-go client, Python grpcio/grpclib health clients,
# Node @grpc/grpc-js + grpc-health-check. Every one is required: a missing peer fails `make test-interop`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"
PY=${PYTHON:-$PWD/.venv/bin/python}

# grpc-health-probe, the prober Kubernetes users run.
command -v grpc-health-probe >/dev/null || go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.61

# grpc-go client (Check / Watch / List / client-side health checking).
(cd tests/interop/goclient && go build -o "$PWD/../bin/goclient" .)

# Python clients and the raw HTTP/2 library used for hostile input.
"$PY" -m pip install -q -r tests/interop/requirements.txt

# Node client.
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
