#!/usr/bin/env python3
"""BGSAVE under a write load, rudis vs redis-server (issue 16's targets).

Each server gets N keys of mixed types (strings, integers, hashes, lists, sorted sets) named
as redis-benchmark's `key:__rand_int__` names them, so the load overwrites keys the snapshot
still has to write. Then `redis-benchmark -t set -r N` runs twice: once quiet, once while
BGSAVEs follow each other without a pause (Redis forks for each). Reported per server:
requests/s and p99 of both runs, the snapshots made, and peak memory during the saves (the
sum of /proc/PID/smaps_rollup Pss over the server and its fork children, so pages a fork
shares are counted once and its copies on write are counted), over the memory before.

Usage: benches/bgsave-under-load.py [--keys N] [--requests R] [--port P] [--bin PATH]
Needs redis-server, redis-cli and redis-benchmark.
"""
import argparse, os, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_util import cli, mixed_data_set  # noqa: E402

def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def tree_pss(pid):
    total = pss_kb(pid)
    try:
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
    except OSError:
        kids = []
    return total + sum(pss_kb(int(k)) for k in kids)

def bench(port, n, requests):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-r", str(n),
                          "-n", str(requests), "-c", "50", "-d", "20", "--csv", "-q"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f[0] == "SET":
            return float(f[1]), float(f[6])
    raise RuntimeError(out)

def measure(name, argv, port, n, requests):
    d = tempfile.mkdtemp()
    p = subprocess.Popen(argv + ["--port", str(port), "--dir", d, "--appendonly", "no",
                                 "--save", ""], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while cli(port, "PING") != "PONG":
            time.sleep(0.05)
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=mixed_data_set(n),
                       stdout=subprocess.DEVNULL, check=True)
        cli(port, "SAVE")  # warms the file; both start from a written dump.rdb
        quiet = bench(port, n, requests)
        base = tree_pss(p.pid)
        stop = threading.Event()
        peak, saves = [base], [0]
        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], tree_pss(p.pid))
                time.sleep(0.005)
        def saver():
            while not stop.is_set():
                if "rdb_bgsave_in_progress:0" in cli(port, "INFO", "persistence"):
                    if cli(port, "BGSAVE").startswith("Background"):
                        saves[0] += 1
                time.sleep(0.01)
        th = [threading.Thread(target=sample), threading.Thread(target=saver)]
        for t in th: t.start()
        loaded = bench(port, n, requests)
        stop.set()
        for t in th: t.join()
        while "rdb_bgsave_in_progress:1" in cli(port, "INFO", "persistence"):
            time.sleep(0.05)
        print("%s: quiet %.0f rps p99 %.2f ms; under BGSAVE %.0f rps p99 %.2f ms (%d saves);"
              " memory %.1f MB, peak during saves %.1f MB (+%.1f MB)"
              % (name, quiet[0], quiet[1], loaded[0], loaded[1], saves[0],
                 base / 1024, peak[0] / 1024, (peak[0] - base) / 1024), flush=True)
        return quiet, loaded, base, peak[0]
    finally:
        cli(port, "SHUTDOWN", "NOSAVE")
        p.wait()
        subprocess.run(["rm", "-rf", d])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--port", type=int, default=22111)
    ap.add_argument("--bin", default="target/release/rudis-server")
    a = ap.parse_args()
    r = measure("redis", ["redis-server"], a.port, a.keys, a.requests)
    u = measure("rudis", [a.bin], a.port + 1, a.keys, a.requests)
    drop = lambda m: m[1][0] / m[0][0]
    print("throughput kept under BGSAVE: redis %.2f, rudis %.2f (ratio rudis/redis %.2f)"
          % (drop(r), drop(u), drop(u) / drop(r)))
    print("p99 under BGSAVE, rudis/redis: %.2f" % (u[1][1] / r[1][1]))
    print("peak memory during saves, rudis/redis: %.2f; extra over before: rudis %.1f MB"
          " (%.1f%%), redis %.1f MB (%.1f%%)"
          % (u[3] / r[3], (u[3] - u[2]) / 1024, 100.0 * (u[3] - u[2]) / u[2],
             (r[3] - r[2]) / 1024, 100.0 * (r[3] - r[2]) / r[2]))

if __name__ == "__main__":
    main()
