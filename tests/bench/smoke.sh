#!/usr/bin/env bash
# Smoke test of the load generator against `dubbo-health serve`: a one-second Check run, a
# List run, a 300-watcher fan-out with two flips and short probe churns (both probers) must all
# succeed with no failed call.
# Usage: smoke.sh DH_LOADGEN DUBBO_HEALTH
set -euo pipefail
loadgen=$1
server=$2
name=org.apache.dubbogo.samples.api.Greeter
py=${PYTHON:-python3}
pass=0
fail=0

expect() { # expect LABEL PYTHON-CONDITION JSON
    if "$py" -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$3"; then
        echo "ok   $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1: $3"
        fail=$((fail + 1))
    fi
}

srv=("$server" serve --addr 127.0.0.1:0 --control-stdin --set "$name=SERVING")
out=$(timeout 60 "$loadgen" check -c 2 -n 4 --warmup 0.2 --duration 1 --service "$name" -- "${srv[@]}") || out="{\"failed\": true}"
expect "check: answers, no errors, latency and server CPU measured" \
    "r['ok'] > 100 and r['errors'] == 0 and r['p99_us'] > 0 and r['server_cpu_per_op_us'] > 0" "$out"
out=$(timeout 60 "$loadgen" list -c 1 -n 2 --warmup 0.2 --duration 0.5 -- "${srv[@]}") || out="{\"failed\": true}"
expect "list: answers, no errors" "r['ok'] > 10 and r['errors'] == 0" "$out"
out=$(timeout 120 "$loadgen" watch-fanout -w 300 --rounds 2 --pause-ms 50 --service "$name" -- "${srv[@]}") || out="{\"failed\": true}"
expect "watch-fanout: every watcher got both flips, memory measured" \
    "r['connections'] == 3 and len(r['per_round']) == 2 and r['delivery_last_ms'] > 0 and r['server_rss_watching'] > 0" "$out"
for client in h2 tonic; do
    out=$(timeout 60 "$loadgen" churn --client "$client" -n 200 -c 4 --warmup 20 --service "$name" -- "${srv[@]}") || out="{\"failed\": true}"
    expect "churn ($client): 200 probes, every one answered SERVING, server CPU measured" \
        "r['connections'] == 200 and r['errors'] == 0 and r['server_cpu_per_conn_us'] > 0" "$out"
done
# The prober reads the answer: a Check of a name the server does not know fails every probe.
out=$(timeout 60 "$loadgen" churn -n 50 -c 2 --warmup 0 --service no.such.Service -- "${srv[@]}") || out="{\"failed\": true}"
expect "churn: probes of an unknown name count as errors" "r['errors'] == 50" "$out"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
