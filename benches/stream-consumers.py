#!/usr/bin/env python3
"""Issue 15's consumer-group workload, against rudis and a real redis-server side by side.

    benches/stream-consumers.py [--entries 1000000] [--consumers 10] [--count 100]
                                [--rounds 1] [--bin target/release/rudis-server]

ENTRIES entries are added to one stream (redis-benchmark, XADD s * f v), then a group reads
them with CONSUMERS consumers, one process each: every consumer repeats XREADGROUP GROUP g cI
COUNT n STREAMS s > and acknowledges what it got (the XACK of one batch is sent in the same
write as the next XREADGROUP), until the group has nothing left for it.

Reported per server: entries read and acknowledged per second (from the moment every consumer
starts to the last one's end; median of ROUNDS, servers alternating), the server's CPU seconds,
and the check that every entry was delivered once and acknowledged exactly once (the XACK
replies add up to ENTRIES, no ID came twice, and the group ends with nothing pending and a lag
of 0); then the ratio rudis/redis. The client is Python: what it costs is the same for both
servers, so a ratio near 1 can mean the client, not the servers, set the pace.
"""
import argparse
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_util import cmd, free_port  # noqa: E402


def reply_end(buf, pos):
    """Where the RESP2 reply starting at `pos` ends, or None if it is not all there."""
    todo = 1
    while todo:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return None
        t = buf[pos:pos + 1]
        if t == b"$":
            n = int(buf[pos + 1:nl])
            pos = nl + 2 + (n + 2 if n >= 0 else 0)
            if pos > len(buf):
                return None
            todo -= 1
        elif t == b"*":
            n = int(buf[pos + 1:nl])
            pos = nl + 2
            todo += max(n, 0) - 1
        else:
            pos = nl + 2
            todo -= 1
    return pos


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def replies(self, n):
        out = []
        pos = 0
        while len(out) < n:
            end = reply_end(self.buf, pos) if pos < len(self.buf) else None
            if end is None:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buf += chunk
                continue
            out.append(self.buf[pos:end])
            pos = end
        self.buf = self.buf[pos:]
        return out

    def call(self, *args):
        self.s.sendall(cmd(*args))
        return self.replies(1)[0]


ENTRY_ID = re.compile(rb"\*2\r\n\$\d+\r\n(\d+-\d+)\r\n")


def consumer(port, name, count, start, results):
    c = Conn(port)
    read = cmd("XREADGROUP", "GROUP", "g", name, "COUNT", count, "STREAMS", "s", ">")
    seen, acked, pending = [], 0, []
    start.wait()
    while True:
        out = b""
        if pending:
            out += cmd("XACK", "s", "g", *pending)
        c.s.sendall(out + read)
        rs = c.replies(2 if pending else 1)
        if pending:
            acked += int(rs[0][1:-2])
        batch = rs[-1]
        if batch.startswith(b"*-1"):
            break
        pending = ENTRY_ID.findall(batch)
        seen.extend(pending)
    results.put((name, acked, seen, time.time()))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind, binary, port, tmp):
    if kind == "rudis":
        args = [binary, "--port", str(port), "--appendonly", "no", "--save", "", "--dir", tmp]
    else:
        args = ["redis-server", "--port", str(port), "--appendonly", "no", "--save", "",
                "--dir", tmp]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            Conn(port).call("PING")
            return p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start")


def round_on(kind, binary, a):
    tmp = tempfile.mkdtemp()
    port = free_port()
    server = start_server(kind, binary, port, tmp)
    try:
        subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(a.entries), "-P", "100",
                        "-c", "1", "-q", "XADD", "s", "*", "f", "v"],
                       check=True, stdout=subprocess.DEVNULL)
        c = Conn(port)
        assert c.call("XLEN", "s") == b":%d\r\n" % a.entries
        assert c.call("XGROUP", "CREATE", "s", "g", "0").startswith(b"+OK")
        start = mp.Event()
        results = mp.Queue()
        procs = [mp.Process(target=consumer, args=(port, f"c{i}", a.count, start, results))
                 for i in range(a.consumers)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        cpu0 = cpu_seconds(server.pid)
        t0 = time.time()
        start.set()
        got = [results.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = max(r[3] for r in got) - t0
        cpu = cpu_seconds(server.pid) - cpu0
        acked = sum(r[1] for r in got)
        ids = [i for r in got for i in r[2]]
        pending = c.call("XPENDING", "s", "g")
        info = c.call("XINFO", "GROUPS", "s")
        ok = (acked == a.entries and len(ids) == a.entries and len(set(ids)) == a.entries
              and pending.startswith(b"*4\r\n:0\r\n")
              and b"$3\r\nlag\r\n:0\r\n" in info)
        return a.entries / elapsed, cpu, ok, acked, len(set(ids))
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--consumers", type=int, default=10)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--bin", default="target/release/rudis-server")
    a = ap.parse_args()
    rates = {"rudis": [], "redis": []}
    for _ in range(a.rounds):
        for kind in ("rudis", "redis"):
            rate, cpu, ok, acked, unique = round_on(kind, a.bin, a)
            print(f"{kind}: {rate:,.0f} entries/s, server CPU {cpu:.2f} s, acked {acked}, "
                  f"unique {unique}, every entry acknowledged exactly once: {ok}")
            assert ok, f"{kind}: not every entry was acknowledged exactly once"
            rates[kind].append(rate)
    r, s = statistics.median(rates["rudis"]), statistics.median(rates["redis"])
    print(f"rudis/redis: {r / s:.2f}x ({a.consumers} consumers, COUNT {a.count}, "
          f"{a.entries} entries, median of {a.rounds})")


if __name__ == "__main__":
    main()
