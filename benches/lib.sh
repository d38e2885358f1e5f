# What the shell benches share, sourced after `cd` to the repository: the build, a temp dir
# and the processes to kill on exit, free ports, waiting for PONG, ratios and medians.
# The sourcing script sets $me (its name, for messages) first.
for t in redis-server redis-benchmark redis-cli python3; do
  command -v $t >/dev/null || { echo "$me: $t missing: apt-get install -y redis-server redis-tools python3" >&2; exit 2; }
done
# RUDIS_BIN: another rudis binary to measure (default: this tree's release build).
if [ -n "${RUDIS_BIN:-}" ]; then bin=$(realpath "$RUDIS_BIN"); else
  cargo build --release -q; bin=$(realpath target/release/rudis-server); fi
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_pong() {
  for _ in $(seq 400); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done
  echo "$me: nothing answers on port $1" >&2; exit 1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b>0 ? a/b : 0)}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Starts a redis-server and a rudis, no persistence, each in its own dir under $work, with
# more flags for each (REDIS_ARGS, RUDIS_ARGS arrays, if set): $rp and $up are their ports.
start_pair() {
  rp=$(free_port); mkdir -p "$work/redis"
  (cd "$work/redis" && exec redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no \
     --logfile "$work/redis/redis.log" ${REDIS_ARGS[@]+"${REDIS_ARGS[@]}"}) &
  pids+=("$!")
  up=$(free_port); mkdir -p "$work/rudis"
  "$bin" --port "$up" --bind 127.0.0.1 --dir "$work/rudis" --appendonly no \
    ${RUDIS_ARGS[@]+"${RUDIS_ARGS[@]}"} >"$work/rudis/rudis.log" 2>&1 &
  pids+=("$!")
  wait_pong "$rp"; wait_pong "$up"
}
