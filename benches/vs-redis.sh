#!/usr/bin/env bash
# rudis against a real redis-server, side by side on this machine, in these parts:
#
#   throughput  redis-benchmark on both, alternate rounds, medians, and the ratio rudis/redis
#   cpu         the CPU time (user+sys) each server spends per request under the same runs: the
#               figure to trust on a busy machine, where rudis's threads get more CPU than
#               Redis's one and requests per second flatter rudis
#   idle        the CPU time each server spends in 10 s with no requests (and -i idle clients)
#   memory      SET key:N <10-byte value> for N=1..KEYS loaded into both (redis-cli --pipe);
#               RSS of each (VmRSS from /proc, and INFO's used_memory_rss where it answers)
#   aof         an AOF of KEYS SETs loaded at start by both: seconds until the first PONG
#   fragment    the memory part's KEYS loaded, then 90% of them deleted (DEL key:N for N not a
#               multiple of 10, pipelined), then FLUSHALL: RSS after each, read again once the
#               allocator has settled (jemalloc hands freed pages back over ~10 s)
#
#   benches/vs-redis.sh [options] [throughput|cpu|idle|memory|aof|fragment ...]
#                (default: throughput cpu memory aof)
#     -t TESTS     redis-benchmark tests (default set,get,incr,hset)
#     -n N         requests per test (default 200000)
#     -c C         parallel clients (default 50)
#     -P P         pipeline depth (default 1)
#     -w W         rudis --workers (default: rudis's own default, 5)
#     -3           redis-benchmark speaks RESP3 (HELLO 3) to both servers
#     -i IDLE      hold IDLE idle connections open to each server during the throughput, cpu
#                  and idle parts (default 0)
#     -a yes|no    appendonly on both servers during the throughput runs, everysec (default no)
#     -r ROUNDS    alternate A/B rounds, median reported (default 3)
#     -k KEYS      keys for the memory, aof and fragment parts (default 1000000)
#     -b BINARY    rudis binary (default: target/release/rudis-server, built if missing)
#     -x ARGS      more rudis flags, e.g. -x "--busy-poll-us 0"
#
# Ratios above 1 mean rudis is faster (throughput), cheaper (cpu) or smaller/quicker (memory, aof).
# Needs redis-server, redis-cli, redis-benchmark (apt-get install -y redis-server redis-tools)
# and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=set,get,incr,hset n=200000 c=50 P=1 w=5 aof=no rounds=3 keys=1000000 proto=() idle=0 extra=""
bin=target/release/rudis-server
while getopts "t:n:c:P:w:a:r:k:b:i:x:3h" o; do
  case $o in t) tests=$OPTARG;; n) n=$OPTARG;; c) c=$OPTARG;; P) P=$OPTARG;; w) w=$OPTARG;;
    a) aof=$OPTARG;; r) rounds=$OPTARG;; k) keys=$OPTARG;; b) bin=$OPTARG;;
    3) proto=(-3);; i) idle=$OPTARG;; x) extra=$OPTARG;;
    h) sed -n 2,34p "$0"; exit 0;; *) sed -n 2,34p "$0"; exit 2;; esac
done
shift $((OPTIND - 1))
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(throughput cpu memory aof)
for t in redis-server redis-benchmark redis-cli python3; do
  command -v $t >/dev/null || { echo "vs-redis: $t missing: apt-get install -y redis-server redis-tools python3" >&2; exit 2; }
done
if [ ! -x "$bin" ]; then cargo build --release -q || exit 2; fi
[ -x "$bin" ] || { echo "vs-redis: no binary at $bin" >&2; exit 2; }
bin=$(realpath "$bin")

