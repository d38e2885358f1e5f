#!/usr/bin/env bash
# TLS, rudis against a real redis-server side by side (issue 20's targets): both serve a TLS
# port with the same ECDSA P-256 certificate and `tls-auth-clients no`;
#
#   throughput  redis-benchmark --tls SET and GET at -P 1 and -P 16, alternate rounds, medians,
#               ratio rudis/redis (above 1: rudis faster)
#   handshakes  benches/tls-handshakes.py: full handshakes (then PING) per second, ratio
#
#   benches/tls.sh [-n N] [-c C] [-r ROUNDS] [throughput|handshakes ...]
#     defaults: -n 200000 -c 50 -r 3, both parts
#
# The machine is shared: read the ratios of one run together, and run it more than once.
# Needs redis-server, redis-cli, redis-benchmark (Debian's are built with TLS), openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=200000 c=50 rounds=3
while getopts "n:c:r:h" o; do
  case $o in n) n=$OPTARG;; c) c=$OPTARG;; r) rounds=$OPTARG;; *) sed -n 2,13p "$0"; exit 0;; esac
done
shift $((OPTIND - 1))
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(throughput handshakes)
command -v openssl >/dev/null || { echo "tls.sh: openssl missing: apt-get install -y openssl" >&2; exit 2; }
me=tls.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh

cert=$work/cert; mkdir -p "$cert"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$cert/ca.key" -out "$cert/ca.crt" -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$cert/server.key" -out "$cert/server.csr" -subj /CN=127.0.0.1 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\n" >"$cert/ext"
openssl x509 -req -in "$cert/server.csr" -CA "$cert/ca.crt" -CAkey "$cert/ca.key" \
  -CAcreateserial -days 2 -extfile "$cert/ext" -out "$cert/server.crt" 2>/dev/null
tls=(--tls-cert-file "$cert/server.crt" --tls-key-file "$cert/server.key"
     --tls-ca-cert-file "$cert/ca.crt" --tls-auth-clients no)

rp=$(free_port); rt=$(free_port); mkdir -p "$work/redis"
(cd "$work/redis" && exec redis-server --port "$rp" --tls-port "$rt" "${tls[@]}" --bind 127.0.0.1 \
   --save '' --appendonly no --logfile "$work/redis/redis.log") &
pids+=("$!")
up=$(free_port); ut=$(free_port); mkdir -p "$work/rudis"
"$bin" --port "$up" --tls-port "$ut" "${tls[@]}" --bind 127.0.0.1 --dir "$work/rudis" \
  --appendonly no >"$work/rudis/rudis.log" 2>&1 &
pids+=("$!")
wait_pong "$rp"; wait_pong "$up"

throughput() {
  bench() {
    redis-benchmark -p "$1" --tls --cacert "$cert/ca.crt" --csv -t "$2" -n "$n" -c "$c" -P "$3" \
      -r 100000 2>/dev/null | tail -n +2 | tr -d '"' | awk -F, '{print $2}'
  }
  printf "%-8s %12s %12s %8s   (n=%s c=%s rounds=%s)\n" test redis_rps rudis_rps ratio "$n" "$c" "$rounds"
  for P in 1 16; do
    for t in set get; do
      : >"$work/r"; : >"$work/u"
      for _ in $(seq "$rounds"); do
        bench "$rt" $t $P >>"$work/r"
        bench "$ut" $t $P >>"$work/u"
      done
      r=$(median <"$work/r"); u=$(median <"$work/u")
      printf "%-8s %12s %12s %8s\n" "$t P$P" "$r" "$u" "$(ratio "$u" "$r")"
    done
  done
}

handshakes() {
  : >"$work/h"
  for _ in $(seq "$rounds"); do
    python3 benches/tls-handshakes.py "$cert/ca.crt" "$rt" "$ut" >>"$work/h"
  done
  cat "$work/h"
}

for p in "${parts[@]}"; do "$p"; done
