#!/bin/sh
# SAVE time, file size and load time of N keys of mixed types, rudis vs redis-server.
# Usage: [PORT=first of 4 ports] benches/rdb-vs-redis.sh [N] (default 1000000); needs
# redis-server, redis-cli, python3.
set -e
N=${1:-1000000}
PORT=${PORT:-22101}
BIN=${BIN:-target/release/rudis-server}
T=$(mktemp -d)
python3 - "$N" > "$T/cmds" <<'PY'
import sys
n = int(sys.argv[1])
def cmd(*a):
    out = "*%d\r\n" % len(a)
    for x in a:
        x = str(x)
        out += "$%d\r\n%s\r\n" % (len(x.encode()), x)
    sys.stdout.write(out)
for i in range(n):
    k = i % 5
    if k == 0: cmd("SET", "s:%d" % i, "value-%d-%s" % (i, "x" * (i % 40)))
    elif k == 1: cmd("SET", "n:%d" % i, i)
    elif k == 2: cmd("HSET", "h:%d" % i, "a", i, "b", "text-%d" % i, "c", "z" * 10)
    elif k == 3: cmd("RPUSH", "l:%d" % i, "one", "two", i)
    else: cmd("ZADD", "z:%d" % i, 1, "m1", 2.5, "m2", i, "m3")
PY
run() { # name binary port dir
  mkdir -p "$4"
  $2 --port $3 --dir "$4" --appendonly no --save "" >"$4/log" 2>&1 &
  sleep 1
  redis-cli -p $3 --pipe < "$T/cmds" >/dev/null
  s=$(date +%s.%N); redis-cli -p $3 SAVE >/dev/null; e=$(date +%s.%N)
  echo "$1 SAVE $(echo "$e - $s" | bc) s, $(stat -c %s "$4/dump.rdb") bytes"
  redis-cli -p $3 SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  sleep 0.5
}
load() { # name binary port dir(with dump.rdb)
  s=$(date +%s.%N)
  $2 --port $3 --dir "$4" --appendonly no --save "" >"$4/log2" 2>&1 &
  until redis-cli -p $3 PING 2>/dev/null | grep -q PONG; do sleep 0.01; done
  e=$(date +%s.%N)
  echo "$1 load of Redis's dump.rdb: $(echo "$e - $s" | bc) s, $(redis-cli -p $3 DBSIZE) keys"
  redis-cli -p $3 SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  sleep 0.5
}
run redis redis-server $PORT "$T/redis"
run rudis "$BIN" $((PORT + 1)) "$T/rudis"
mkdir -p "$T/l1" "$T/l2"; cp "$T/redis/dump.rdb" "$T/l1/"; cp "$T/redis/dump.rdb" "$T/l2/"
load redis redis-server $((PORT + 2)) "$T/l1"
load rudis "$BIN" $((PORT + 3)) "$T/l2"
rm -rf "$T"
