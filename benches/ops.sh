#!/usr/bin/env bash
# What observing rudis costs (issue 19's targets):
#
#   stats    redis-benchmark against one rudis, alternate rounds with SLOWLOG and latency
#            tracking at their defaults (slowlog-log-slower-than 10000, latency-tracking yes)
#            and with both off (-1, no): ratio on/off (1: free)
#   monitor  one `redis-cli MONITOR` attached to rudis and to a real redis-server, then
#            redis-benchmark against each, alternate rounds: ratio rudis/redis
#
#   benches/ops.sh [-t TESTS] [-n N] [-c C] [-P P] [-r ROUNDS] [stats|monitor ...]
#     defaults: -t set,get -n 200000 -c 50 -P 1 -r 5, both parts
#
# The machine is shared: read the ratios of one run together, and run it more than once.
# Needs redis-server, redis-cli, redis-benchmark and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=set,get n=200000 c=50 P=1 rounds=5
while getopts "t:n:c:P:r:h" o; do
  case $o in t) tests=$OPTARG;; n) n=$OPTARG;; c) c=$OPTARG;; P) P=$OPTARG;; r) rounds=$OPTARG;;
    *) sed -n 2,14p "$0"; exit 0;; esac
done
shift $((OPTIND - 1))
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(stats monitor)
me=ops.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh

start_pair

bench() {
  redis-benchmark -p "$1" --csv -t "$2" -n "$n" -c "$c" -P "$P" -r 100000 2>/dev/null |
    tail -n +2 | tr -d '"' | awk -F, '{print $2}'
}

stats() {
  printf "%-6s %12s %12s %8s   (n=%s c=%s P=%s rounds=%s)\n" test off_rps on_rps on/off "$n" "$c" "$P" "$rounds"
  for t in ${tests//,/ }; do
    : >"$work/off"; : >"$work/on"
    for _ in $(seq "$rounds"); do
      redis-cli -p "$up" CONFIG SET slowlog-log-slower-than -1 latency-tracking no >/dev/null
      bench "$up" "$t" >>"$work/off"
      redis-cli -p "$up" CONFIG SET slowlog-log-slower-than 10000 latency-tracking yes >/dev/null
      bench "$up" "$t" >>"$work/on"
    done
    off=$(median <"$work/off"); on=$(median <"$work/on")
    printf "%-6s %12s %12s %8s\n" "$t" "$off" "$on" "$(ratio "$on" "$off")"
  done
}

monitor() {
  redis-cli -p "$rp" MONITOR >"$work/redis.monitor" &
  pids+=("$!")
  redis-cli -p "$up" MONITOR >"$work/rudis.monitor" &
  pids+=("$!")
  sleep 0.5
  printf "%-6s %12s %12s %8s   (one monitor each; n=%s c=%s P=%s rounds=%s)\n" test redis_rps rudis_rps ratio "$n" "$c" "$P" "$rounds"
  for t in ${tests//,/ }; do
    : >"$work/r"; : >"$work/u"
    for _ in $(seq "$rounds"); do
      bench "$rp" "$t" >>"$work/r"
      bench "$up" "$t" >>"$work/u"
    done
    r=$(median <"$work/r"); u=$(median <"$work/u")
    printf "%-6s %12s %12s %8s\n" "$t" "$r" "$u" "$(ratio "$u" "$r")"
  done
  local lr lu
  lr=$(wc -l <"$work/redis.monitor"); lu=$(wc -l <"$work/rudis.monitor")
  echo "monitor lines: redis $lr, rudis $lu"
}

for p in "${parts[@]}"; do "$p"; done
