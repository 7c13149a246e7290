#!/usr/bin/env bash
# `make test-dist`: each package `make dist` built, installed the way a user installs it into
# a fresh place, then asked by grpc-health-probe:
#   - the wheel, into a fresh venv: `dubbo_health.serve` answers SERVING, then NOT_SERVING;
#   - the sdist, built by `pip install` offline (--no-index, the build backend from a local
#     wheelhouse, CARGO_NET_OFFLINE, every proxy pointing at a closed port), then the same;
#   - the C tarball, into a fresh prefix: c-api/examples/standalone.c built from the
#     pkg-config flags alone (shared: runs with no LD_LIBRARY_PATH; static: no libdubbo_health
#     NEEDED) and with CMake (both targets), each run and probed; the libraries are stripped
#     and gdb finds their line tables once the -dbg tarball is unpacked beside them; they
#     are the same bytes when built again;
#   - the crates: what they hold, and their README examples are the doc-tested ones.
# Run by make test-dist, which passes DIST, DIST_VERSION, C_DIST_NAME, WHEELHOUSE, SDIST_BUILD.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${DIST:?}" "${DIST_VERSION:?}" "${C_DIST_NAME:?}" "${WHEELHOUSE:?}" "${SDIST_BUILD:?}"
export PATH="$HOME/go/bin:$PATH"
GREETER=org.apache.dubbogo.samples.api.Greeter
C_WARN=(-std=c99 -Wall -Wextra -Wpedantic -Werror)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "test-dist: FAIL: $*" >&2; exit 1; }
size() { stat -c %s "$1"; }
probe() { grpc-health-probe -addr="127.0.0.1:$1" -connect-timeout=2s -rpc-timeout=2s "${@:2}" >/dev/null 2>&1; }
expect_probe() { # PORT EXIT [ARGS...]
    local rc=0
    probe "$1" "${@:3}" || rc=$?
    [ "$rc" = "$2" ] || fail "grpc-health-probe -addr=127.0.0.1:$1 ${*:3} exited $rc, not $2"
}

# --- Python --------------------------------------------------------------------------------

# The server a user writes: a registry, dubbo_health.serve on a free port. Prints the port
# and the file it imported; each stdin line sets the Greeter NOT_SERVING.
SERVE_PY='
import sys
import dubbo_health
from dubbo_health import Registry, ServingStatus

registry = Registry()
registry.set("'$GREETER'", ServingStatus.SERVING)
with dubbo_health.serve(registry, "127.0.0.1:0") as server:
    print(server.port, dubbo_health.__file__, flush=True)
    for _ in sys.stdin:
        registry.set("'$GREETER'", ServingStatus.NOT_SERVING)
        print("ok", flush=True)
'

