#!/usr/bin/env python3
"""Commands over many keys, rudis against a real redis-server (issue 21, item 1).

    python3 benches/many-keys.py [-b BINARY] [N ...]      (default N: 100000 1000000)

For each N, runs MSET/EXISTS/MGET/TOUCH/DEL/UNLINK with N keys on both servers and prints each
command's time, the ratio rudis/redis (the target: within 3x), and the longest wait a second
client's SET (sent every millisecond meanwhile) saw. Needs redis-server and redis-py.
"""
import os, socket, subprocess, sys, tempfile, threading, time

import redis

args = sys.argv[1:]
binary = "target/release/rudis-server"
if args[:1] == ["-b"]:
    binary, args = args[1], args[2:]
sizes = [int(a) for a in args] or [100_000, 1_000_000]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            return p
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start: {cmd}")


def timed(port, name, argv):
    """Seconds `name argv` took, and the longest a concurrent SET waited meanwhile."""
    stall, done = [0.0], [False]

    def other():
        o = redis.Redis(port=port, socket_timeout=600)
        while not done[0]:
            a = time.time()
            o.set("other", "1")
            stall[0] = max(stall[0], time.time() - a)
            time.sleep(0.001)

    th = threading.Thread(target=other)
    th.start()
    time.sleep(0.05)
    r = redis.Redis(port=port, socket_timeout=600)
    a = time.time()
    r.execute_command(name, *argv)
    took = time.time() - a
    done[0] = True
    th.join()
    return took, stall[0]


def run(port, n):
    keys = [f"key:{i}" for i in range(n)]
    pairs = [x for k in keys for x in (k, "v")]
    out = {}
    for name, argv in [("MSET", pairs), ("EXISTS", keys), ("MGET", keys), ("TOUCH", keys),
                       ("DEL", keys), ("MSET", pairs), ("UNLINK", keys)]:
        label = name if name not in out else name + "#2"
        out[label] = timed(port, name, argv)
    return out


with tempfile.TemporaryDirectory() as d:
    rp, qp = free_port(), free_port()
    rudis = start([binary, "--port", str(rp), "--dir", d, "--appendonly", "no"], rp)
    real = start(["redis-server", "--port", str(qp), "--save", "", "--appendonly", "no",
                  "--dir", d], qp)
    try:
        for n in sizes:
            a, b = run(rp, n), run(qp, n)
            print(f"N = {n}")
            print(f"  {'command':9} {'rudis s':>8} {'redis s':>8} {'ratio':>6}  "
                  f"{'SET stall rudis/redis ms':>24}")
            for k in a:
                print(f"  {k:9} {a[k][0]:8.3f} {b[k][0]:8.3f} {a[k][0] / b[k][0]:6.2f}  "
                      f"{a[k][1] * 1000:11.0f} / {b[k][1] * 1000:.0f}")
    finally:
        rudis.kill()
        real.kill()
