#!/usr/bin/env bash
# `make test-deps`: the install steps are idempotent. On a machine where `make deps` has run, a
# second run under DEPS_VERIFY=1 (a step that would install anything fails, naming it) passes,
# leaves a snapshot of the installed state unchanged, and takes less than DEPS_MAX_SECONDS.
# First it checks that the checks can fail: each kind of step reports a missing thing.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${DEPS_MAX_SECONDS:-20}
PY=${PYTHON:-$PWD/.venv/bin/python}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "test-deps: FAIL: $*" >&2; exit 1; }

# expect CODE TEXT CMD...: CMD (run with ci/lib.sh sourced, DEPS_VERIFY=1) exits CODE and says TEXT.
expect() {
    local code=$1 text=$2 rc=0
    shift 2
    (. ci/lib.sh; DEPS_VERIFY=1; "$@") >"$tmp/out" 2>&1 || rc=$?
    [ "$rc" = "$code" ] || fail "'$*' exited $rc, not $code: $(cat "$tmp/out")"
    grep -qF -- "$text" "$tmp/out" || fail "'$*' did not say '$text': $(cat "$tmp/out")"
}
expect 3 "would install Debian packages: dubbo-health-no-such-package" \
    need_apt build-essential dubbo-health-no-such-package
# Not root, or DEPS_APT=0: the packages and the command to run, and no apt-get.
expect 1 "apt-get update && apt-get install -y dubbo-health-no-such-package" \
    env DEPS_APT=0 bash -c '. ci/lib.sh; need_apt build-essential dubbo-health-no-such-package'
expect 3 "would install Python packages into $PY: pytest==0.0.1 dubbo-health-no-such-package" \
    need_pip "$PY" pytest pytest==0.0.1 dubbo-health-no-such-package
printf '[project]\nname = "x"\n[project.optional-dependencies]\nextra = ["pytest", "dubbo-health-no-such-package>=1"]\n' >"$tmp/pyproject.toml"
expect 3 "would install Python packages into $PY: dubbo-health-no-such-package>=1" \
    need_pip "$PY" --extra "$tmp/pyproject.toml" extra
expect 3 "would install github.com/grpc-ecosystem/grpc-health-probe@v0.0.1" \
    need_go_install github.com/grpc-ecosystem/grpc-health-probe v0.0.1
expect 3 "would install cbindgen 0.0.1" need_cargo_install cbindgen 0.0.1
expect 3 "would install rustup targets riscv32imc-unknown-none-elf" \
    need_rustup_target x86_64-unknown-none riscv32imc-unknown-none-elf
mkdir -p "$tmp/gomod" "$tmp/npm/node_modules"
printf 'module example.com/m\n\ngo 1.21\n\nrequire example.com/dubbo-health-no-such-module v1.0.0\n' >"$tmp/gomod/go.mod"
expect 3 "would install Go modules of $tmp/gomod" need_go_mod "$tmp/gomod"
echo '{"lockfileVersion": 3, "packages": {}}' >"$tmp/npm/package-lock.json"
echo stale >"$tmp/npm/node_modules/.dubbo-health-lock.sha256"
expect 3 "would install npm packages of $tmp/npm" need_npm_ci "$tmp/npm"
echo "test-deps: every kind of step reports what it is missing"

# What the steps install, as they would see it.
snapshot() {
    dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n'
    rustup toolchain list
    local tc
    for tc in $(rustup toolchain list | cut -d' ' -f1); do
        rustup component list --installed --toolchain "$tc"
    done
    rustup target list --installed
    cargo install --list
    ls -l --time-style=+%s "$HOME/go/bin"
    "$PY" -m pip freeze --all
    ls -l --time-style=+%s "$TARGET/python-installed.stamp" "$TARGET/wheelhouse"
    ls -la --time-style=+%s tests/interop/node/node_modules
}
snapshot >"$tmp/before"
start=$(date +%s%N)
DEPS_VERIFY=1 bash ci/deps.sh || fail "a second run of the install steps wanted to install something (above)"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
snapshot >"$tmp/after"
diff -u "$tmp/before" "$tmp/after" || fail "a second run of the install steps changed what is installed"
[ "$ms" -lt $((MAX * 1000)) ] || fail "a second run of the install steps took $ms ms (at most ${MAX} s)"
echo "test-deps: a second run installed nothing, changed nothing, took $ms ms (limit ${MAX} s)"
