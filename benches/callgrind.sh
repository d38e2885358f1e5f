#!/usr/bin/env bash
# Instructions per request under a fixed redis-benchmark load, counted by callgrind: the figure
# to compare CPU cost before and after a change on a busy machine, where timings are noise.
#
#   benches/callgrind.sh [-b BINARY] [-n N] [-c C] [-P P] [-t TESTS] [-r KEYSPACE] [-o OUT]
#
# Without -r every request names the same key, as the throughput benchmark
# (redis-benchmark -t set,get,incr,hset -P 16) does; -r 100000 spreads them (new keys: inserts).
# Prints the server's total instructions (every thread, start-up included) per request, the
# instructions under commands::execute per request, and the top functions by self cost.
# Needs valgrind (apt-get install -y valgrind) and redis-benchmark/redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/rudis-server n=20000 c=4 P=16 tests=set,get,incr,hset out=/tmp/rudis-cg r=()
while getopts "b:n:c:P:t:r:o:h" o; do
  case $o in b) bin=$OPTARG;; n) n=$OPTARG;; c) c=$OPTARG;; P) P=$OPTARG;; t) tests=$OPTARG;; r) r=(-r "$OPTARG");;
    o) out=$OPTARG;; *) sed -n 2,9p "$0"; exit 2;; esac
done
for t in valgrind callgrind_annotate redis-benchmark redis-cli; do
  command -v $t >/dev/null || { echo "callgrind.sh: $t missing" >&2; exit 2; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -f "$out".*
valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$bin" --port "$port" \
  --appendonly no --workers "$((c + 2))" >/dev/null 2>&1 &
vg=$!
# Whatever goes wrong below, the server does not outlive the script.
trap 'kill $vg 2>/dev/null || true' EXIT
for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
ntests=$(tr ',' '\n' <<<"$tests" | wc -l)
redis-benchmark -p "$port" -t "$tests" -n "$n" -c "$c" -P "$P" "${r[@]}" -q >/dev/null
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait $vg || true
f=$(ls "$out".* | head -1)
reqs=$((n * ntests))
total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
exec_ir=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null \
  | awk '/rudis::commands::(dispatch::)?execute[^_a-z]/ && !x {gsub(",","",$1); print $1; x=1}')
echo "requests: $reqs ($tests, -c $c -P $P)"
echo "total Ir/request:   $((total / reqs))"
[ -n "$exec_ir" ] && echo "execute Ir/request: $((exec_ir / reqs))"
callgrind_annotate "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 1,40p
echo "profile: $f"
