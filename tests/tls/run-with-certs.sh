#!/bin/sh
# Runs a command with CTXSTORE_TEST_TLS_DIR naming a fresh directory of test
# certificates (make-certs.sh), removed afterwards: ctest's remote_over_tls
# repeats the remote specifications this way, over mutual TLS.
# Usage: run-with-certs.sh COMMAND [ARGS...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctxstore-tls.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
"$here/make-certs.sh" "$dir" >/dev/null
CTXSTORE_TEST_TLS_DIR=$dir "$@"
