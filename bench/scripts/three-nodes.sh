#!/bin/sh
# Issue 18's three-node figure (BENCHMARKS.md, "Issue 18: three nodes"):
# three collab-server nodes sharing rooms through one local redis-server,
# loaded by collab-bench with each room's members spread over SPREAD nodes.
# Prints one line per node: CPU-s, log entries it published and received
# (its /metrics), then the bench's JSON line.
#
#   bench/scripts/three-nodes.sh SPREAD [collab-bench load args...]
#
# Nodes on CPU 0, the bench on CPU 1, Redis unpinned. Everything on
# loopback; Redis on port $PORT (6392) with appendonly, in a temp dir.
set -eu
SPREAD=${1:?SPREAD (1, 2 or 3)}
shift
BIN=${BIN:-target/release}
PORT=${PORT:-6392}
dir=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly yes --dir "$dir" >"$dir/redis.log" &
redis=$!
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  kill "$redis" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
urls=""
for n in 0 1 2; do
  RUST_LOG=error taskset -c 0 "$BIN/collab-server" --bind 127.0.0.1:0 \
    --redis "redis://127.0.0.1:$PORT/0" --node-id "n$n" \
    --max-connections 4096 --max-rooms 1024 --max-users-per-room 64 \
    --rate 1000 --burst 2000 >"$dir/n$n.out" &
  pids="$pids $!"
  until grep -q "ws://" "$dir/n$n.out" 2>/dev/null; do sleep 0.05; done
  url=$(grep -o "ws://[^ ]*" "$dir/n$n.out" | head -1)
  urls="$urls --url $url"
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s "http://$(echo "$1" | sed 's|ws://||; s|/ws||')/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
set -- $urls --spread "$SPREAD" --client-cpu 1 --json "$@"
before=""
for p in $pids; do before="$before $(cpu "$p")"; done
out=$("$BIN/collab-bench" load "$@")
n=0
for p in $pids; do
  n=$((n + 1))
  b=$(echo "$before" | awk -v i="$n" '{print $i}')
  u=$(echo "$urls" | awk -v i="$((n * 2))" '{print $i}')
  echo "node n$((n - 1)): cpu_s $(echo "$(cpu "$p") $b" | awk '{printf "%.2f", ($1 - $2) / 100}') published $(metric "$u" collab_cluster_published_total) received $(metric "$u" collab_cluster_received_total) rooms $(metric "$u" collab_cluster_rooms)"
done
echo "$out" | tail -1