work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits until the server answers PING with PONG (not LOADING); prints the seconds it took.
wait_pong() {
  local port=$1 t0=$2
  for _ in $(seq 6000); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && { python3 -c "import time; print(f'{time.time()-$t0:.2f}')"; return 0; }
    sleep 0.05
  done
  echo "vs-redis: nothing answers on port $port" >&2; exit 1
}
now() { python3 -c 'import time; print(time.time())'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
info_rss() { redis-cli -p "$1" info memory 2>/dev/null | tr -d '\r' | awk -F: '$1=="used_memory_rss" {printf "%d", $2/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b>0 ? a/b : 0)}'; }

# start_redis DIR APPENDONLY -> sets $port and $pid
start_redis() {
  port=$(free_port); mkdir -p "$1"
  (cd "$1" && exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly "$2" \
     --appendfsync everysec --logfile "$1/redis.log") &
  pid=$!; pids+=("$pid")
}
# start_rudis DIR APPENDONLY -> sets $port and $pid
start_rudis() {
  port=$(free_port); mkdir -p "$1"
  "$bin" --port "$port" --bind 127.0.0.1 --dir "$1" --appendonly "$2" --appendfsync everysec \
    --workers "$w" $extra >"$1/rudis.log" 2>&1 &
  pid=$!; pids+=("$pid")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# hold_idle PORT: opens $idle connections to PORT that send nothing, until killed.
hold_idle() {
  [ "$idle" -gt 0 ] || return 0
  python3 - "$1" "$idle" >"$work/idle-$1.log" 2>&1 <<'EOF' &
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 64)), hard))
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("holding", len(conns), flush=True)
time.sleep(1e6)
EOF
  pids+=("$!")
  for _ in $(seq 400); do grep -q holding "$work/idle-$1.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "vs-redis: could not open $idle idle connections to $1: $(tail -1 "$work/idle-$1.log")" >&2; exit 1
}

