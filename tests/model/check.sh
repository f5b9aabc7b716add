#!/usr/bin/env bash
# Verifies the owner protocol model (owner.pml, see README.md) with spin:
# safety (assertions and invalid end states, i.e. deadlocks) and liveness
# (the LTL property `answered`, with weak fairness) in a few bounded
# configurations, then checks that spin finds the bug planted by each mutant
# macro. One line per check; exits nonzero on any failure. Works from any
# directory; spin's pan* files go to a temporary directory.
#   usage: tests/model/check.sh            (SPIN=..., CC=... to override)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
spin=${SPIN:-spin}
cc=${CC:-}
if [ -z "$cc" ]; then
  for candidate in cc gcc clang; do
    if command -v "$candidate" >/dev/null; then cc=$candidate; break; fi
  done
fi
command -v "$spin" >/dev/null || { echo "check.sh: spin not found" >&2; exit 2; }
[ -n "$cc" ] || { echo "check.sh: no C compiler (cc, gcc, clang)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/owner-model.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/owner.pml" "$work/"
cd "$work"

# Bounded configurations (see README.md, "Bounds").
small=(-DNC=2 -DBUDGET=2) # 2 clients, 2 operations each: deep histories
wide=(-DNC=3 -DBUDGET=1)  # 3 clients, 1 operation each: 2 waiters queued
# pan: compressed states (COLLAPSE), bounded memory, search depth. -O1: gcc
# takes longer at -O2 than the search gains; mutants stop early, so -O0.
pan_cflags="-DCOLLAPSE -DMEMLIM=2048 -DNFAIR=3"
pan_depth=10000

failures=0
# run NAME EXPECT MODE SPIN_DEFINES...
#   EXPECT: "pass", or a fixed string that spin's error line must contain
#   MODE:   safety (assertions + invalid end states) | liveness (ltl, -a -f)
run() {
  local name=$1 expect=$2 mode=$3
  shift 3
  local defs="$*" cflags="$pan_cflags -O1" run_flags="-m$pan_depth"
  if [ "$expect" != pass ]; then cflags="$pan_cflags -O0"; fi
  if [ "$mode" = liveness ]; then
    defs="$defs -DLIVENESS"
    run_flags="$run_flags -a -f"
  else
    cflags="$cflags -DSAFETY"
  fi
  local log="$work/$name.log" start=$SECONDS
  # shellcheck disable=SC2086 # the defines are separate words
  if ! "$spin" $defs -a owner.pml >"$log" 2>&1 \
    || ! "$cc" $cflags -o pan pan.c >>"$log" 2>&1; then
    echo "FAIL $name: spin or cc failed"; sed 's/^/  /' "$log"
    failures=$((failures + 1)); return
  fi
  # shellcheck disable=SC2086 # the flags are separate words
  ./pan $run_flags >>"$log" 2>&1 || true
  local errors states verdict
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log" | tail -n 1)
  if grep -q "Search not completed\|out of memory\|max search depth too small" "$log" \
    && [ "$errors" = 0 ]; then
    verdict="FAIL (search incomplete)"
  elif [ "$expect" = pass ]; then
    if [ "$errors" = 0 ]; then verdict=PASS; else verdict="FAIL (errors: $errors)"; fi
  else
    if [ "${errors:-0}" != 0 ] && grep '^pan:[0-9]' "$log" | grep -qF -- "$expect"; then
      verdict="PASS (found: $expect)"
    else
      verdict="FAIL (the planted bug was not found: expected '$expect')"
    fi
  fi
  printf '%-34s %s  [%s states, %ds]\n' "$name" "$verdict" "${states:-?}" \
    $((SECONDS - start))
  case $verdict in
    PASS*) ;;
    *) failures=$((failures + 1)); grep -E "^pan|error" "$log" | head -n 5 | sed 's/^/  /' ;;
  esac
}

# -- the model -------------------------------------------------------------------
run safety-small           pass safety   "${small[@]}"
run safety-small-remote    pass safety   "${small[@]}" -DREMOTE
run safety-remote-nested   pass safety   "${small[@]}" -DREMOTE -DCLIENT_SAME_TOKEN_IS_NESTED
run safety-wide            pass safety   "${wide[@]}"
run safety-wide-maxwaiters pass safety   "${wide[@]}" -DMAXW=1
run liveness-small         pass liveness "${small[@]}"
run liveness-small-nolease pass liveness "${small[@]}" -DLEASE=0
run liveness-wide-nolease  pass liveness "${wide[@]}" -DLEASE=0

# -- mutants: each planted bug must be found ------------------------------------------
run mutant-no-fencing      "(ended[g]&(1<<tok))" safety "${small[@]}" -DBUG_NO_FENCING
run mutant-lifo            "qtick[j]>=qtick[pick]" safety "${wide[@]}" -DBUG_LIFO
run mutant-keep-timed-out  "assertion violated pending" safety "${small[@]}" -DBUG_KEEP_TIMED_OUT
run mutant-down-no-grant   "assertion violated ((qn==0)||(token!=0))" safety "${small[@]}" -DBUG_DOWN_NO_GRANT
run mutant-lose-waiters    "invalid end state" safety "${small[@]}" -DBUG_LOSE_WAITERS
run mutant-lose-waiters-ltl "acceptance cycle" liveness "${small[@]}" -DBUG_LOSE_WAITERS
run mutant-retire-at-once  "retiring)&& !(present)" safety "${small[@]}" -DBUG_RETIRE_AT_ONCE

# Tokens restarting with each owner (the code before counters::last_token):
# the async client takes an equal token for a nested level, so a remote
# holder's revoked session committed into the owner created after an erase.
run mutant-owner-tokens    "(rg==og))" safety "${small[@]}" -DREMOTE \
  -DCLIENT_SAME_TOKEN_IS_NESTED -DBUG_OWNER_TOKENS

if [ "$failures" -ne 0 ]; then
  echo "owner model: $failures check(s) FAILED"
  exit 1
fi
echo "owner model: all checks passed"
