#!/usr/bin/env python3
"""Regenerates src/commands/data/command-{info,docs}.resp from a running Redis 7.0 server.

rudis answers COMMAND DOCS (summary, since, group, arguments: what redis-cli 7 turns into
hints) and the ACL categories, tips and key specs of COMMAND INFO from these raw RESP2
replies, for the commands it has. Redis is BSD-3 licensed; the text is its commands/*.json.

    redis-server --port 7379 --save '' --appendonly no &
    tools/gen-command-data.py 7379
"""
import socket
import sys


def raw_reply(port, command):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(command)
    s.settimeout(1.0)
    buf = b""
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
    except socket.timeout:
        pass
    return buf


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    out = "src/commands/data/"
    open(out + "command-docs.resp", "wb").write(raw_reply(port, b"COMMAND DOCS\r\n"))
    open(out + "command-info.resp", "wb").write(raw_reply(port, b"COMMAND\r\n"))


if __name__ == "__main__":
    main()