throughput() {
  local t0 rp up rpid upid
  t0=$(now); start_redis "$work/tp-redis" "$aof"; rp=$port rpid=$pid; wait_pong "$rp" "$t0" >/dev/null
  t0=$(now); start_rudis "$work/tp-rudis" "$aof"; up=$port upid=$pid; wait_pong "$up" "$t0" >/dev/null
  hold_idle "$rp"; hold_idle "$up"
  # One run's "rps p99"; a failed run is reported and counts as 0.
  bench() {
    if redis-benchmark ${proto[@]+"${proto[@]}"} -p "$1" --csv -t "$2" -n "$n" -c "$c" -P "$P" -r 100000 \
         >"$work/bench.out" 2>"$work/bench.err"; then
      tail -n +2 "$work/bench.out" | tr -d '"' | awk -F, '{print $2, $7}'
    else
      echo "vs-redis: redis-benchmark -t $2 on port $1 failed: $(grep -v WARN "$work/bench.err" | tail -2)" >&2
      echo "0 0"
    fi
  }
  median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf "%-8s %12s %12s %8s %10s %10s   (n=%s c=%s P=%s workers=%s aof=%s rounds=%s resp=%s idle=%s)\n" \
    test redis_rps rudis_rps ratio redis_p99 rudis_p99 "$n" "$c" "$P" "$w" "$aof" "$rounds" \
    "$([ ${#proto[@]} -gt 0 ] && echo 3 || echo 2)" "$idle"
  local logsum=0 k=0
  for t in ${tests//,/ }; do
    : >"$work/r"; : >"$work/u"
    for _ in $(seq "$rounds"); do
      bench "$rp" "$t" >>"$work/r"
      bench "$up" "$t" >>"$work/u"
    done
    local r u r99 u99 q
    r=$(cut -d' ' -f1 "$work/r" | median); u=$(cut -d' ' -f1 "$work/u" | median)
    r99=$(cut -d' ' -f2 "$work/r" | median); u99=$(cut -d' ' -f2 "$work/u" | median)
    [ -n "$u" ] || u=0
    q=$(ratio "$u" "$r")
    printf "%-8s %12s %12s %8s %10s %10s\n" "$t" "$r" "$u" "$q" "$r99" "$u99"
    logsum=$(awk -v s="$logsum" -v x="$q" 'BEGIN {print s + (x>0 ? log(x) : -100)}'); k=$((k+1))
  done
  awk -v s="$logsum" -v k="$k" 'BEGIN {printf "geomean ratio rudis/redis: %.3f\n", exp(s/k)}'
  stop "$rpid"; stop "$upid"
}

cpu() {
  local t0 rp up rpid upid tick
  tick=$(getconf CLK_TCK)
  cpu_s() { awk -v t="$tick" '{print ($14+$15)/t}' "/proc/$1/stat"; }
  t0=$(now); start_redis "$work/cpu-redis" "$aof"; rp=$port rpid=$pid; wait_pong "$rp" "$t0" >/dev/null
  t0=$(now); start_rudis "$work/cpu-rudis" "$aof"; up=$port upid=$pid; wait_pong "$up" "$t0" >/dev/null
  hold_idle "$rp"; hold_idle "$up"
  printf "%-8s %14s %14s %8s   (us of server CPU per request; n=%s c=%s P=%s aof=%s)\n" \
    test redis_us rudis_us ratio "$n" "$c" "$P" "$aof"
  local t r u a b
  for t in ${tests//,/ }; do
    for s in r:"$rp":"$rpid" u:"$up":"$upid"; do
      IFS=: read -r who p id <<<"$s"
      a=$(cpu_s "$id")
      redis-benchmark ${proto[@]+"${proto[@]}"} -p "$p" -t "$t" -n "$n" -c "$c" -P "$P" -r 100000 -q >/dev/null 2>&1 ||
        echo "vs-redis: redis-benchmark -t $t on port $p failed" >&2
      b=$(cpu_s "$id")
      eval "$who=$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", (b-a)*1e6/n}')"
    done
    printf "%-8s %14s %14s %8s\n" "$t" "$r" "$u" "$(ratio "$r" "$u")"
  done
  stop "$rpid"; stop "$upid"
}

idle() {
  local t0 rp up rpid upid tick a b c d
  tick=$(getconf CLK_TCK)
  cpu_s() { awk -v t="$tick" '{print ($14+$15)/t}' "/proc/$1/stat"; }
  t0=$(now); start_redis "$work/idle-redis" "$aof"; rp=$port rpid=$pid; wait_pong "$rp" "$t0" >/dev/null
  t0=$(now); start_rudis "$work/idle-rudis" "$aof"; up=$port upid=$pid; wait_pong "$up" "$t0" >/dev/null
  hold_idle "$rp"; hold_idle "$up"
  sleep 1
  a=$(cpu_s "$rpid"); c=$(cpu_s "$upid"); sleep 10; b=$(cpu_s "$rpid"); d=$(cpu_s "$upid")
  printf "idle CPU over 10 s (%s idle clients): redis %.2f s, rudis %.2f s\n" "$idle" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {print b-a}')" "$(awk -v a="$c" -v b="$d" 'BEGIN {print b-a}')"
  stop "$rpid"; stop "$upid"
}

# gen_resp sets: SET key:N <10-byte value> for N=1..keys, as RESP.
# gen_resp dels: DEL key:N for the N in 1..keys that are not multiples of 10.
gen_resp() {
  python3 - "$keys" "$1" <<'EOF'
import sys
out = sys.stdout.buffer
n, what = int(sys.argv[1]), sys.argv[2]
chunk = []
for i in range(1, n + 1):
    k = b"key:%d" % i
    if what == "sets":
        chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$10\r\n%010d\r\n" % (len(k), k, i))
    elif i % 10:
        chunk.append(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(k), k))
    if len(chunk) >= 10000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
EOF
}

