#!/usr/bin/env bash
# Configures and builds ctxstore in one build directory, then runs every test
# with ctest. Used by the README's test command and by .ci/run.
#   usage: scripts/test.sh [BUILD_DIR] [CMAKE_ARGS...]    (BUILD_DIR: build)
# JOBS sets the build's parallelism (default 2). Sanitizer options come from
# the environment (TSAN_OPTIONS, ASAN_OPTIONS, ...), see .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
if [ $# -gt 0 ]; then shift; fi
cmake -S . -B "$build_dir" "$@"
cmake --build "$build_dir" -j "${JOBS:-2}"
cd "$build_dir"
ctest --output-on-failure
