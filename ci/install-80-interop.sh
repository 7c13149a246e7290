#!/usr/bin/env bash
# Interop suite peers: grpc-health-probe, the grpc-go client, Python grpcio/grpclib health clients,
# Node @grpc/grpc-js + grpc-health-check. Every one is required: a missing peer fails `make test-interop`.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
PY=${PYTHON:-$PWD/.venv/bin/python}

# grpc-health-probe, the prober Kubernetes users run.
need_go_install github.com/grpc-ecosystem/grpc-health-probe v0.4.61

# grpc-go client (Check / Watch / List / client-side health checking): its modules
# (`make test-interop` builds it).
need_go_mod tests/interop/goclient

# Python clients and the raw HTTP/2 library used for hostile input.
need_pip "$PY" -r tests/interop/requirements.txt

# Node client.
need_npm_ci tests/interop/node
