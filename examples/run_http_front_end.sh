#!/usr/bin/env bash
# Drives the HTTP front end with real processes on 127.0.0.1 (curl, and
# bash's /dev/tcp for clients that misbehave); every check is bounded in time.
#  1. PUT, GET, 8 parallel updates, then 1000 updates at once (4 curls with
#     250 transfers each) of one cart: no update may be lost.
#  2. Bodies: `"total":1-2`, `"qty":1e3`, 1.5, 5000, 2^64, "2", a missing or
#     unknown field, a non-object, an array nested 500,000 deep each get 400
#     with what is wrong, and change nothing; "\u0000" and "\u00e9" are
#     stored decoded and come back intact.
#  3. Routes: bad UUID 400, unknown type 404, unknown context 404.
#  4. With --threads 2 and --timeout 2: two idle clients, two that send a
#     byte a second and two whose body is shorter than their Content-Length
#     are connected while 6 requests are each answered within 1 s; each of
#     the six is still open 1.5 s after it connected, and closed, unanswered,
#     within 2.5 s.
#  5. A body of 1 MiB + 1 byte gets 413, with and without `Expect:
#     100-continue`; a client that writes all of it before it reads can write
#     it all and then reads the 413; 1 MiB is fine.
#  6. POST /shutdown from 127.0.0.2 gets 403 and the server keeps serving.
#  7. A second server limited to 32 open files (ulimit -n) gets 60
#     connections: it reports it cannot accept, uses less than 0.2 s of CPU in
#     2 s, and once the 60 are closed answers a request within 1 s.
#  8. POST /shutdown from 127.0.0.1 stops each server: exit code 0.
#  GET /metrics after 1.: Prometheus text with the carts' counts (checked with
#  `promtool check metrics` when PROMTOOL is given).
# Usage: run_http_front_end.sh <http_front_end> [curl [promtool]]
# Last line: "example_http_front_end: ok" or "example_http_front_end: FAILED".
set -u
server_bin=${1:?usage: $0 <http_front_end> [curl]}
curl_bin=${2:-curl}
promtool_bin=${3:-}
dir=$(mktemp -d) || exit 1
started=() # every process this script started, killed at exit
fail() {
  echo "example_http_front_end: FAILED: $*"
  for out in "$dir"/*.out; do
    [ -f "$out" ] && sed "s/^/  $(basename "$out" .out)> /" "$out"
  done
  exit 1
}
cleanup() {
  for p in "${started[@]}"; do
    kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

now_us() { echo "${EPOCHREALTIME/./}"; } # microseconds, no process

# start NAME FILES ARGS...: starts a server limited to FILES open files, its
# output in $dir/NAME.out; sets $url, $pid (the server) and $tpid (its
# `timeout`, which bounds its life should this script be killed).
start() {
  local name=$1 files=$2 port= tries=0 stat rest
  shift 2
  : >"$dir/$name.out"
  (ulimit -n "$files" && exec timeout -s KILL 50 "$server_bin" "$@") \
    >"$dir/$name.out" 2>&1 &
  tpid=$!
  started+=("$tpid")
  while [ -z "$port" ]; do
    port=$(sed -n 's/^http: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
      "$dir/$name.out")
    [ -n "$port" ] && break
    kill -0 "$tpid" 2>/dev/null || fail "$name: exited before listening"
    tries=$((tries + 1))
    [ "$tries" -gt 100 ] && fail "$name: did not listen within 10 s"
    sleep 0.1
  done
  pid=
  for stat in /proc/[0-9]*/stat; do # the child of `timeout`
    read -r rest 2>/dev/null <"$stat" || continue # it may have ended
    rest=${rest##*) } # after the command's name: "STATE PPID ..."
    rest=${rest#* }
    [ "${rest%% *}" = "$tpid" ] && pid=${stat#/proc/} && pid=${pid%/stat}
  done
  [ -n "$pid" ] || fail "$name: no server process under timeout $tpid"
  started+=("$pid")
  url="http://127.0.0.1:$port"
  echo "$name: pid $pid listens on port $port"
}

# call NAME METHOD PATH [BODY [CURL_ARGS...]]: the answer's body goes to
# $dir/NAME, "STATUS SECONDS" to $dir/NAME.w. BODY: text, or @file.
call() {
  local name=$1 method=$2 path=$3 body=${4-} args=()
  shift 3
  [ $# -gt 0 ] && shift
  [ -n "$body" ] \
    && args=(-H 'Content-Type: application/json' --data-binary "$body")
  "$curl_bin" -sS --max-time 10 -X "$method" -o "$dir/$name" \
    -w '%{http_code} %{time_total}' "${args[@]}" "$@" "$url$path" \
    >"$dir/$name.w" 2>"$dir/$name.err"
}
# expect NAME STATUS [TEXT...]: the status, and each TEXT in the body.
expect() {
  local name=$1 status=$2 got text
  shift 2
  read -r got _ <"$dir/$name.w"
  echo "$name: $got $(head -c 300 "$dir/$name" 2>/dev/null)"
  [ "$got" = "$status" ] \
    || fail "$name: status $got, expected $status $(cat "$dir/$name.err")"
  for text in "$@"; do
    grep -qF -- "$text" "$dir/$name" || fail "$name: no $text in the answer"
  done
}

# -- 1. a cart, parallel updates -----------------------------------------------

start main "$(ulimit -n)" --threads 2 --timeout 2
id=6f1d2c3b-4a59-4e86-97a1-b2c3d4e5f607
cart="/contexts/cart/$id"
call put PUT "$cart" '{"owner": "ann", "total": 0}'
expect put 200 '"version":1,'
call get1 GET "$cart"
expect get1 200 \
  "{\"type\":\"cart\",\"id\":\"$id\",\"version\":1,\"owner\":\"ann\",\"total\":0,\"items\":[]}"

# 8 sessions at once on one cart, qty 1..8: the total must be 36.
pids=()
for n in 1 2 3 4 5 6 7 8; do
  call "update$n" POST "$cart/update" "{\"sku\":\"s$n\",\"qty\":$n}" &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || fail "curl of an update failed"
done
for n in 1 2 3 4 5 6 7 8; do
  expect "update$n" 200 "{\"sku\":\"s$n\",\"qty\":$n}"
done
call get2 GET "$cart"
expect get2 200 '"version":9,' '"total":36,'
for n in 1 2 3 4 5 6 7 8; do
  [ "$(grep -o "\"sku\":\"s$n\"" "$dir/get2" | wc -l)" -eq 1 ] \
    || fail "get2: item s$n is not there exactly once"
done

# 1000 updates of another cart, all in flight at once: total 1000, version 1001
bulk=/contexts/cart/0e4c2a10-7b7e-4b8e-9a59-3c1f0d2e4b61
call bulk_put PUT "$bulk" '{"owner":"bob"}'
expect bulk_put 200 '"version":1,'
for n in $(seq 250); do
  printf 'url = "%s"\noutput = "/dev/null"\n' "$url$bulk/update"
done >"$dir/bulk.cfg"
started_us=$(now_us)
pids=()
for k in 1 2 3 4; do
  "$curl_bin" -sS --max-time 30 --parallel --parallel-immediate \
    --parallel-max 250 -X POST -H 'Content-Type: application/json' \
    --data-binary '{"sku":"b","qty":1}' -w '%{http_code}\n' \
    -K "$dir/bulk.cfg" >"$dir/bulk$k.codes" 2>"$dir/bulk$k.err" &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || fail "a parallel curl failed: $(cat "$dir"/bulk*.err)"
done
ok=$(cat "$dir"/bulk?.codes | grep -cx 200)
ms=$((($(now_us) - started_us) / 1000))
echo "bulk: $ok of 1000 updates answered 200 in $ms ms"
[ "$ok" -eq 1000 ] || fail "bulk: only $ok updates answered 200"
call bulk_get GET "$bulk"
expect bulk_get 200 '"version":1001,' '"total":1000,'

# The metrics count those updates (1008 sessions of type cart).
call metrics GET /metrics
expect metrics 200 '# TYPE ctxstore_operations_total counter' \
  'ctxstore_operations_total{type="cart",kind="acquire",result="ok"} 1008'
if [ -n "$promtool_bin" ]; then
  "$promtool_bin" check metrics <"$dir/metrics" >"$dir/promtool.out" 2>&1 \
    || fail "promtool check metrics: $(cat "$dir/promtool.out")"
  echo "metrics: promtool check metrics passed"
fi

# -- 2. bodies -----------------------------------------------------------------

bad_body() { # NAME METHOD PATH BODY MESSAGE: 400, and MESSAGE in the answer
  call "$1" "$2" "$3" "$4"
  expect "$1" 400 '"error":"bad_request"' "$5"
}
must_int='must be an integer from 1 to 1000'
bad_body total_expr PUT "$cart" '{"owner":"ann","total":1-2}' \
  'body is not valid JSON: parse error at line 1, column 26'
bad_body total_float PUT "$cart" '{"owner":"ann","total":2.5}' \
  'field \"total\" must be an integer from 0 to 1000000000000000, not 2.5'
bad_body qty_exp POST "$cart/update" '{"sku":"x","qty":1e3}' \
  "field \\\"qty\\\" $must_int, not 1000.0"
bad_body qty_float POST "$cart/update" '{"sku":"x","qty":1.5}' \
  "field \\\"qty\\\" $must_int, not 1.5"
bad_body qty_big POST "$cart/update" '{"sku":"x","qty":5000}' \
  "field \\\"qty\\\" $must_int, not 5000"
bad_body qty_huge POST "$cart/update" '{"sku":"x","qty":18446744073709551616}' \
  "field \\\"qty\\\" $must_int, not 1.8446744073709552e+19"
bad_body qty_text POST "$cart/update" '{"sku":"x","qty":"2"}' \
  "field \\\"qty\\\" $must_int, not \\\"2\\\""
bad_body sku_missing POST "$cart/update" '{"qty":2}' \
  'field \"sku\" is missing'
bad_body unknown_field POST "$cart/update" '{"sku":"x","qty":2,"price":3}' \
  'unknown field \"price\"'
bad_body not_object POST "$cart/update" '[1,2]' \
  'body must be a JSON object, not an array'
{ # 500,000 levels of nesting in 1 MB: refused, without writing it out
  head -c 500000 /dev/zero | tr '\0' '['
  head -c 500000 /dev/zero | tr '\0' ']'
} >"$dir/deep.json"
bad_body deep POST "$cart/update" "@$dir/deep.json" \
  'body must be a JSON object, not an array'
call get3 GET "$cart"
expect get3 200 '"version":9,' '"total":36,' # none of them changed the cart

text=/contexts/cart/1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed
call text_put PUT "$text" '{"owner":"a\u0000b Zo\u00eb"}'
expect text_put 200 '"owner":"a\u0000b Zoë"'
call text_get GET "$text"
expect text_get 200 '"owner":"a\u0000b Zoë"'

# -- 3. routes -----------------------------------------------------------------

call bad_uuid GET /contexts/cart/banana
expect bad_uuid 400 '"error":"bad_request"' 'not a UUID: \"banana\"'
call bad_type GET "/contexts/order/$id"
expect bad_type 404 '"error":"unknown_type"'
call missing GET /contexts/cart/00000000-0000-4000-8000-000000000001
expect missing 404 '"error":"no_such_context"' 'No cart context known for'

# -- 4. clients that send nothing, slowly or too little ------------------------

slow_client() { # FD: a request line, a byte a second, until the server closes
  local fd=$1 line="GET $cart HTTP/1.1" i
  for ((i = 0; i < ${#line}; i++)); do
    printf %s "${line:i:1}" >&"$fd" 2>/dev/null || return 0
    read -r -t 1 -u "$fd" _
    [ $? -gt 128 ] || return 0 # not a timeout: the server closed
  done
}
port=${url##*:}
connected_us=$(now_us)
exec {idle1}<>"/dev/tcp/127.0.0.1/$port" {idle2}<>"/dev/tcp/127.0.0.1/$port" \
  {slow1}<>"/dev/tcp/127.0.0.1/$port" {slow2}<>"/dev/tcp/127.0.0.1/$port" \
  {short1}<>"/dev/tcp/127.0.0.1/$port" {short2}<>"/dev/tcp/127.0.0.1/$port" \
  || fail "cannot connect the slow clients"
slow_client "$slow1" &
slow_pids=($!)
slow_client "$slow2" &
slow_pids+=($!)
started+=("${slow_pids[@]}")
for fd in "$short1" "$short2"; do # 10 bytes of 100
  printf 'PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"owner":' \
    "$cart" >&"$fd"
done
sleep 0.2 # the server has them all
worst=0
for n in 1 2 3 4 5 6; do
  if [ "$n" -eq 6 ]; then
    call attacked$n POST "$cart/update" '{"sku":"t","qty":1}' --max-time 1
  else
    call attacked$n GET "$cart" "" --max-time 1
  fi
  expect attacked$n 200
  read -r _ secs <"$dir/attacked$n.w"
  [ "${secs/./}" -gt "$worst" ] && worst=${secs/./}
done
echo "attacked: the slowest of 6 requests took $((10#$worst)) us"
clients="idle1 idle2 slow1 slow2 short1 short2"
left_us=$((1500000 - ($(now_us) - connected_us))) # until 1.5 s after connecting
if [ "$left_us" -gt 0 ]; then
  sleep "$(printf '0.%06d' "$left_us")"
  for name in $clients; do # -t 0: is there input or an end of it?
    read -r -t 0 -u "${!name}" && fail "$name: closed or answered within 1.5 s"
  done
else # too late to tell: the machine is very slow
  echo "attacked: the requests took more than 1.5 s, no check at 1.5 s"
fi
for name in $clients; do
  fd=${!name}
  line=
  read -r -t 4 -u "$fd" line
  status=$?
  ms=$((($(now_us) - connected_us) / 1000))
  [ "$status" -gt 128 ] && fail "$name: still open after $ms ms"
  [ -z "$line" ] || fail "$name: got an answer: $line"
  [ "$ms" -le 2500 ] || fail "$name: closed after $ms ms, expected 2000"
  echo "$name: closed, unanswered, $ms ms after it connected"
  exec {fd}>&-
done
wait "${slow_pids[@]}" # they stop when the server closes
[ "$(grep -c 'no complete request within 2 s' "$dir/main.out")" -eq 6 ] \
  || fail "the server did not report 6 connections it closed"

# -- 5. bodies over 1 MiB ------------------------------------------------------

head -c 1048577 /dev/zero | tr '\0' a >"$dir/big.json"
call big PUT "$cart" "@$dir/big.json"
expect big 413 '"error":"too_large"'
call big_at_once PUT "$cart" "@$dir/big.json" -H 'Expect:'
expect big_at_once 413 '"error":"too_large"'
# A client that writes all of its body before it reads: after its 413 the
# server reads and discards the rest, so the whole body can be written (were
# the socket closed at once, the write would fail with EPIPE).
{
  printf 'PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n' \
    "$cart"
  cat "$dir/big.json"
} >"$dir/big.request" # one write after the other, no pause after the head
exec {raw}<>"/dev/tcp/127.0.0.1/$port" || fail "big_raw: cannot connect"
timeout 5 cat "$dir/big.request" >&"$raw" 2>/dev/null \
  || fail "big_raw: the request was cut off (status $?)"
line=
read -r -t 3 -u "$raw" line
line=${line%$'\r'}
[ "$line" = "HTTP/1.1 413 Payload Too Large" ] || fail "big_raw: got '$line'"
echo "big_raw: wrote 1 MiB + 1 byte, then read: $line"
exec {raw}>&-
{
  printf '{"owner":"'
  head -c $((1048576 - 22)) /dev/zero | tr '\0' b
  printf '","total":0}'
} >"$dir/mib.json"
[ "$(wc -c <"$dir/mib.json")" -eq 1048576 ] || fail "mib.json is not 1 MiB"
mib=/contexts/cart/2c5ea4c0-4067-11e9-8bad-9b1deb4d3b7d
call mib PUT "$mib" "@$dir/mib.json"
expect mib 200 '"version":1,'

# -- 6. POST /shutdown from elsewhere ------------------------------------------

call foreign POST /shutdown "" --interface 127.0.0.2
expect foreign 403 '"error":"forbidden"' 'not 127.0.0.2'
call after_foreign GET "$cart"
expect after_foreign 200

# -- 7. out of file descriptors ------------------------------------------------

main_url=$url main_pid=$pid main_tpid=$tpid
start fds 32 --threads 2 --timeout 20
port=${url##*:}
flood=()
for n in $(seq 60); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "flood: connection $n failed"
  flood+=("$fd")
done
for n in $(seq 20); do
  grep -q 'cannot accept (Too many open files)' "$dir/fds.out" && break
  sleep 0.1
done
grep -q 'cannot accept (Too many open files)' "$dir/fds.out" \
  || fail "fds: no 'cannot accept' after 60 connections"
cpu_ticks() { # user + system time of process $1, in clock ticks
  local rest
  read -r rest <"/proc/$1/stat"
  set -- ${rest##*) }
  echo $((${12} + ${13}))
}
before=$(cpu_ticks "$pid")
sleep 2
cpu_ms=$((($(cpu_ticks "$pid") - before) * 1000 / $(getconf CLK_TCK)))
echo "fds: out of file descriptors, the server used $cpu_ms ms of CPU in 2 s"
[ "$cpu_ms" -lt 200 ] || fail "fds: $cpu_ms ms of CPU in 2 s: accept spins"
for fd in "${flood[@]}"; do
  exec {fd}>&-
done
call fds_after PUT "$cart" '{"owner":"cy"}' --max-time 1
expect fds_after 200 '"owner":"cy"'
read -r _ secs <"$dir/fds_after.w"
echo "fds: after the flood closed, a request was answered in $secs s"
grep -q 'accepting again' "$dir/fds.out" || fail "fds: no 'accepting again'"

# -- 8. shutdown ---------------------------------------------------------------

stop() { # NAME: POST /shutdown from 127.0.0.1, then exit code 0
  call "$1_shutdown" POST /shutdown
  expect "$1_shutdown" 200 '"stopping":true'
  wait "$tpid"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "$1: exited with $rc"
  grep -qx 'http: stopped' "$dir/$1.out" || fail "$1: no 'http: stopped'"
}
stop fds
url=$main_url pid=$main_pid tpid=$main_tpid
stop main
sed 's/^/  main> /' "$dir/main.out" | grep -v '/update -> 200$'
echo "example_http_front_end: ok"
