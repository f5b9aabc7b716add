#!/usr/bin/env bash
# Instructions per operation of bench rows, old against new, with valgrind's
# callgrind: the difference between a run of 10,000 and one of 60,000 ops,
# divided by 50,000 (start-up cancels out). Deterministic where wall clock on
# a shared machine is not; meaningful for rows whose work does not depend on
# scheduling (one actor, or many without contention).
#
#   scripts/bench-instructions.sh OLD_BENCH NEW_BENCH "GROUP ROWS" ...
#   e.g. scripts/bench-instructions.sh old/ctxstore-bench new/ctxstore-bench \
#          "snapshot async.1" "cycle async.64x1000"
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2")
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for spec in "$@"; do
  read -r group rows <<< "$spec"
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    totals=()
    for n in 10000 60000; do
      valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" \
        --only "$group" --rows "$rows" --reps 1 --max-ops "$n" \
        --max-ms 100000 > /dev/null 2>&1
      totals+=("$(grep -h '^totals:' "$tmp/out" | awk '{print $2}')")
    done
    echo "$group.$rows $which $(( (totals[1] - totals[0]) / 50000 ))"
  done
done
