#!/usr/bin/env bash
# Paired A/B of two ctxstore-bench binaries on a noisy machine: for each of
# PAIRS rounds and each group, runs A then B (odd rounds) or B then A (even
# rounds), so that drift hits both alike; one JSON file per binary and round.
# Summarize with scripts/bench-ab-summary.py OUTDIR.
#
#   scripts/bench-ab.sh OLD_BENCH NEW_BENCH OUTDIR [PAIRS] [GROUPS...]
#   e.g. scripts/bench-ab.sh /tmp/old/build/tests/bench/ctxstore-bench \
#          build/tests/bench/ctxstore-bench /tmp/ab 6 snapshot cycle contention
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2") out=$3 pairs=${4:-6}
shift $(( $# < 4 ? $# : 4 ))
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(snapshot cycle contention held store)
mkdir -p "$out"
run() { "$1" --only "$2" --reps 3 --json >> "$3" 2>&1; }
for i in $(seq 1 "$pairs"); do
  for g in "${groups[@]}"; do
    if (( i % 2 )); then
      run "$old" "$g" "$out/old.$i.txt"; run "$new" "$g" "$out/new.$i.txt"
    else
      run "$new" "$g" "$out/new.$i.txt"; run "$old" "$g" "$out/old.$i.txt"
    fi
  done
done
echo "bench-ab: $pairs pairs in $out"
