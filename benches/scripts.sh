#!/usr/bin/env bash
# Scripting, rudis against a real redis-server side by side (issue 14's targets):
#
#   evalsha   redis-benchmark -n N -c C EVALSHA <sha of "return redis.call('incr',KEYS[1])"> 1 k,
#             and a script of 10 commands (9 HINCRBY and an HLEN on its one key); alternate
#             rounds, medians, ratio rudis/redis (above 1: rudis faster)
#   cache     SCRIPT LOAD of CACHE distinct scripts, each then run once by EVALSHA (so that every
#             server compiles it): growth of RSS and INFO used_memory_scripts / used_memory_lua
#             on each (ratio above 1: rudis smaller)
#
#   benches/scripts.sh [-n N] [-c C] [-r ROUNDS] [-w WORKERS] [-s CACHE] [evalsha|cache ...]
#     defaults: -n 200000 -c 50 -r 3, rudis's default workers, -s 10000, both parts
#
# The machine is shared: read the ratios of one run together, and run it more than once.
# Needs redis-server, redis-cli, redis-benchmark and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=200000 c=50 rounds=3 w="" cache=10000
while getopts "n:c:r:w:s:h" o; do
  case $o in n) n=$OPTARG;; c) c=$OPTARG;; r) rounds=$OPTARG;; w) w=$OPTARG;; s) cache=$OPTARG;;
    *) sed -n 2,16p "$0"; exit 0;; esac
done
shift $((OPTIND - 1))
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(evalsha cache)
me=scripts.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
info() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v k="$2" '$1==k {print $2}'; }

start_both() {
  rp=$(free_port); mkdir -p "$work/redis"
  (cd "$work/redis" && exec redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no \
     --logfile "$work/redis/redis.log") &
  rpid=$!; pids+=("$rpid")
  up=$(free_port); mkdir -p "$work/rudis"
  "$bin" --port "$up" --bind 127.0.0.1 --dir "$work/rudis" --appendonly no \
    ${w:+--workers "$w"} >"$work/rudis/rudis.log" 2>&1 &
  upid=$!; pids+=("$upid")
  wait_pong "$rp"; wait_pong "$up"
}
stop_both() { kill "$rpid" "$upid" 2>/dev/null || true; wait "$rpid" "$upid" 2>/dev/null || true; }

evalsha() {
  start_both
  local one ten
  one="return redis.call('incr',KEYS[1])"
  ten="for i = 1, 9 do redis.call('hincrby', KEYS[1], 'f' .. i, 1) end return redis.call('hlen', KEYS[1])"
  printf "%-10s %12s %12s %8s   (n=%s c=%s rounds=%s workers=%s)\n" script redis_rps rudis_rps ratio \
    "$n" "$c" "$rounds" "${w:-default}"
  for name in incr ten; do
    local body sha
    [ $name = incr ] && body=$one || body=$ten
    sha=$(redis-cli -p "$rp" script load "$body")
    [ "$(redis-cli -p "$up" script load "$body")" = "$sha" ] || { echo "scripts.sh: SHA differs" >&2; exit 1; }
    local key=k; [ $name = ten ] && key=h
    : >"$work/r"; : >"$work/u"
    for _ in $(seq "$rounds"); do
      for p in "$rp" "$up"; do
        redis-benchmark -p "$p" --csv -n "$n" -c "$c" EVALSHA "$sha" 1 "$key" 2>/dev/null |
          tail -n +2 | tr -d '"' | awk -F, '{print $2}' >>"$work/$([ "$p" = "$rp" ] && echo r || echo u)"
      done
    done
    local r u
    r=$(median <"$work/r"); u=$(median <"$work/u")
    printf "%-10s %12s %12s %8s\n" "$name" "$r" "$u" "$(ratio "$u" "$r")"
  done
  stop_both
}

cache() {
  start_both
  local r0 u0
  r0=$(rss_kb "$rpid"); u0=$(rss_kb "$upid")
  python3 - "$rp" "$up" "$cache" <<'EOF'
import socket, sys
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
for port in map(int, sys.argv[1:3]):
    s = socket.create_connection(("127.0.0.1", port))
    n = int(sys.argv[3])
    batch = b"".join(cmd("EVAL", "return %d + #ARGV" % i, "0") for i in range(n))
    s.sendall(batch)
    got = b""
    while got.count(b"\r\n") < n:
        got += s.recv(1 << 20)
EOF
  local r1 u1 rs us rl ul
  r1=$(rss_kb "$rpid"); u1=$(rss_kb "$upid")
  rs=$(info "$rp" used_memory_scripts); us=$(info "$up" used_memory_scripts)
  rl=$(info "$rp" used_memory_lua); ul=$(info "$up" used_memory_lua)
  printf "%-24s %12s %12s %8s   (%s scripts)\n" figure redis rudis ratio "$cache"
  printf "%-24s %12s %12s %8s\n" "RSS growth (kB)" "$((r1 - r0))" "$((u1 - u0))" "$(ratio "$((r1 - r0))" "$((u1 - u0))")"
  printf "%-24s %12s %12s %8s\n" used_memory_scripts "$rs" "$us" "$(ratio "$rs" "$us")"
  printf "%-24s %12s %12s %8s\n" used_memory_lua "$rl" "$ul" "$(ratio "$rl" "$ul")"
  stop_both
}

for part in "${parts[@]}"; do
  case $part in evalsha) evalsha;; cache) cache;; *) echo "scripts.sh: unknown part $part" >&2; exit 2;; esac
done
