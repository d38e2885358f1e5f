#!/usr/bin/env python3
"""Regenerates src/commands/data/command-{info,docs}.resp from a running Redis 7.0 server.

rudis answers COMMAND DOCS (summary, since, group, arguments: what redis-cli 7 turns into
hints) and the ACL categories, tips and key specs of COMMAND INFO from these raw RESP3
replies (taken after HELLO 3, so that maps and sets are marked as such), for the commands it
has; the RESP2 form is the reply layer's fallback. Redis is BSD-3 licensed; the text is its commands/*.json.

    redis-server --port 7379 --save '' --appendonly no &
    tools/gen-command-data.py 7379 [7474]

The second port, a Redis 7.4 server, gives command-{info,docs}-hfe.resp: the hash field
expiration commands (HEXPIRE ...), which rudis has so that Redis 7.4's field deadlines in an
RDB file, a DUMP payload or an AOF keep working, and which Redis 7.0 does not know.
"""
import socket
import sys


def read_all(s):
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


def raw_reply(port, command, protocol=3):
    s = socket.create_connection(("127.0.0.1", port))
    if protocol == 3:
        s.sendall(b"HELLO 3\r\n")
        if not read_all(s).startswith(b"%"):
            sys.exit("HELLO 3 failed: is this Redis 7?")
    s.sendall(command)
    return read_all(s)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    out = "src/commands/data/"
    open(out + "command-docs.resp", "wb").write(raw_reply(port, b"COMMAND DOCS\r\n"))
    open(out + "command-info.resp", "wb").write(raw_reply(port, b"COMMAND\r\n"))
    # The RESP2 replies for a few commands, from the same server (so subcommands come in the
    # same order): a unit test checks that the reply layer's fallback writes exactly these.
    sample = b"client config get hset bitfield lcs"
    for kind in ["DOCS", "INFO"]:
        name = out + "resp2-command-%s-sample.resp" % kind.lower()
        command = b"COMMAND " + kind.encode() + b" " + sample + b"\r\n"
        open(name, "wb").write(raw_reply(port, command, protocol=2))
    if len(sys.argv) > 2:
        port74 = int(sys.argv[2])
        names = b"hexpire hpexpire hexpireat hpexpireat httl hpttl hexpiretime hpexpiretime hpersist"
        for kind in ["DOCS", "INFO"]:
            name = out + "command-%s-hfe.resp" % kind.lower()
            open(name, "wb").write(raw_reply(port74, b"COMMAND " + kind.encode() + b" " + names + b"\r\n"))


if __name__ == "__main__":
    main()
