#!/usr/bin/env bash
# Sorted sets, rudis against a real redis-server on this machine (issue 12's targets):
#
#   throughput  one sorted set of 1,000,000 members "m:NNNNNNNNNNNN" (score N) loaded into each,
#               then redis-benchmark's custom-command mode on it, -c 50, at -P 1 and -P 16:
#                 ZADD z __rand_int__ m:__rand_int__      ZPOPMIN z
#                 ZRANK z m:__rand_int__                  ZSCORE z m:__rand_int__
#                 ZRANGEBYSCORE z __rand_int__ +inf LIMIT 0 10
#               requests per second of each, the ratio rudis/redis, and the geometric mean
#   memory      RSS (VmRSS) after loading, in fresh servers: one sorted set of 1,000,000 members
#               (big), and 1,000,000 sorted sets of 10 members each (many); ratio rudis/redis
#
#   benches/zsets.sh [-n N] [-b BINARY] [throughput|memory ...]   (default: both)
#
# Ratios above 1 mean rudis is faster (throughput); below 1 that it holds less (memory).
# Needs redis-server, redis-cli, redis-benchmark and python3. The machine may be shared:
# repeat a run before trusting a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
n=200000
bin=target/release/rudis-server
while getopts "n:b:h" o; do
  case $o in n) n=$OPTARG;; b) bin=$OPTARG;; *) sed -n 2,17p "$0"; exit 2;; esac
done
shift $((OPTIND - 1))
parts=${*:-throughput memory}
if [ ! -x "$bin" ]; then cargo build --release -q || exit 2; fi
bin=$(realpath "$bin")
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

gen() {  # big|many -> RESP on stdout
  python3 - "$1" <<'PY'
import sys
out = sys.stdout.buffer
def cmd(*a):
    s = b"*%d\r\n" % len(a)
    for x in a:
        x = str(x).encode()
        s += b"$%d\r\n%s\r\n" % (len(x), x)
    return s
buf = []
if sys.argv[1] == "big":
    for i in range(0, 1000000, 100):
        args = []
        for j in range(i, i + 100):
            args += [j, "m:%012d" % j]
        buf.append(cmd("ZADD", "z", *args))
else:
    for i in range(1000000):
        args = []
        for j in range(10):
            args += [j + 1, "member:%d" % j]
        buf.append(cmd("ZADD", "zs:%d" % i, *args))
out.write(b"".join(buf))
PY
}

start() {  # kind port -> pid in $started
  if [ "$1" = redis ]; then
    redis-server --port "$2" --save '' --appendonly no --daemonize no >/dev/null &
  else
    mkdir -p "$work/d$2"; "$bin" --port "$2" --appendonly no --dir "$work/d$2" >/dev/null 2>&1 &
  fi
  started=$!; pids+=("$started")
  for _ in $(seq 100); do redis-cli -p "$2" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

rps() {  # port P command... -> requests per second
  local port=$1 P=$2; shift 2
  redis-benchmark -p "$port" -c 50 -n "$n" -P "$P" -r 1000000 --csv "$@" 2>/dev/null |
    awk -F'"' 'NR==2 {print $4}'
}

if [[ " $parts " == *" throughput "* ]]; then
  gen big > "$work/big.resp"
  rp=$(free_port); start redis "$rp"; redis_pid=$started
  up=$(free_port); start rudis "$up"; rudis_pid=$started
  for p in "$rp" "$up"; do redis-cli -p "$p" --pipe < "$work/big.resp" >/dev/null; done
  for P in 1 16; do
    echo "throughput, -c 50 -P $P -n $n, one sorted set of 1,000,000 members"
    logsum=0; count=0
    while IFS= read -r line; do
      # shellcheck disable=SC2086
      a=$(rps "$rp" "$P" $line); b=$(rps "$up" "$P" $line)
      ratio=$(python3 -c "print(f'{$b/$a:.2f}')")
      printf '  %-45s redis %10s  rudis %10s  ratio %s\n' "$line" "$a" "$b" "$ratio"
      logsum=$(python3 -c "import math; print($logsum + math.log($ratio))"); count=$((count + 1))
    done <<'CMDS'
ZADD z __rand_int__ m:__rand_int__
ZRANK z m:__rand_int__
ZSCORE z m:__rand_int__
ZRANGEBYSCORE z __rand_int__ +inf LIMIT 0 10
ZPOPMIN z
CMDS
    python3 -c "import math; print(f'  geometric mean {math.exp($logsum / $count):.2f}')"
  done
  stop "$redis_pid"; stop "$rudis_pid"
fi

if [[ " $parts " == *" memory "* ]]; then
  for what in big many; do
    gen "$what" > "$work/$what.resp"
    declare -A kb=()
    for kind in redis rudis; do
      port=$(free_port); start "$kind" "$port"
      redis-cli -p "$port" --pipe < "$work/$what.resp" >/dev/null
      sleep 1
      kb[$kind]=$(rss "$started")
      stop "$started"
    done
    python3 -c "print(f'memory $what: redis {${kb[redis]}/1024:.1f} MB, rudis {${kb[rudis]}/1024:.1f} MB, ratio {${kb[rudis]}/${kb[redis]}:.2f}')"
    rm -f "$work/$what.resp"
  done
fi
