#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs the
# consumer project (tests/consumer) against it twice: with CMake's
# find_package(ctxstore) and with `g++ $(pkg-config --cflags --libs ctxstore)`.
# Prints "consumer_install: ok" only if both worked (pkg-config: skipped with
# a note when it is not installed).
# Usage: run.sh <ctxstore build dir> <cmake> <c++ compiler> <install libdir>
set -euo pipefail

build=$1 cmake=$2 cxx=$3 libdir=$4
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ctxstore_consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "consumer_install: FAILED ($1)"
  exit 1
}

"$cmake" --install "$build" --prefix "$tmp/prefix" >/dev/null \
  || fail "cmake --install"

# 1. CMake package. No build type: unoptimized, the fastest to compile.
"$cmake" -S "$src" -B "$tmp/build" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log"; fail "configure with find_package"; }
"$cmake" --build "$tmp/build" || fail "build with find_package"
out=$(timeout 60 "$tmp/build/consumer") || fail "run (find_package)"
echo "$out"
grep -qx "consumer: ok" <<<"$out" || fail "output (find_package)"

# 2. pkg-config.
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$tmp/prefix/$libdir/pkgconfig"
  flags=$(pkg-config --cflags --libs ctxstore) || fail "pkg-config ctxstore"
  echo "pkg-config --cflags --libs ctxstore: $flags"
  # shellcheck disable=SC2086 # the flags are words on purpose
  "$cxx" -std=c++17 "$src/main.cpp" -o "$tmp/consumer_pc" $flags \
    || fail "build with pkg-config"
  out=$(timeout 60 "$tmp/consumer_pc") || fail "run (pkg-config)"
  grep -qx "consumer: ok" <<<"$out" || fail "output (pkg-config)"
  echo "pkg-config build: ok"
else
  echo "note: pkg-config not installed; its check was skipped"
fi
echo "consumer_install: ok"
