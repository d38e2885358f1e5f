"""What the Python benchmarks in benches/ share: a free local port and a RESP request
encoder (each script imports this from its own directory)."""

import socket
import subprocess


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cmd(*args):
    """One request in RESP: an array of bulk strings (ints and strs encoded as text)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def mixed_data_set(n):
    """N keys of mixed types (strings, integers, hashes, lists, sorted sets), named as
    redis-benchmark's `key:__rand_int__` names them, as one pipeline for `redis-cli --pipe`."""
    out = []
    for i in range(n):
        k = "key:%012d" % i
        t = i % 5
        if t == 0: out.append(cmd("SET", k, "value-%d-%s" % (i, "x" * (i % 40))))
        elif t == 1: out.append(cmd("SET", k, i))
        elif t == 2: out.append(cmd("HSET", k, "a", i, "b", "text-%d" % i, "c", "z" * 10))
        elif t == 3: out.append(cmd("RPUSH", k, "one", "two", i))
        else: out.append(cmd("ZADD", k, 1, "m1", 2.5, "m2", i, "m3"))
    return b"".join(out)


def cli(port, *args):
    """redis-cli's answer, stripped."""
    return subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args],
                          capture_output=True, text=True).stdout.strip()
