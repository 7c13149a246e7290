#!/usr/bin/env bash
# tonic adapter / CLI: grpc-health-probe (the prober every check is compared with), grpcurl
# (server reflection is tested with it) and the grpc-go modules of the interop client in
# tests/go.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBE_VERSION=v0.4.61
GRPCURL_VERSION=v1.9.4
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"

if [ ! -x "$HOME/go/bin/grpc-health-probe" ]; then
    go install "github.com/grpc-ecosystem/grpc-health-probe@$PROBE_VERSION"
fi
if [ ! -x "$HOME/go/bin/grpcurl" ]; then
    go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
fi
(cd tests/go && go mod download)
