# shellcheck shell=bash
# Helpers for ci/install-*.sh (sourced). Each one checks first and installs only what is
# missing, so running a script again on a machine that has everything does nothing and
# takes a moment. `make deps` (ci/deps.sh) runs every script; `make test` runs it first.
#
#   DEPS_VERIFY=1   install nothing: a step that would install fails (exit 3), naming what.
#                   `make test-deps` uses it to prove a second run does nothing.
#   DEPS_APT=0      never run apt-get, even as root: name the missing packages and stop.
#
# Installs are said on stderr as "deps: installing ..."; a step with nothing to do is silent.

export DEBIAN_FRONTEND=noninteractive
export PATH="$HOME/go/bin:/usr/local/go/bin:$HOME/.cargo/bin:$PATH"
DEPS_VERIFY=${DEPS_VERIFY:-0}
DEPS_APT=${DEPS_APT:-1}
DEPS_GOBIN=${DEPS_GOBIN:-$HOME/go/bin}

# deps_install WHAT...: about to install WHAT (fails instead under DEPS_VERIFY=1).
deps_install() {
    if [ "$DEPS_VERIFY" = 1 ]; then
        echo "deps: would install $* (DEPS_VERIFY=1: a second run must install nothing)" >&2
        exit 3
    fi
    echo "deps: installing $*" >&2
}

# need_apt PACKAGE...: Debian packages, installed with apt-get when running as root.
need_apt() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null; then
        echo "deps: not a Debian system: make sure these (or their equivalents) are installed: $*" >&2
        return 0
    fi
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || [ "$DEPS_APT" = 0 ]; then
        echo "deps: missing Debian packages: ${missing[*]}" >&2
        echo "deps: install them as root, then run make again:" >&2
        echo "    apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    deps_install "Debian packages: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# need_rustup_component [--toolchain T] COMPONENT...
need_rustup_component() {
    local tc=() missing=() c installed
    if [ "${1:-}" = --toolchain ]; then tc=(--toolchain "$2"); shift 2; fi
    installed=$(rustup component list --installed "${tc[@]}")
    for c in "$@"; do
        grep -qE "^$c(-|$)" <<<"$installed" || missing+=("$c")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    deps_install "rustup components ${tc[*]} ${missing[*]}"
    rustup component add "${tc[@]}" "${missing[@]}"
}

# need_rustup_target TARGET...
need_rustup_target() {
    local missing=() t installed
    installed=$(rustup target list --installed)
    for t in "$@"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    deps_install "rustup targets ${missing[*]}"
    rustup target add "${missing[@]}"
}

# need_cargo_install CRATE VERSION: a binary crate at exactly VERSION (`cargo install --locked`).
need_cargo_install() {
    cargo install --list | grep -qx "$1 v$2:" && return 0
    deps_install "$1 $2 (cargo install)"
    cargo install --quiet --locked "$1" --version "$2"
}

# need_go_install MODULE VERSION [PACKAGE]: `go install PACKAGE@VERSION` into ~/go/bin unless
# the binary there was built from MODULE at VERSION. PACKAGE defaults to MODULE.
need_go_install() {
    local module=$1 version=$2 pkg=${3:-$1}
    local bin="$DEPS_GOBIN/${pkg##*/}"
    if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -qP "^\tmod\t\Q$module\E\t\Q$version\E(\t|$)"; then
        return 0
    fi
    deps_install "$pkg@$version (go install)"
    GOBIN="$DEPS_GOBIN" go install "$pkg@$version"
}

# need_go_mod DIR: the modules of DIR/go.mod in the Go module cache.
need_go_mod() {
    (cd "$1" && GOPROXY=off GOFLAGS=-mod=mod go mod download) >/dev/null 2>&1 && return 0
    deps_install "Go modules of $1"
    (cd "$1" && go mod download)
}

# need_venv DIR: a Python virtual environment (made with $PYTHON_BOOTSTRAP, default python3).
need_venv() {
    [ -x "$1/bin/python" ] && return 0
    deps_install "a Python venv in $1"
    "${PYTHON_BOOTSTRAP:-python3}" -m venv "$1"
    "$1/bin/python" -m pip install -q --upgrade pip
}

# need_pip PYTHON REQUIREMENT...: pip requirements ("name", "name==1.2", "name>=1") that the
# environment of PYTHON does not satisfy yet; `-r FILE` reads a requirements file.
need_pip() {
    local py=$1 out missing=()
    shift
    out=$("$py" "$(dirname "${BASH_SOURCE[0]}")/pip-missing.py" "$@")
    [ -z "$out" ] && return 0
    mapfile -t missing <<<"$out"
    deps_install "Python packages into $py: ${missing[*]}"
    "$py" -m pip install -q "${missing[@]}"
}

# need_npm_ci DIR: DIR/node_modules as DIR/package-lock.json says (npm ci), unless the last
# `npm ci` here was of this very lock file.
need_npm_ci() {
    local stamp="$1/node_modules/.dubbo-health-lock.sha256" sum
    sum=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 0
    deps_install "npm packages of $1 (npm ci)"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
}
