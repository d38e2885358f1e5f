#!/usr/bin/env python3
"""Issue 11's queue workload, against rudis and a real redis-server side by side.

    benches/brpop-queue.py [--consumers 1000] [--keys 100] [--producers 10] [--elements 200000]
                           [--procs 2] [--rounds 3] [--workers W] [--bin target/release/rudis-server]
                           [--crash] [--rudis-arg=ARG ...]

CONSUMERS clients blocked on BRPOP over KEYS keys (consumer i waits on key i % KEYS, and sends
its next BRPOP as soon as it is served), fed by PRODUCERS clients that LPUSH ELEMENTS unique
elements round-robin over the keys, each waiting for its reply before the next push. The client
side runs in PROCS processes, each an event loop over its share of the connections (Python is
slow: with fewer processes the client, not the server, is what is measured).

Reported per server: elements per second (from the first push to the last delivery, median of
ROUNDS, alternating servers) and the server's CPU seconds; the check that every element was
delivered exactly once; and the ratio rudis/redis.

--crash: both servers under `appendonly yes, appendfsync always`; each is killed with SIGKILL
halfway through, restarted on the same directory, and what is still queued is read back:
every element acknowledged to a producer must be delivered or still queued, none twice. Replies
in flight at the kill (at most one per consumer) are the only ones that may be missing, for
both servers; their number is reported.
"""
import argparse
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_util import cmd, free_port  # noqa: E402


def parse(buf, i=0):
    """One reply from buf[i:]: (value, next index), or None if incomplete."""
    if i >= len(buf):
        return None
    end = buf.find(b"\r\n", i)
    if end < 0:
        return None
    t, line = buf[i:i + 1], buf[i + 1:end]
    if t in (b"+", b"-", b":"):
        return (t + line, end + 2)
    if t == b"$":
        n = int(line)
        if n < 0:
            return (None, end + 2)
        if len(buf) < end + 2 + n + 2:
            return None
        return (buf[end + 2:end + 2 + n], end + 4 + n)
    if t == b"*":
        n = int(line)
        if n < 0:
            return (None, end + 2)
        items, j = [], end + 2
        for _ in range(n):
            r = parse(buf, j)
            if r is None:
                return None
            items.append(r[0])
            j = r[1]
        return (items, j)
    if t == b"_":
        return (None, end + 2)
    raise ValueError("bad reply %r" % buf[i:i + 40])


