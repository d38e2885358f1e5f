#!/usr/bin/env bash
# ACL cost, rudis against a real redis-server side by side (issue 20's targets):
#
#   Both servers get USERS users of PATTERNS key patterns each (the pattern the benchmark's keys
#   match last), then redis-benchmark SET and GET run as one of them ("restricted") and as the
#   default user, alternate rounds, medians:
#     restricted  rudis/redis with the same ACL (above 1: rudis faster)
#     cost        rudis restricted / rudis default (1 - this is what the checks cost)
#
#   benches/acl.sh [-n N] [-c C] [-P P] [-r ROUNDS] [-u USERS] [-p PATTERNS]
#     defaults: -n 200000 -c 50 -P 1 -r 3 -u 50 -p 20
#
# The machine is shared: read the ratios of one run together, and run it more than once.
# Needs redis-server, redis-cli, redis-benchmark and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=200000 c=50 P=1 rounds=3 users=50 patterns=20
while getopts "n:c:P:r:u:p:h" o; do
  case $o in n) n=$OPTARG;; c) c=$OPTARG;; P) P=$OPTARG;; r) rounds=$OPTARG;;
    u) users=$OPTARG;; p) patterns=$OPTARG;; *) sed -n 2,14p "$0"; exit 0;; esac
done
me=acl.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh

start_pair

# Each user may run SET and GET on its own 20 patterns; redis-benchmark's keys (key:__rand_int__,
# and "key:" itself) match the last pattern of user u0 only.
for port in "$rp" "$up"; do
  for u in $(seq 0 $((users - 1))); do
    rules=(on ">pw$u" +set +get +ping +config)
    for p in $(seq 1 $((patterns - 1))); do rules+=("~user$u:area$p:*"); done
    [ "$u" -eq 0 ] && rules+=("~key:*") || rules+=("~user$u:last:*")
    redis-cli -p "$port" ACL SETUSER "u$u" "${rules[@]}" >/dev/null
  done
  [ "$(redis-cli -p "$port" --user u0 --pass pw0 --no-auth-warning SET key:1 v)" = OK ] ||
    { echo "acl.sh: the restricted user cannot SET on port $port" >&2; exit 1; }
  [ "$(redis-cli -p "$port" --user u1 --pass pw1 --no-auth-warning SET key:1 v 2>&1)" != OK ] ||
    { echo "acl.sh: another user's pattern let u1 write key:1 on port $port" >&2; exit 1; }
done

# bench PORT TEST [USER]: one run's requests per second.
bench() {
  local auth=()
  [ $# -gt 2 ] && auth=(--user "$3" -a "pw${3#u}")
  redis-benchmark -p "$1" "${auth[@]+"${auth[@]}"}" --csv -t "$2" -n "$n" -c "$c" -P "$P" -r 100000 \
    2>/dev/null | tail -n +2 | tr -d '"' | awk -F, '{print $2}'
}
printf "%-5s %14s %14s %14s %10s %8s   (n=%s c=%s P=%s rounds=%s users=%s patterns=%s)\n" \
  test redis_restr rudis_restr rudis_default restricted cost "$n" "$c" "$P" "$rounds" "$users" "$patterns"
for t in set get; do
  : >"$work/r"; : >"$work/u"; : >"$work/d"
  for _ in $(seq "$rounds"); do
    bench "$rp" $t u0 >>"$work/r"
    bench "$up" $t u0 >>"$work/u"
    bench "$up" $t >>"$work/d"
  done
  r=$(median <"$work/r"); u=$(median <"$work/u"); d=$(median <"$work/d")
  printf "%-5s %14s %14s %14s %10s %8s\n" $t "$r" "$u" "$d" "$(ratio "$u" "$r")" "$(ratio "$u" "$d")"
done