# py_serve_and_probe WHERE PYTHON [ENV...]: runs SERVE_PY from /tmp with PYTHON, checks that
# dubbo_health came from under WHERE, probes it through SERVING and NOT_SERVING, stops it.
py_serve_and_probe() {
    local where=$1 python=$2 port file line rc pid out in
    shift 2
    coproc PYSRV { cd /tmp && exec env "$@" "$python" -c "$SERVE_PY"; }
    pid=$PYSRV_PID
    in=${PYSRV[1]}
    exec {out}<&"${PYSRV[0]}"   # a read end of our own: bash closes the coproc's when it exits
    read -r -t 60 port file <&"$out" || fail "the Python server from $where did not start"
    case "$file" in "$where"/*) ;; *) fail "dubbo_health was imported from $file, not from $where" ;; esac
    expect_probe "$port" 0
    expect_probe "$port" 0 -service "$GREETER"
    echo set >&"$in"
    read -r -t 10 line <&"$out" && [ "$line" = ok ] || fail "the Python server did not set NOT_SERVING"
    expect_probe "$port" 4 -service "$GREETER"
    exec {in}>&-
    rc=0; wait "$pid" || rc=$?
    exec {out}<&-
    [ "$rc" = 0 ] || fail "the Python server exited $rc"
    echo "test-dist: $where: dubbo_health.serve probed SERVING, then NOT_SERVING (4), exited 0"
}

wheels=("$DIST"/dubbo_health-"$DIST_VERSION"-cp39-abi3-*.whl)
[ ${#wheels[@]} = 1 ] && [ -f "${wheels[0]}" ] || fail "no single abi3 wheel in $DIST: ${wheels[*]}"
wheel=${wheels[0]}
unzip -Z1 "$wheel" >"$tmp/wheel.txt"
for f in dubbo_health/__init__.py dubbo_health/_native.pyi dubbo_health/py.typed dubbo_health/_native.abi3.so \
    "dubbo_health-$DIST_VERSION.dist-info/METADATA"; do
    grep -qx "$f" "$tmp/wheel.txt" || fail "the wheel lacks $f"
done
! grep -q '^tests/\|/tests/' "$tmp/wheel.txt" || fail "the wheel carries tests"
unzip -p "$wheel" "dubbo_health/_native.abi3.so" >"$tmp/native.so"
! readelf -S "$tmp/native.so" | grep -q '\.debug_info' || fail "the wheel's extension has debug info"

"${PYTHON_BOOTSTRAP:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --no-index "$wheel"
py_serve_and_probe "$tmp/venv" "$tmp/venv/bin/python"

sdist=$DIST/dubbo_health-$DIST_VERSION.tar.gz
[ -f "$sdist" ] || fail "no sdist $sdist"
tar -tzf "$sdist" >"$tmp/sdist.txt"
for f in pyproject.toml Cargo.toml Cargo.lock LICENSE core/src/lib.rs proto/proto/grpc/health/v1/health.proto \
    tonic-adapter/src/lib.rs python/src/lib.rs dubbo_health/__init__.py; do
    grep -qx "dubbo_health-$DIST_VERSION/$f" "$tmp/sdist.txt" || fail "the sdist lacks $f"
done
! grep -q '/target/\|/\.venv/\|/python/tests/' "$tmp/sdist.txt" || fail "the sdist carries build output or tests"
# `pip install` of the sdist into a fresh venv, offline. Cargo builds in a target dir of its
# own (kept between runs for the registry crates; ours are cleaned first, so they always
# compile from the sdist's sources) at opt-level 0, which is quicker and builds the same.
sdist_venv=$SDIST_BUILD/venv
sdist_target=$SDIST_BUILD/target
rm -rf "$sdist_venv"
"${PYTHON_BOOTSTRAP:-python3}" -m venv "$sdist_venv"
cargo clean --quiet --offline --release --target-dir "$sdist_target" \
    -p dubbo-health-core -p dubbo-health-proto -p dubbo-health-tonic -p dubbo-health-python
offline=(CARGO_NET_OFFLINE=true PIP_NO_INDEX=1 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9
    CARGO_TARGET_DIR="$sdist_target" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=0)
start=$(date +%s)
env "${offline[@]}" "$sdist_venv/bin/python" -m pip install -v --no-cache-dir --no-index --find-links "$WHEELHOUSE" \
    "$sdist" >"$tmp/sdist-build.log" 2>&1 || { tail -n 30 "$tmp/sdist-build.log"; fail "pip could not build and install the sdist offline"; }
compiled=$(grep -F "Compiling dubbo-health-python v$DIST_VERSION (" "$tmp/sdist-build.log" || true)
[ -n "$compiled" ] && [[ $compiled != *"($ROOT/"* ]] \
    || fail "pip did not compile the sdist's own sources: $(grep -E 'Compiling dubbo|Finished' "$tmp/sdist-build.log")"
echo "test-dist: pip built the sdist offline (maturin from the wheelhouse) in $(( $(date +%s) - start )) s"
py_serve_and_probe "$sdist_venv" "$sdist_venv/bin/python"

# --- C ---------------------------------------------------------------------------------------

tarball=$DIST/$C_DIST_NAME.tar.gz
dbg=$DIST/$C_DIST_NAME-dbg.tar.gz
prefix=$tmp/prefix
mkdir -p "$prefix"
tar -xzf "$tarball" -C "$prefix" --strip-components=1
(cd "$prefix" && find . \( -type f -o -type l \) | sort) >"$tmp/c-files.txt"
cat >"$tmp/c-want.txt" <<EOF
./include/dubbo_health.h
./lib/cmake/DubboHealth/DubboHealthConfig.cmake
./lib/cmake/DubboHealth/DubboHealthConfigVersion.cmake
./lib/libdubbo_health.a
./lib/libdubbo_health.so
./lib/libdubbo_health.so.${DIST_VERSION%%.*}
./lib/libdubbo_health.so.$DIST_VERSION
./lib/pkgconfig/dubbo-health-static.pc
./lib/pkgconfig/dubbo-health.pc
./share/doc/dubbo-health/LICENSE
./share/doc/dubbo-health/README.md
EOF
diff -u "$tmp/c-want.txt" "$tmp/c-files.txt" || fail "the C tarball holds other files than these"
so=$prefix/lib/libdubbo_health.so.$DIST_VERSION
a=$prefix/lib/libdubbo_health.a
! readelf -S "$so" | grep -q '\.debug_\|\.symtab' || fail "the shared library is not stripped"
readelf -S "$so" | grep -q '\.gnu_debuglink' || fail "the shared library has no .gnu_debuglink"
! readelf -S "$a" | grep -q '\.debug_' || fail "the static library has debug info"
# gdb: no line table in the stripped library alone; with the -dbg tarball unpacked into the
# same prefix it finds lib/.debug/ through the debuglink and knows the source lines.
gdb_line() { gdb -nx -batch -ex 'info line dh_registry_new' "$so" 2>&1; }
! gdb_line | grep -q 'registry\.rs' || fail "gdb found line info in the stripped library alone"
[ "$(tar -tzf "$dbg" | grep -v '/$')" = "$C_DIST_NAME/lib/.debug/libdubbo_health.so.$DIST_VERSION.debug" ] \
    || fail "the -dbg tarball holds other files than the debug info"
tar -xzf "$dbg" -C "$prefix" --strip-components=1
gdb_line | grep -q 'Line [0-9]* of "c-api/src/registry.rs"' || fail "gdb did not find the split debug info: $(gdb_line)"
echo "test-dist: C tarball $(size "$tarball") B, -dbg $(size "$dbg") B; installed libdubbo_health.so $(size "$so") B" \
    "(+ $(size "$prefix/lib/.debug/libdubbo_health.so.$DIST_VERSION.debug") B .debug), libdubbo_health.a $(size "$a") B;" \
    "gdb reads the split debug info"

# standalone_probe BINARY: runs c-api/examples/standalone on a free port and checks the watch
# output, grpc-health-probe's answers, the toggle on stdin and the graceful stop at EOF.
standalone_probe() {
    local bin=$1 line port pid out in rc
    coproc CSRV { exec env -u LD_LIBRARY_PATH "$bin" 127.0.0.1:0; }
    pid=$CSRV_PID
    in=${CSRV[1]}
    exec {out}<&"${CSRV[0]}"
    read -r -t 30 line <&"$out" || fail "$bin printed nothing"
    [ "$line" = "watch: $GREETER is SERVING" ] || fail "$bin: first line '$line'"
    read -r -t 30 line <&"$out" || fail "$bin did not start its server"
    port=${line##*port }
    [ "$line" = "serving grpc.health.v1.Health on port $port" ] || fail "$bin: '$line'"
    expect_probe "$port" 0
    expect_probe "$port" 0 -service "$GREETER"
    echo toggle >&"$in"
    read -r -t 10 line <&"$out" && [ "$line" = "watch: $GREETER is NOT_SERVING" ] \
        || fail "$bin: the watch did not see NOT_SERVING ('$line')"
    expect_probe "$port" 4 -service "$GREETER"
    exec {in}>&-
    timeout 30 cat <&"$out" >"$tmp/standalone.out"
    exec {out}<&-
    rc=0; wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "$bin exited $rc"
    printf 'watch: ended\nstopped\n' | diff -u - "$tmp/standalone.out" || fail "$bin: unexpected end of output"
    ! probe "$port" || fail "$bin still answers after it stopped"
    echo "test-dist: $(basename "$bin"): watch SERVING, probe 0, toggle -> NOT_SERVING (probe 4), EOF -> watch ended, exit 0"
}

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion dubbo-health)" = "$DIST_VERSION" ] || fail "pkg-config --modversion"
[ "$(realpath "$(pkg-config --variable=prefix dubbo-health)")" = "$(realpath "$prefix")" ] \
    || fail "the .pc does not find its prefix from its place: $(pkg-config --variable=prefix dubbo-health)"
example=c-api/examples/standalone.c
# The commands c-api/README.md gives, word for word.
# shellcheck disable=SC2046
cc "${C_WARN[@]}" "$example" $(pkg-config --cflags --libs dubbo-health) -o "$tmp/standalone-shared"
readelf -d "$tmp/standalone-shared" | grep -q 'NEEDED.*\[libdubbo_health\.so\.0\]' || fail "not linked to the shared library"
found=$(env -u LD_LIBRARY_PATH ldd "$tmp/standalone-shared" | sed -n 's/^\s*libdubbo_health\.so\.0 => \(.*\) (0x.*/\1/p')
[ -n "$found" ] && [ "$(realpath "$found")" = "$(realpath "$so")" ] \
    || fail "the loader does not find the prefix's library: $(ldd "$tmp/standalone-shared")"
standalone_probe "$tmp/standalone-shared"
# shellcheck disable=SC2046
cc "${C_WARN[@]}" "$example" $(pkg-config --static --cflags --libs dubbo-health-static) -o "$tmp/standalone-static"
! readelf -d "$tmp/standalone-static" | grep -q 'NEEDED.*libdubbo_health' || fail "the static build needs the shared library"
standalone_probe "$tmp/standalone-static"

mkdir -p "$tmp/cmake"
cat >"$tmp/cmake/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(standalone C)
find_package(DubboHealth $DIST_VERSION REQUIRED)
add_executable(standalone-cmake-shared "$ROOT/$example")
target_link_libraries(standalone-cmake-shared PRIVATE DubboHealth::dubbo_health)
add_executable(standalone-cmake-static "$ROOT/$example")
target_link_libraries(standalone-cmake-static PRIVATE DubboHealth::dubbo_health_static)
EOF
cmake -S "$tmp/cmake" -B "$tmp/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cmake/build" -j2 >/dev/null
standalone_probe "$tmp/cmake/build/standalone-cmake-shared"
standalone_probe "$tmp/cmake/build/standalone-cmake-static"

# The tarballs are reproducible: built again, they are the same bytes.
make --no-print-directory -s dist-c DIST="$tmp/dist-again" >/dev/null
cmp "$tarball" "$tmp/dist-again/$C_DIST_NAME.tar.gz" && cmp "$dbg" "$tmp/dist-again/$C_DIST_NAME-dbg.tar.gz" \
    || fail "the C tarballs differ when built again"
echo "test-dist: the C tarballs are the same bytes when built again"

# make install into a system prefix: no rpath in the .pc; C_STRIP=0 keeps the debug info.
make --no-print-directory -s install-c PREFIX=/usr DESTDIR="$tmp/sysroot" C_STRIP=0 >/dev/null
grep -qx 'prefix=/usr' "$tmp/sysroot/usr/lib/pkgconfig/dubbo-health.pc" || fail "system .pc prefix"
! grep -q 'rpath' "$tmp/sysroot/usr/lib/pkgconfig/dubbo-health.pc" || fail "the .pc of /usr sets an rpath"
readelf -S "$tmp/sysroot/usr/lib/libdubbo_health.so.$DIST_VERSION" | grep -q '\.debug_info' || fail "C_STRIP=0 stripped"
echo "test-dist: make install PREFIX=/usr: no rpath in dubbo-health.pc; C_STRIP=0 keeps debug info"

# --- crates ----------------------------------------------------------------------------------

for crate in dubbo-health-core dubbo-health-proto dubbo-health-tonic; do
    file=$DIST/$crate-$DIST_VERSION.crate
    [ -f "$file" ] || fail "no $file"
    tar -tzf "$file" >"$tmp/crate.txt"
    for f in Cargo.toml README.md LICENSE CHANGELOG.md src/lib.rs; do
        grep -qx "$crate-$DIST_VERSION/$f" "$tmp/crate.txt" || fail "$crate lacks $f"
    done
    [ "$(size "$file")" -lt 200000 ] || fail "$crate is $(size "$file") bytes"
    ! tar -xzOf "$file" "$crate-$DIST_VERSION/Cargo.toml" | grep -q '^path = "\.\.' || fail "$crate keeps a path dependency"
    echo "test-dist: $crate-$DIST_VERSION.crate $(size "$file") B, $(wc -l <"$tmp/crate.txt") files"
done
# A README example is the crate-level doc example of src/lib.rs (which `cargo test` runs).
# shellcheck disable=SC2016  # the backticks are Markdown
readme_is_doctest() {
    local readme=$1 lib=$2
    sed -n '/^```rust$/,/^```$/p' "$readme" | sed '1d;$d' >"$tmp/readme.rs"
    sed -n 's|^//! \{0,1\}||p' "$lib" | sed -n '/^```$/,/^```$/p' | sed '1d' | sed '/^```$/,$d' >"$tmp/doc.rs"
    [ -s "$tmp/readme.rs" ] && diff -u "$tmp/doc.rs" "$tmp/readme.rs" || fail "the example in $readme is not the doc test of $lib"
}
readme_is_doctest core/README.md core/src/lib.rs
readme_is_doctest proto/README.md proto/src/lib.rs
echo "test-dist: every package installed and answered"
