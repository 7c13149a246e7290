#!/usr/bin/env bash
# `make deps`, which `make test` and `make dist` run first: every ci/install-*.sh in order.
# Each installs only what is missing (ci/lib.sh), so on a machine that has everything this
# takes a few seconds. Prints the time of each step.
#   DEPS_VERIFY=1 ci/deps.sh   install nothing; fail naming anything that would be installed
set -euo pipefail
cd "$(dirname "$0")/.."
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
start=$(date +%s%N)
for script in ci/install-*.sh; do
    t=$(date +%s%N)
    if ! bash "$script"; then
        echo "deps: $script failed (see above)" >&2
        exit 1
    fi
    printf 'deps: %-26s %6d ms\n' "$script" "$(ms "$t")"
done
printf 'deps: every step %d ms\n' "$(ms "$start")"
