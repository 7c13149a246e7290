#!/usr/bin/env bash
# Probes the example host with grpc-health-probe, a Watch client and a client that sends
# any number of request messages.
#   test.sh BUILD_DIR     (grpc-health-probe must be on PATH)
set -euo pipefail
build=$1
probe=$(command -v grpc-health-probe) || { echo "grpc-health-probe is not installed (ci/install-30-c.sh)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill ${HOST_PID:-} ${WATCH_PID:-} 2>/dev/null || true; rm -rf "$tmp"' EXIT

coproc HOST { exec "$build/grpcpp-host" 127.0.0.1:0; }
read -r -t 20 word addr <&"${HOST[0]}"
[ "$word" = listening ] || { echo "host did not start"; exit 1; }
echo "host listening on $addr"

cmd() { # send a command line, expect "ok"
    echo "$1" >&"${HOST[1]}"
    read -r -t 10 reply <&"${HOST[0]}"
    [ "$reply" = ok ] || { echo "host: '$1' -> '$reply'"; exit 1; }
}
passed=0
probe() { # expected exit code, then probe arguments
    local want=$1; shift
    local got=0
    "$probe" -addr "$addr" -connect-timeout 5s -rpc-timeout 5s "$@" >"$tmp/probe.out" 2>&1 || got=$?
    if [ "$got" != "$want" ]; then
        echo "grpc-health-probe $* exited $got, expected $want:"; cat "$tmp/probe.out"; exit 1
    fi
    echo "ok: grpc-health-probe $* -> $got ($(head -n1 "$tmp/probe.out"))"
    passed=$((passed + 1))
}
cardinality() { # method, request messages, payload (hex), responses to read, expected line
    local got
    got=$("$build/cardinality-client" "$addr" "$1" "$2" "$3" "$4")
    [ "$got" = "$5" ] || { echo "$1 with $2 request message(s) [$3]: got '$got', expected '$5'"; exit 1; }
    echo "ok: $1 with $2 request message(s) [${3:0:16}] -> $got"
    passed=$((passed + 1))
}
wait_lines() { # file, count: wait (bounded) until the file has that many lines
    for _ in $(seq 100); do
        [ "$(wc -l <"$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for $2 lines in $1:"; cat "$1"; exit 1
}

# The host's own service answers beside the health service.
[ "$("$build/greeter-client" "$addr" dubbo)" = "Hello dubbo" ] || { echo "Greeter did not answer"; exit 1; }
echo "ok: Greeter answered"; passed=$((passed + 1))

# gRPC's rules through the C handlers (docs/bad-input.md, column "C handlers"): zero
# request messages, or two, on any method is UNIMPLEMENTED (12); malformed bytes and a name
# over 200 bytes are INVALID_ARGUMENT (3); one message is served, an empty one too (the
# name ""); an unknown method is UNIMPLEMENTED; a List of more than 100 names is
# RESOURCE_EXHAUSTED (8).
none="expected exactly one request message, got none"
more="expected exactly one request message, got more"
long_name="0ac901$(printf '78%.0s' $(seq 201))"   # HealthCheckRequest { service: 201 x "x" }
for method in Check Watch List; do
    cardinality "$method" 0 "" 1 "messages 0 code 12 $none"
    cardinality "$method" 2 "" 1 "messages 0 code 12 $more"
    cardinality "$method" 1 0a05ab 1 "messages 0 code 3 malformed request: truncated"
done
cardinality Check 1 "$long_name" 1 "messages 0 code 3 service name is 201 bytes; the limit is 200"
cardinality Watch 1 "$long_name" 1 "messages 0 code 3 service name is 201 bytes; the limit is 200"
cardinality Check 1 "" 2 "messages 1 code 0"   # read on: the call ends by itself
cardinality List 1 "" 2 "messages 1 code 0"
cardinality Watch 1 "" 1 "messages 1 code 1 CANCELLED"   # a Watch never ends: cancelled after one
cardinality Nope 1 "" 1 "messages 0 code 12"
for i in $(seq 100); do cmd "set many.$i SERVING"; done   # with "" and the Greeter: 102 names
cardinality List 1 "" 2 "messages 0 code 8 server health list exceeds maximum capacity: 101 services, limit 100"
for i in $(seq 100); do cmd "clear many.$i"; done

probe 0                                   # "" (the whole server) is SERVING
probe 0 -service dubbo.example.Greeter    # registered by the host
probe 3 -service no.such.Service          # NOT_FOUND

# A Watch sees the flip.
"$build/health-watch-client" "$addr" dubbo.example.Greeter 3 20 >"$tmp/watch.out" &
WATCH_PID=$!
wait_lines "$tmp/watch.out" 1
cmd "set dubbo.example.Greeter NOT_SERVING"
probe 4 -service dubbo.example.Greeter    # NOT_SERVING
wait_lines "$tmp/watch.out" 2
cmd "set dubbo.example.Greeter SERVING"
probe 0 -service dubbo.example.Greeter
wait "$WATCH_PID"; WATCH_PID=
expected=$'SERVING\nNOT_SERVING\nSERVING\nend 1'
[ "$(cat "$tmp/watch.out")" = "$expected" ] || { echo "watch saw:"; cat "$tmp/watch.out"; exit 1; }
echo "ok: Watch saw SERVING -> NOT_SERVING -> SERVING"; passed=$((passed + 1))

# Graceful drain: shutdown makes everything NOT_SERVING; an open Watch on an unknown name
# ends with OK when the host stops.
cmd "shutdown"
probe 4
"$build/health-watch-client" "$addr" later.Service 5 20 >"$tmp/watch2.out" &
WATCH_PID=$!
wait_lines "$tmp/watch2.out" 1
cmd "quit"
wait "$WATCH_PID"; WATCH_PID=
[ "$(cat "$tmp/watch2.out")" = $'SERVICE_UNKNOWN\nend OK' ] || { echo "watch2 saw:"; cat "$tmp/watch2.out"; exit 1; }
echo "ok: open Watch ended with OK on host stop"; passed=$((passed + 1))
host_pid=${HOST_PID:-}; [ -z "$host_pid" ] || wait "$host_pid" 2>/dev/null || true
echo "grpcpp-host: $passed passed, 0 failed"
