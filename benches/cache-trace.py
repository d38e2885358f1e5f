#!/usr/bin/env python3
"""A cache under maxmemory: rudis against redis-server on the same trace.

    benches/cache-trace.py [--ops N] [--keys K] [--value BYTES] [--maxmemory MB] [--port P]

Keys are Zipf-distributed (s = 1) over K distinct keys, about ten times more than fit in
`maxmemory` with values of BYTES; each operation is a GET (90 %) or a SET (10 %), and a GET
that misses is followed by a SET of that key, as a cache fills itself. Runs allkeys-lru and
allkeys-lfu on each server, pipelined 64 deep, and prints hit ratio, throughput, RSS and
evicted keys. Then a pure-SET load at the limit (redis-benchmark -t set over random keys)
for each server, three alternating rounds: eviction's own speed.

The machine is shared: throughput figures are noisy, run it a few times.
"""
import argparse
import bisect
import itertools
import os
import random
import subprocess
import sys
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zipf_sampler(n, s, rng):
    cum = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))
    total = cum[-1]
    # Ranks are scattered over the key names, so hot keys are not neighbours.
    perm = list(range(n))
    rng.shuffle(perm)
    return lambda: perm[bisect.bisect_left(cum, rng.random() * total)]


def rss(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def start(kind, port, policy, maxmemory_mb):
    common = ["--port", str(port), "--maxmemory", f"{maxmemory_mb}mb",
              "--maxmemory-policy", policy, "--appendonly", "no", "--save", ""]
    if kind == "rudis":
        cmd = [os.path.join(ROOT, "target/release/rudis-server")] + common
    else:
        cmd = ["redis-server"] + common
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port)
    for _ in range(100):
        try:
            c.ping()
            return p, c
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"{kind} did not start")


def trace(ops, keys, seed):
    rng = random.Random(seed)
    pick = zipf_sampler(keys, 1.0, rng)
    return [(rng.random() < 0.9, pick()) for _ in range(ops)]


def run(c, ops, value):
    hits = gets = 0
    start = time.time()
    for at in range(0, len(ops), 64):
        batch = ops[at:at + 64]
        pipe = c.pipeline(transaction=False)
        for is_get, k in batch:
            if is_get:
                pipe.get(f"key:{k}")
            else:
                pipe.set(f"key:{k}", value)
        replies = pipe.execute(raise_on_error=False)
        misses = c.pipeline(transaction=False)
        n = 0
        for (is_get, k), r in zip(batch, replies):
            if is_get:
                gets += 1
                if r is None:
                    misses.set(f"key:{k}", value)
                    n += 1
                else:
                    hits += 1
        if n:
            misses.execute(raise_on_error=False)
    return hits / max(gets, 1), len(ops) / (time.time() - start)


def set_load(port, n, value_size):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(n), "-r", "100000000",
         "-d", str(value_size), "-c", "50", "-P", "16", "-q"],
        capture_output=True, text=True).stdout
    for part in out.replace("\r", "\n").split("\n"):
        if part.startswith("SET:") and "requests per second" in part:
            return float(part.split()[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=300_000)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value", type=int, default=1000)
    ap.add_argument("--maxmemory", type=int, default=100)
    ap.add_argument("--port", type=int, default=24100)
    a = ap.parse_args()
    value = b"x" * a.value
    warm = trace(a.ops, a.keys, 1)
    measured = trace(a.ops, a.keys, 2)
    limit = a.maxmemory << 20
    print(f"{a.keys} keys of {a.value} bytes (~{limit // (a.value + 100)} fit), "
          f"{a.ops} ops warm-up + {a.ops} measured, maxmemory {a.maxmemory}mb")
    results = {}
    for policy in ["allkeys-lru", "allkeys-lfu"]:
        for kind in ["redis", "rudis"]:
            p, c = start(kind, a.port, policy, a.maxmemory)
            try:
                run(c, warm, value)
                hit, tput = run(c, measured, value)
                info = c.info()
                r = rss(p.pid)
                anon, file = rss(p.pid, "RssAnon"), rss(p.pid, "RssFile")
                results[(policy, kind)] = (hit, tput)
                print(f"{policy:12} {kind:6} hit {hit:.4f}  {tput:9.0f} ops/s  "
                      f"rss {r / 2**20:6.1f} MB ({r / limit:.2f}x limit; anon {anon / 2**20:.1f}, "
                      f"file {file / 2**20:.1f})  "
                      f"used {info['used_memory'] / 2**20:6.1f} MB  "
                      f"evicted {info['evicted_keys']}")
            finally:
                p.terminate()
                p.wait()
        (hr, tr), (hu, tu) = results[(policy, "redis")], results[(policy, "rudis")]
        print(f"{policy:12} rudis/redis: hit {hu / hr:.3f}x  throughput {tu / tr:.2f}x")
    # Three alternating rounds, medians: one round is within this machine's noise.
    rounds = {"redis": [], "rudis": []}
    for _ in range(3):
        for kind in ["redis", "rudis"]:
            p, c = start(kind, a.port, "allkeys-lru", a.maxmemory)
            try:
                set_load(a.port, 200_000, a.value)  # fill up to the limit
                rps = set_load(a.port, 200_000, a.value)
                rounds[kind].append(rps)
                print(f"SET at the limit {kind:6} {rps:9.0f} rps  evicted "
                      f"{c.info()['evicted_keys']}  rss {rss(p.pid) / 2**20:.1f} MB")
            finally:
                p.terminate()
                p.wait()
    med = {k: sorted(v)[1] for k, v in rounds.items()}
    print(f"SET at the limit rudis/redis (medians of 3): {med['rudis'] / med['redis']:.2f}x")

if __name__ == "__main__":
    sys.exit(main())
