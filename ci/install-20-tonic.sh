#!/usr/bin/env bash
# tonic adapter / CLI: grpc-health-probe (the prober every check is compared with), grpcurl
# (server reflection is tested with it) and the grpc-go modules of the interop client in
# tests/go.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
PROBE_VERSION=v0.4.61
GRPCURL_VERSION=v1.9.4

need_go_install github.com/grpc-ecosystem/grpc-health-probe "$PROBE_VERSION"
need_go_install github.com/fullstorydev/grpcurl "$GRPCURL_VERSION" github.com/fullstorydev/grpcurl/cmd/grpcurl
need_go_mod tests/go
