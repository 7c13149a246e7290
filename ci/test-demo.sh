#!/usr/bin/env bash
# `make test-demo`: the README's first command needs nothing but a Rust toolchain. `make demo`
# runs under `env -i` with an empty HOME and a PATH of rustup's proxies plus a linker and make
# (no Go, no Python venv, no grpc-health-probe), and must serve: grpc-health-probe, run from
# outside, gets SERVING; a `set` typed on the demo's stdin flips the Greeter to NOT_SERVING;
# SIGTERM drains it and `make demo` exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:$PATH"
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
GREETER=org.apache.dubbogo.samples.api.Greeter
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "test-demo: FAIL: $*" >&2
    echo "--- make demo stdout:" >&2; cat "$tmp/out" >&2 || true
    echo "--- make demo stderr:" >&2; tail -n 20 "$tmp/err" >&2 || true
    exit 1
}

# A bin dir with the few system tools a Rust toolchain itself needs (cc links, make runs).
mkdir -p "$tmp/bin" "$tmp/home"
for tool in make bash sh cc gcc ld as ar; do
    ln -s "$(command -v "$tool")" "$tmp/bin/$tool"
done
ln -s "$CARGO_HOME/bin/cargo" "$CARGO_HOME/bin/rustc" "$tmp/bin/"
BARE=(env -i HOME="$tmp/home" CARGO_HOME="$CARGO_HOME" RUSTUP_HOME="$RUSTUP_HOME"
    CARGO_TARGET_DIR="$TARGET" PATH="$tmp/bin")
for tool in go python3 pytest maturin grpc-health-probe node; do
    ! "${BARE[@]}" bash -c "command -v $tool" >/dev/null || fail "$tool is reachable in the bare environment"
done

mkfifo "$tmp/in"
"${BARE[@]}" make --no-print-directory demo DEMO_ADDR=127.0.0.1:0 PATH="$tmp/bin" PYTHON=/nonexistent \
    <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3>"$tmp/in"

addr=
for _ in $(seq 1 2400); do   # on a cold cache this is the first build of the CLI: up to 20 minutes
    addr=$(sed -n 's/^listening \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$tmp/err")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || fail "make demo exited before it listened"
    sleep 0.5
done
[ -n "$addr" ] || fail "make demo did not listen within 20 minutes"
grep -qF "dubbo-health is serving grpc.health.v1.Health on 127.0.0.1:0" "$tmp/out" || fail "no banner"

probe() { grpc-health-probe -addr="$addr" -connect-timeout=2s -rpc-timeout=2s "$@" >/dev/null 2>&1; }
probe || fail "grpc-health-probe of \"\" did not get SERVING"
probe -service "$GREETER" || fail "grpc-health-probe of $GREETER did not get SERVING"
echo "set $GREETER NOT_SERVING" >&3
for _ in $(seq 1 50); do grep -q '^ok' "$tmp/out" && break; sleep 0.1; done
grep -q '^ok' "$tmp/out" || fail "the demo did not answer the set command"
rc=0; probe -service "$GREETER" || rc=$?
[ "$rc" = 4 ] || fail "grpc-health-probe of $GREETER exited $rc after set NOT_SERVING, not 4"

# SIGTERM to the server (make's child): it drains and exits 0, and so does make.
server=$(ps -o pid= --ppid "$pid" | tr -d ' ')
[ -n "$server" ] && [ "$(ps -o comm= -p "$server")" = dubbo-health ] || fail "no dubbo-health child of make"
kill -TERM "$server"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "make demo exited $rc after SIGTERM"
exec 3>&-
echo "test-demo: make demo with only a Rust toolchain on PATH served $addr; probe SERVING, set NOT_SERVING → 4, SIGTERM → exit 0"
