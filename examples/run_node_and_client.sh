#!/bin/sh
# Runs the distributed example: a node on a free port of 127.0.0.1 and the
# client's demo against it, then stops the node with SIGTERM.
# Usage: run_node_and_client.sh <ctxstore_node> <remote_client>
# Last line: "example_node_and_client: ok" or "example_node_and_client: FAILED".
set -u
node_bin=${1:?usage: $0 <ctxstore_node> <remote_client>}
client_bin=${2:?usage: $0 <ctxstore_node> <remote_client>}
dir=$(mktemp -d) || exit 1
node_pid=
fail() {
  echo "example_node_and_client: FAILED: $*"
  [ -f "$dir/node.out" ] && sed 's/^/  node> /' "$dir/node.out"
  exit 1
}
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    # `timeout` leads its own process group: this kills it and the node.
    kill -KILL "-$node_pid" 2>/dev/null || kill -KILL "$node_pid" 2>/dev/null
    wait "$node_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# `timeout` bounds the node's whole life, should the script itself get stuck.
timeout -s KILL 50 "$node_bin" --port 0 >"$dir/node.out" 2>&1 &
node_pid=$!

port=
tries=0
while [ -z "$port" ]; do
  port=$(sed -n 's/^node: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
         "$dir/node.out")
  [ -n "$port" ] && break
  kill -0 "$node_pid" 2>/dev/null || fail "the node exited before listening"
  tries=$((tries + 1))
  [ "$tries" -gt 100 ] && fail "the node did not listen within 10 s"
  sleep 0.1
done
echo "node listens on port $port"

timeout -s KILL 30 "$client_bin" "$port" demo >"$dir/client.out" 2>&1
client_rc=$?
sed 's/^/  client> /' "$dir/client.out"
[ "$client_rc" -eq 0 ] || fail "remote_client exited with $client_rc"
grep -qx 'remote_client: ok' "$dir/client.out" || fail "no 'remote_client: ok'"

kill -TERM "$node_pid" # `timeout` passes it on to the node
wait "$node_pid"
node_rc=$?
node_pid=
sed 's/^/  node> /' "$dir/node.out"
[ "$node_rc" -eq 0 ] || fail "the node exited with $node_rc after SIGTERM"
grep -qx 'node: stopped' "$dir/node.out" || fail "no 'node: stopped'"
echo "example_node_and_client: ok"