memory() {
  [ -f "$work/sets.resp" ] || gen_resp sets >"$work/sets.resp"
  printf "%-6s %12s %12s %18s %14s   (%s keys: SET key:N <10 bytes>, appendonly no)\n" \
    server rss_empty_kb rss_full_kb used_memory_rss_kb bytes_per_key "$keys"
  local name t0 before after info
  for name in redis rudis; do
    t0=$(now); "start_$name" "$work/mem-$name" no; wait_pong "$port" "$t0" >/dev/null
    before=$(rss_kb "$pid")
    redis-cli -p "$port" --pipe <"$work/sets.resp" >"$work/pipe-$name.log" 2>&1 ||
      { cat "$work/pipe-$name.log" >&2; exit 1; }
    grep -q "errors: 0, replies: $keys" "$work/pipe-$name.log" ||
      { echo "vs-redis: loading $name: $(tail -1 "$work/pipe-$name.log")" >&2; exit 1; }
    after=$(rss_kb "$pid"); info=$(info_rss "$port"); info=${info:-n/a}
    printf "%-6s %12s %12s %18s %14s\n" "$name" "$before" "$after" "$info" \
      "$(awk -v a="$after" -v b="$before" -v k="$keys" 'BEGIN {printf "%.1f", (a-b)*1024/k}')"
    eval "full_$name=$after"
    stop "$pid"
  done
  echo "memory ratio redis/rudis (RSS full, >1 means rudis is smaller): $(ratio "$full_redis" "$full_rudis")"
}

aof() {
  [ -f "$work/sets.resp" ] || gen_resp sets >"$work/sets.resp"
  printf "%-6s %10s %12s   (an AOF of %s SETs, %s MB)\n" server load_s rss_kb "$keys" \
    "$(du -m "$work/sets.resp" | cut -f1)"
  local name t0 secs
  for name in redis rudis; do
    # Redis 7 adopts a lone appendonly.aof in its dir as the base of a new multi-part AOF.
    mkdir -p "$work/aof-$name"; cp "$work/sets.resp" "$work/aof-$name/appendonly.aof"
    t0=$(now); "start_$name" "$work/aof-$name" yes; secs=$(wait_pong "$port" "$t0")
    [ "$(redis-cli -p "$port" get "key:$keys")" = "$(printf %010d "$keys")" ] ||
      { echo "vs-redis: $name did not load the AOF" >&2; exit 1; }
    printf "%-6s %10s %12s\n" "$name" "$secs" "$(rss_kb "$pid")"
    eval "secs_$name=$secs"
    stop "$pid"
  done
  echo "aof load ratio redis/rudis (>1 means rudis loads faster): $(ratio "$secs_redis" "$secs_rudis")"
}

fragment() {
  [ -f "$work/sets.resp" ] || gen_resp sets >"$work/sets.resp"
  [ -f "$work/dels.resp" ] || gen_resp dels >"$work/dels.resp"
  local settle=12 dels=$((keys - keys / 10))
  printf "%-6s %10s %10s %12s %14s   (RSS kB: %s keys, %s deleted, FLUSHALL; settled = %ss later)\n" \
    server full_kb del_kb del_settled flush_settled "$keys" "$dels" "$settle"
  local name t0 full del del_settled flushed
  for name in redis rudis; do
    t0=$(now); "start_$name" "$work/frag-$name" no; wait_pong "$port" "$t0" >/dev/null
    redis-cli -p "$port" --pipe <"$work/sets.resp" >"$work/fpipe-$name.log" 2>&1 ||
      { cat "$work/fpipe-$name.log" >&2; exit 1; }
    full=$(rss_kb "$pid")
    redis-cli -p "$port" --pipe <"$work/dels.resp" >"$work/fdel-$name.log" 2>&1 ||
      { cat "$work/fdel-$name.log" >&2; exit 1; }
    [ "$(redis-cli -p "$port" dbsize)" = $((keys / 10)) ] ||
      { echo "vs-redis: $name did not delete $dels keys: $(tail -1 "$work/fdel-$name.log")" >&2; exit 1; }
    del=$(rss_kb "$pid"); sleep "$settle"; del_settled=$(rss_kb "$pid")
    redis-cli -p "$port" flushall >/dev/null; sleep "$settle"; flushed=$(rss_kb "$pid")
    printf "%-6s %10s %10s %12s %14s\n" "$name" "$full" "$del" "$del_settled" "$flushed"
    stop "$pid"
  done
}

for part in "${parts[@]}"; do
  case $part in throughput|cpu|idle|memory|aof|fragment) "$part"; echo;; *) echo "vs-redis: unknown part $part" >&2; exit 2;; esac
done
