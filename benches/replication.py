#!/usr/bin/env python3
"""Replication, rudis vs redis-server (issue 17's targets), each server replicating to one of
its own kind.

1. Full sync: the master holds N keys of mixed types; a fresh replica is started; the time
   from its start until its link is up with all N keys loaded.
2. Under load: `redis-benchmark -t set` against the master with the replica attached. Reported:
   the master's requests/s and p99, and the replication lag sampled every 50 ms during the run
   (master_repl_offset minus the replica's slave_repl_offset, in bytes, and how long the
   replica took to catch up once the load stopped).

Usage: benches/replication.py [--keys N] [--requests R] [--pipeline P] [--bin PATH]
Needs redis-server, redis-cli and redis-benchmark.
"""
import argparse, os, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_util import cli, free_port, mixed_data_set  # noqa: E402


def info(port, field):
    for line in cli(port, "INFO", "replication").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def start(argv, port, extra):
    d = tempfile.mkdtemp()
    p = subprocess.Popen(argv + ["--port", str(port), "--dir", d, "--appendonly", "no",
                                 "--save", ""] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while cli(port, "PING") != "PONG":
        time.sleep(0.02)
    return p


def bench(port, n, requests, pipeline):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-r", str(n),
                          "-n", str(requests), "-c", "50", "-P", str(pipeline), "-d", "20",
                          "--csv", "-q"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f[0] == "SET":
            return float(f[1]), float(f[6])
    raise RuntimeError(out)


def measure(name, argv, n, requests, pipeline, replicaof_flag):
    mport, rport = free_port(), free_port()
    master = start(argv, mport, ["--repl-diskless-sync-delay", "0"])
    replica = None
    try:
        subprocess.run(["redis-cli", "-p", str(mport), "--pipe"], input=mixed_data_set(n),
                       stdout=subprocess.DEVNULL, check=True)
        t0 = time.time()
        replica = start(argv, rport, replicaof_flag(mport))
        while not (info(rport, "master_link_status") == "up"
                   and cli(rport, "DBSIZE") == str(n)):
            time.sleep(0.01)
        sync_s = time.time() - t0
        lags = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    m = int(info(mport, "master_repl_offset") or 0)
                    r = int(info(rport, "slave_repl_offset") or 0)
                    lags.append(max(0, m - r))
                except ValueError:
                    pass
                time.sleep(0.05)

        th = threading.Thread(target=sample)
        th.start()
        rps, p99 = bench(mport, n, requests, pipeline)
        stopped = time.time()
        done.set()
        th.join()
        want = info(mport, "master_repl_offset")
        while info(rport, "slave_repl_offset") != want:
            time.sleep(0.005)
        catch_up = time.time() - stopped
        return {"sync_s": sync_s, "rps": rps, "p99": p99,
                "lag_max": max(lags or [0]), "catch_up_s": catch_up}
    finally:
        for p in (replica, master):
            if p:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2_000_000)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target",
                                                  "release", "rudis-server"))
    a = ap.parse_args()
    res = {}
    res["redis"] = measure("redis", ["redis-server"], a.keys, a.requests, a.pipeline,
                           lambda m: ["--replicaof", "127.0.0.1", str(m)])
    res["rudis"] = measure("rudis", [a.bin], a.keys, a.requests, a.pipeline,
                           lambda m: ["--replicaof", "127.0.0.1 %d" % m])
    for k, r in res.items():
        print("%-6s full sync of %d keys %.2f s; SET P%d with a replica %.0f req/s p99 %.2f ms; "
              "lag max %d bytes, caught up %.3f s after the load"
              % (k, a.keys, r["sync_s"], a.pipeline, r["rps"], r["p99"], r["lag_max"],
                 r["catch_up_s"]))
    ru, re_ = res["rudis"], res["redis"]
    print("ratios rudis/redis: full sync time %.2f (<= 1 wanted), throughput with a replica "
          "%.2f (>= 1 wanted)" % (ru["sync_s"] / re_["sync_s"], ru["rps"] / re_["rps"]))


if __name__ == "__main__":
    main()
