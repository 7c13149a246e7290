#!/usr/bin/env bash
# Base toolchain: Rust components and targets, a Python venv with the test tools, Go bin dir on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
apt-get install -y -qq build-essential pkg-config cmake curl ca-certificates python3-venv >/dev/null
rustup component add rustfmt clippy
rustup target add x86_64-unknown-none thumbv7em-none-eabihf
# Miri needs a nightly; keep the one a machine has (no surprise update mid-project).
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component add --toolchain nightly miri rust-src
cargo +nightly miri setup
PY=${PYTHON_BOOTSTRAP:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q pytest pytest-timeout
