#!/usr/bin/env bash
# Verifies the context model (owner.pml, see README.md) with spin: safety
# (assertions and invalid end states, i.e. deadlocks) and liveness (the LTL
# property `answered`, with weak fairness) in a few bounded configurations,
# then checks that spin finds the bug planted by each mutant macro. One line
# per check; exits nonzero on any failure. Works from any directory; spin's
# pan* files go to a temporary directory. Checks run MODEL_JOBS at a time
# (default 2); the lines are printed in order when all are done.
#   usage: tests/model/check.sh            (SPIN=..., CC=..., MODEL_JOBS=...)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
spin=${SPIN:-spin}
cc=${CC:-}
jobs=${MODEL_JOBS:-2}
if [ -z "$cc" ]; then
  for candidate in cc gcc clang; do
    if command -v "$candidate" >/dev/null; then cc=$candidate; break; fi
  done
fi
command -v "$spin" >/dev/null || { echo "check.sh: spin not found" >&2; exit 2; }
[ -n "$cc" ] || { echo "check.sh: no C compiler (cc, gcc, clang)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/owner-model.XXXXXX")
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

# Bounded configurations (see README.md, "Bounds"). Client 0 is a local
# client (the fast path, LOCAL=1 by default), the others send messages.
small=(-DNC=2 -DBUDGET=2) # 2 clients, 2 operations each: deep histories
wide=(-DNC=3 -DBUDGET=1)  # 3 clients, 1 operation each: 2 waiters queued
# pan: compressed states (COLLAPSE), bounded memory, search depth. gcc needs
# about a minute for pan.c at plain -O1 (its dead store elimination and
# combiner on the one big transition function); without those two passes it
# compiles in ~10 s and searches twice as fast as at -O0. Mutants stop early:
# -O0, and no array bound checks (they compile in ~3 s).
pan_cflags="-DCOLLAPSE -DMEMLIM=2048 -DNFAIR=3"
opt_cflags="-O1 -fno-dse -fdisable-rtl-combine"
# shellcheck disable=SC2086 # the flags are separate words
if ! "$cc" $opt_cflags -x c -c -o /dev/null - </dev/null >/dev/null 2>&1; then
  opt_cflags="-O0" # not gcc
fi
mutant_cflags="-O0 -DNOBOUNDCHECK"
pan_depth=10000

# check NAME EXPECT MODE SPIN_DEFINES... (in its own directory; prints the
# check's line)
#   EXPECT: "pass", or a fixed string that spin's error line must contain
#   MODE:   safety (assertions + invalid end states) | liveness (ltl, -a -f)
check() {
  local name=$1 expect=$2 mode=$3
  shift 3
  local defs="$*" cflags="$pan_cflags $opt_cflags" run_flags="-m$pan_depth"
  if [ "$expect" != pass ]; then cflags="$pan_cflags $mutant_cflags"; fi
  if [ "$mode" = liveness ]; then
    defs="$defs -DLIVENESS"
    run_flags="$run_flags -a -f"
  else
    cflags="$cflags -DSAFETY"
  fi
  local log="$PWD/pan.log" start=$SECONDS
  # shellcheck disable=SC2086 # the defines are separate words
  if ! "$spin" $defs -a owner.pml >"$log" 2>&1 \
    || ! "$cc" $cflags -o pan pan.c >>"$log" 2>&1; then
    echo "FAIL $name: spin or cc failed"; sed 's/^/  /' "$log"
    return
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
    *) grep -E "^pan|error" "$log" | head -n 5 | sed 's/^/  /' ;;
  esac
}

names=()
running=0
# run NAME EXPECT MODE SPIN_DEFINES...: starts a check in the background
run() {
  local name=$1
  mkdir "$work/$name"
  cp "$here/owner.pml" "$work/$name/"
  (
    cd "$work/$name"
    check "$@" >result 2>&1
  ) &
  names+=("$name")
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
}

# -- the model -------------------------------------------------------------------
run safety-small           pass safety   "${small[@]}"
run safety-small-remote    pass safety   "${small[@]}" -DREMOTE
run safety-remote-nested   pass safety   "${small[@]}" -DREMOTE -DCLIENT_SAME_TOKEN_IS_NESTED
run liveness-small         pass liveness "${small[@]}"
run safety-wide            pass safety   "${wide[@]}"
run safety-wide-maxwaiters pass safety   "${wide[@]}" -DMAXW=1
# two local clients: one runs the queue for the other (a direct waiter
# granted without the owner), and one's request on its way to the owner
# keeps the fast path closed for the other
run safety-wide-local2     pass safety   "${wide[@]}" -DLOCAL=2
run liveness-small-nolease pass liveness "${small[@]}" -DLEASE=0
run liveness-wide-nolease  pass liveness "${wide[@]}" -DLEASE=0
run liveness-wide-local2-nolease pass liveness "${wide[@]}" -DLOCAL=2 -DLEASE=0

# -- mutants: each planted bug must be found ------------------------------------------
run mutant-no-fencing      "(ended[g]&(1<<tok))" safety "${small[@]}" -DBUG_NO_FENCING
run mutant-lifo            "qtick[j]>=ctx[g].qtick[pick]" safety "${wide[@]}" -DBUG_LIFO
run mutant-keep-timed-out  "assertion violated pending" safety "${small[@]}" -DBUG_KEEP_TIMED_OUT
run mutant-down-no-grant   "assertion violated ((ctx[g].qn==0)||(ctx[g].token!=0))" \
  safety "${small[@]}" -DBUG_DOWN_NO_GRANT
run mutant-lose-waiters    "invalid end state" safety "${small[@]}" -DBUG_LOSE_WAITERS
run mutant-lose-waiters-ltl "acceptance cycle" liveness "${small[@]}" -DBUG_LOSE_WAITERS
run mutant-retire-at-once  "retiring)&& !(ctx[g].present)" safety "${small[@]}" -DBUG_RETIRE_AT_ONCE
# The fast path: a free context taken directly past a parked request (FIFO
# across kinds of waiter); a client's run of the queue that stops at a parked
# request without telling the owner; an owner step that handles its message
# before running a queue left by a direct session.
run mutant-fast-path-barges "assertion violated (passed==0)" safety "${small[@]}" \
  -DFAST_PATH_BARGES
run mutant-no-handover     "invalid end state" safety "${small[@]}" -DBUG_NO_HANDOVER
run mutant-step-no-run     "assertion violated ((ctx[g].qn==0)||(ctx[g].token!=0))" \
  safety "${small[@]}" -DBUG_STEP_NO_RUN

# Tokens restarting with each owner (the code before counters::last_token):
# the async client takes an equal token for a nested level, so a remote
# holder's revoked session committed into the owner created after an erase.
run mutant-owner-tokens    "(rg==og))" safety "${small[@]}" -DREMOTE \
  -DCLIENT_SAME_TOKEN_IS_NESTED -DBUG_OWNER_TOKENS

wait || true
failures=0
for name in "${names[@]}"; do
  cat "$work/$name/result"
  if ! grep -q "^$name  *PASS" "$work/$name/result"; then
    failures=$((failures + 1))
  fi
done
if [ "$failures" -ne 0 ]; then
  echo "owner model: $failures check(s) FAILED"
  exit 1
fi
echo "owner model: all checks passed"
