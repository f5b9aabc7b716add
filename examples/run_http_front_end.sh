#!/bin/sh
# Drives the HTTP front end with real requests on 127.0.0.1: PUT a cart, GET
# it, 8 updates in parallel (no update may be lost), GET again, the error
# cases, then POST /shutdown and a check that the server exited with 0.
# Usage: run_http_front_end.sh <http_front_end> [curl]
# Last line: "example_http_front_end: ok" or "example_http_front_end: FAILED".
set -u
server_bin=${1:?usage: $0 <http_front_end> [curl]}
curl_bin=${2:-curl}
dir=$(mktemp -d) || exit 1
server_pid=
fail() {
  echo "example_http_front_end: FAILED: $*"
  [ -f "$dir/server.out" ] && sed 's/^/  server> /' "$dir/server.out"
  exit 1
}
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null # `timeout`; its child follows
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# `timeout` bounds the server's whole life, should the script itself get stuck.
: >"$dir/server.out" # exists before the loop below reads it
timeout -s KILL 50 "$server_bin" --threads 4 >"$dir/server.out" 2>&1 &
server_pid=$!

port=
tries=0
while [ -z "$port" ]; do
  port=$(sed -n 's/^http: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
         "$dir/server.out")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited before listening"
  tries=$((tries + 1))
  [ "$tries" -gt 100 ] && fail "the server did not listen within 10 s"
  sleep 0.1
done
url="http://127.0.0.1:$port"
echo "server listens on port $port"

# call NAME METHOD PATH [BODY]: the answer's body goes to $dir/NAME, its
# status to $dir/NAME.code.
call() {
  name=$1 method=$2 path=$3
  shift 3
  "$curl_bin" -sS --max-time 10 -X "$method" -o "$dir/$name" \
    -w '%{http_code}' ${1:+-H 'Content-Type: application/json' -d "$1"} \
    "$url$path" >"$dir/$name.code" 2>"$dir/$name.err"
}
# expect NAME STATUS [TEXT...]: the status, and each TEXT in the body.
expect() {
  name=$1 status=$2
  shift 2
  got=$(cat "$dir/$name.code")
  echo "$name: $got $(cat "$dir/$name" 2>/dev/null)"
  [ "$got" = "$status" ] || fail "$name: status $got, expected $status"
  for text in "$@"; do
    grep -qF -- "$text" "$dir/$name" || fail "$name: no $text in the answer"
  done
}

id=6f1d2c3b-4a59-4e86-97a1-b2c3d4e5f607
call put PUT "/contexts/cart/$id" '{"owner": "ann", "total": 0}'
expect put 200 '"version":1,'
call get1 GET "/contexts/cart/$id"
expect get1 200 \
  "{\"type\":\"cart\",\"id\":\"$id\",\"version\":1,\"owner\":\"ann\",\"total\":0,\"items\":[]}"

# 8 sessions at once on one cart, qty 1..8: the total must be 36.
pids=
for n in 1 2 3 4 5 6 7 8; do
  call "update$n" POST "/contexts/cart/$id/update" \
    "{\"sku\":\"s$n\",\"qty\":$n}" &
  pids="$pids $!"
done
for pid in $pids; do
  wait "$pid" || fail "curl of an update failed"
done
for n in 1 2 3 4 5 6 7 8; do
  expect "update$n" 200 "{\"sku\":\"s$n\",\"qty\":$n}"
done
call get2 GET "/contexts/cart/$id"
expect get2 200 '"version":9,' '"total":36,'
for n in 1 2 3 4 5 6 7 8; do
  [ "$(grep -o "\"sku\":\"s$n\"" "$dir/get2" | wc -l)" -eq 1 ] \
    || fail "get2: item s$n is not there exactly once"
done

call bad_uuid GET /contexts/cart/banana
expect bad_uuid 400 '"error":"bad_request"'
call bad_type GET "/contexts/order/$id"
expect bad_type 404 '"error":"unknown_type"'
call missing GET /contexts/cart/00000000-0000-4000-8000-000000000001
expect missing 404 '"error":"no_such_context"' 'No cart context known for'
call bad_body POST "/contexts/cart/$id/update" '{"sku":"x"}'
expect bad_body 400 '"error":"bad_request"'

call shutdown POST /shutdown
expect shutdown 200 '"stopping":true'
wait "$server_pid"
server_rc=$?
server_pid=
sed 's/^/  server> /' "$dir/server.out"
[ "$server_rc" -eq 0 ] || fail "the server exited with $server_rc"
grep -qx 'http: stopped' "$dir/server.out" || fail "no 'http: stopped'"
echo "example_http_front_end: ok"
