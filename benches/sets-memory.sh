#!/usr/bin/env bash
# RSS of rudis and of a real redis-server after loading sets (issue 11's memory targets):
#
#   ints    1,000,000 sets of 5 integers (SADD set:N N%1000 ... +4): intsets
#   strs    one set of 1,000,000 strings "member:N" (SADD of 100 at a time): a hash table
#   long    one set of 1,000,000 22-byte strings "member:element:NNNNNNN"
#
#   benches/sets-memory.sh [-b BINARY] [ints|strs|long ...]   (default: all three)
#
# Loads each with redis-cli --pipe into a fresh server, waits a second, reads VmRSS from /proc,
# prints both and the ratio rudis/redis (< 1: rudis holds less). Needs redis-server, redis-cli.
set -euo pipefail
bin=target/release/rudis-server
while getopts "b:" o; do
  case $o in b) bin=$OPTARG;; *) sed -n 2,11p "$0"; exit 2;; esac
done
shift $((OPTIND - 1))
parts=${*:-ints strs long}
if [ ! -x "$bin" ]; then cargo build --release -q || exit 2; fi
bin=$(realpath "$bin")
work=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

gen() {
  python3 - "$1" <<'EOF'
import sys
out = sys.stdout.buffer
def cmd(*a):
    s = b"*%d\r\n" % len(a)
    for x in a:
        x = str(x).encode()
        s += b"$%d\r\n%s\r\n" % (len(x), x)
    return s
mode = sys.argv[1]
buf = []
if mode == "ints":
    for i in range(1000000):
        b = i % 1000
        buf.append(cmd("SADD", "set:%d" % i, b, b + 1, b + 2, b + 3, b + 4))
else:
    fmt = "member:%d" if mode == "strs" else "member:element:%07d"
    for i in range(0, 1000000, 100):
        buf.append(cmd("SADD", "bigset", *[fmt % j for j in range(i, i + 100)]))
out.write(b"".join(buf))
EOF
}

rss() {  # server kind, data file -> RSS in kB after loading it
  local port; port=$(free_port)
  if [ "$1" = redis ]; then
    redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null &
  else
    mkdir -p "$work/d$port"; "$bin" --port "$port" --appendonly no --dir "$work/d$port" >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" --pipe < "$2" >/dev/null
  sleep 1
  awk '/VmRSS/ {print $2}' "/proc/$pid/status"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

printf "%-6s %12s %12s %7s\n" part redis_kB rudis_kB ratio
for p in $parts; do
  gen "$p" > "$work/$p.resp"
  r=$(rss redis "$work/$p.resp"); u=$(rss rudis "$work/$p.resp")
  printf "%-6s %12s %12s %7.3f\n" "$p" "$r" "$u" "$(echo "$u / $r" | bc -l)"
done