class Conn:
    def __init__(self, port, role, key, elems=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.role, self.key, self.buf = role, key, b""
        self.elems = elems or []
        self.next = 0
        self.sent_elem = None


def client_proc(port, consumers, producers, keys, total, counter, results, start_evt, crash):
    """One process's share: `consumers` (ids) and `producers` (lists of elements)."""
    sel = selectors.DefaultSelector()
    conns = []
    for i in consumers:
        c = Conn(port, "c", b"q%d" % (i % keys))
        conns.append(c)
    for elems in producers:
        conns.append(Conn(port, "p", None, elems))
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
        if c.role == "c":
            c.sock.sendall(cmd(b"BRPOP", c.key, 0))
    got, acked = [], []
    start_evt.wait()
    for c in conns:
        if c.role == "p" and c.elems:
            c.sent_elem = c.elems[0]
            c.sock.sendall(cmd(b"LPUSH", b"q%d" % (c.next % keys), c.elems[0]))
    local = 0
    alive = len(conns)
    last_check = time.time()
    while alive:
        events = sel.select(timeout=0.2)
        for key, _ in events:
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                sel.unregister(c.sock)
                c.sock.close()
                alive -= 1
                continue
            c.buf += data
            i = 0
            while True:
                r = parse(c.buf, i)
                if r is None:
                    break
                value, i = r
                if c.role == "c":
                    got.append(value[1])
                    local += 1
                    try:
                        c.sock.sendall(cmd(b"BRPOP", c.key, 0))
                    except OSError:
                        pass
                else:
                    if isinstance(value, bytes) and value.startswith(b":"):
                        acked.append(c.sent_elem)
                    c.next += 1
                    if c.next < len(c.elems):
                        c.sent_elem = c.elems[c.next]
                        try:
                            c.sock.sendall(cmd(b"LPUSH", b"q%d" % (c.next % keys), c.sent_elem))
                        except OSError:
                            pass
            c.buf = c.buf[i:]
        now = time.time()
        if local or now - last_check > 0.1:
            with counter.get_lock():
                counter.value += local
                done = counter.value >= total
            local = 0
            last_check = now
            if done and not crash:
                break
    results.put((got, acked, time.time()))


def run_workload(port, a, crash=False, kill=None):
    per_prod = a.elements // a.producers
    elems = [[b"p%d-%d" % (p, n) for n in range(per_prod)] for p in range(a.producers)]
    total = per_prod * a.producers
    counter = mp.Value("q", 0)
    results = mp.Queue()
    start_evt = mp.Event()
    procs = []
    for k in range(a.procs):
        cons = list(range(k, a.consumers, a.procs))
        prods = elems[k::a.procs]
        p = mp.Process(target=client_proc,
                       args=(port, cons, prods, a.keys, total, counter, results, start_evt, crash))
        p.start()
        procs.append(p)
    # Every consumer blocked before the clock starts.
    wait_blocked(port, a.consumers)
    t0 = time.time()
    start_evt.set()
    if kill:
        while counter.value < total // 2:
            time.sleep(0.005)
        kill()
    out = [results.get() for _ in procs]
    for p in procs:
        p.join()
    got = [e for o in out for e in o[0]]
    acked = [e for o in out for e in o[1]]
    t1 = max(o[2] for o in out)
    return got, acked, total, t1 - t0


def wait_blocked(port, n, timeout=60):
    s = socket.create_connection(("127.0.0.1", port))
    deadline = time.time() + timeout
    while time.time() < deadline:
        s.sendall(cmd(b"INFO", b"clients"))
        buf = b""
        while parse(buf) is None:
            buf += s.recv(65536)
        if b"blocked_clients:%d\r\n" % n in parse(buf)[0]:
            s.close()
            return
        time.sleep(0.01)
    raise SystemExit("never %d blocked clients on port %d" % (n, port))


class Server:
    def __init__(self, kind, a, crash):
        self.kind, self.a, self.crash = kind, a, crash
        self.dir = tempfile.mkdtemp(prefix="brpop-%s-" % kind)
        self.start()

    def start(self):
        self.port = free_port()
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.crash else ["--appendonly", "no"]
        if self.kind == "redis":
            argv = ["redis-server", "--port", str(self.port), "--save", "", "--dir", self.dir,
                    "--maxclients", "10000", "--logfile", os.path.join(self.dir, "log")] + aof
        else:
            argv = [self.a.bin, "--port", str(self.port), "--dir", self.dir, "--maxclients", "10000"] + aof
            if self.a.workers:
                argv += ["--workers", str(self.a.workers)]
            argv += self.a.rudis_arg
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port)).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.2)

    def cpu(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def queued(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        left = []
        for k in range(self.a.keys):
            s.sendall(cmd(b"LRANGE", b"q%d" % k, 0, -1))
            buf = b""
            while parse(buf) is None:
                buf += s.recv(1 << 20)
            left += parse(buf)[0]
        s.close()
        return left


def check_once(got, acked, left=()):
    seen = {}
    for e in list(got) + list(left):
        seen[e] = seen.get(e, 0) + 1
    twice = sum(1 for n in seen.values() if n > 1)
    missing = sum(1 for e in acked if e not in seen)
    return twice, missing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--consumers", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--producers", type=int, default=10)
    ap.add_argument("--elements", type=int, default=200000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--bin", default="target/release/rudis-server")
    ap.add_argument("--crash", action="store_true")
    ap.add_argument("--rudis-arg", action="append", default=[],
                    help="one more argument for rudis (repeat: --rudis-arg=--busy-poll-us --rudis-arg=0)")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        subprocess.check_call(["cargo", "build", "--release"])
    rates = {"redis": [], "rudis": []}
    cpus = {"redis": [], "rudis": []}
    for rnd in range(a.rounds):
        for kind in ("redis", "rudis"):
            srv = Server(kind, a, a.crash)
            try:
                cpu0 = srv.cpu()
                if a.crash:
                    got, acked, total, secs = run_workload(srv.port, a, crash=True, kill=srv.kill9)
                    srv.start()
                    left = srv.queued()
                    twice, missing = check_once(got, acked, left)
                    print("%-5s round %d: killed mid-run; %d acknowledged, %d delivered, %d still "
                          "queued after restart; twice: %d, missing (in flight at the kill): %d"
                          % (kind, rnd, len(acked), len(got), len(left), twice, missing))
                    if twice or missing > a.consumers:
                        raise SystemExit("%s lost or duplicated elements" % kind)
                    continue
                got, acked, total, secs = run_workload(srv.port, a)
                cpu = srv.cpu() - cpu0
                twice, missing = check_once(got, acked)
                ok = twice == 0 and missing == 0 and len(got) == total
                print("%-5s round %d: %d elements in %.2f s = %.0f/s, server CPU %.2f s, "
                      "exactly once: %s" % (kind, rnd, total, secs, total / secs, cpu,
                                             "yes" if ok else "NO (%d twice, %d missing)" % (twice, missing)))
                if not ok:
                    raise SystemExit("%s did not deliver every element exactly once" % kind)
                rates[kind].append(total / secs)
                cpus[kind].append(cpu)
            finally:
                srv.stop()
    if not a.crash:
        r, d = statistics.median(rates["rudis"]), statistics.median(rates["redis"])
        print("median: rudis %.0f/s, redis %.0f/s, ratio %.2f; server CPU per element: rudis %.1f us, "
              "redis %.1f us" % (r, d, r / d, statistics.median(cpus["rudis"]) / a.elements * 1e6,
                                statistics.median(cpus["redis"]) / a.elements * 1e6))


if __name__ == "__main__":
    main()
