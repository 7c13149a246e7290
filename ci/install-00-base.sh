#!/usr/bin/env bash
# Base toolchain: Rust components and targets, a Python venv with the test tools, Go bin dir on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
need_apt build-essential pkg-config cmake curl ca-certificates python3-venv shellcheck
need_rustup_component rustfmt clippy
need_rustup_target x86_64-unknown-none thumbv7em-none-eabihf
# Miri needs a nightly; keep the one a machine has (no surprise update mid-project).
if ! rustup toolchain list | grep -q '^nightly'; then
    deps_install "the nightly Rust toolchain"
    rustup toolchain install nightly --profile minimal
fi
need_rustup_component --toolchain nightly miri rust-src
if ! cargo +nightly miri setup 2>&1 | grep -q 'already available'; then
    deps_install "the Miri sysroot"   # (just built by `cargo miri setup` above)
fi
need_venv .venv
need_pip .venv/bin/python pytest pytest-timeout
