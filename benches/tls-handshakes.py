#!/usr/bin/env python3
"""TLS handshakes per second: THREADS threads each connect, complete a handshake, send PING,
read PONG and close, for SECONDS, against each port given (rudis's and redis-server's TLS
ports, started with the same certificate and `tls-auth-clients no`). The client's own cost is
the same for both, so compare the ratio, not the rates.

    benches/tls-handshakes.py CA.crt PORT [PORT...]   (env THREADS=4 DURATION=5 RESUME=0)
"""
import os
import socket
import ssl
import sys
import threading
import time


def hammer(port, ctx, deadline, counts, i, resume):
    session = None
    n = 0
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not s.recv(16).startswith(b"+PONG"):
                    raise SystemExit(f"port {port}: no PONG")
                if resume:
                    session = s.session
        n += 1
    counts[i] = n


def main():
    ca, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    threads = int(os.environ.get("THREADS", "4"))
    seconds = float(os.environ.get("DURATION", "5"))
    resume = os.environ.get("RESUME", "0") == "1"
    ctx = ssl.create_default_context(cafile=ca)
    for port in ports:
        counts = [0] * threads
        deadline = time.monotonic() + seconds
        ts = [threading.Thread(target=hammer, args=(port, ctx, deadline, counts, i, resume))
              for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print(f"port {port}: {sum(counts) / seconds:.0f} handshakes/s")


if __name__ == "__main__":
    main()
