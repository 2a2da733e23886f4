#!/usr/bin/python3
"""Memory of IMAP sessions in IDLE: live on the backend, then parked at the
frontend (imap.park_after).  docs/LOAD.md has the figures and the commands.

    tests/bench/park_memory.py STACK_DIR USER PASSWORD [--conns N]

STACK_DIR is a running `scripts/stack up` directory whose frontend has one
event loop and imap.park_after longer than the logins take (e.g. 20s).  N
clients log in over implicit TLS, SELECT INBOX and enter IDLE; the PSS of
the frontend and the backend is read from /proc before they connect, once
they are all in IDLE, and once the frontend says they are all parked.
"""

import argparse
import socket
import ssl
import sys
import time
import urllib.request
from pathlib import Path


def env(stack):
    out = {}
    for line in (Path(stack) / "stack.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.replace("export ", "").strip()] = v.strip().strip('"\'')
    return out


def pss(pid):
    for line in Path("/proc/%d/smaps_rollup" % pid).read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss for %d" % pid)


def metric(port, name):
    url = "http://127.0.0.1:%s/metrics" % port
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise RuntimeError(name + " not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stack")
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--conns", type=int, default=2000)
    a = ap.parse_args()
    e = env(a.stack)
    fe = int((Path(a.stack) / "s1f1" / "pid").read_text())
    be = int((Path(a.stack) / "s1b1" / "pid").read_text())
    ctx = ssl.create_default_context(cafile=e["CA_FILE"])
    before = (pss(fe), pss(be))
    conns = []
    t0 = time.monotonic()
    for _ in range(a.conns):
        s = ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", int(e["IMAPS_PORT"])), timeout=60),
            server_hostname="localhost")
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"l LOGIN %s %s\r\ns SELECT INBOX\r\ni IDLE\r\n"
                  % (a.user.encode(), a.password.encode()))
        while True:
            line = f.readline()
            if not line or line.startswith((b"l NO", b"l BAD", b"s NO")):
                sys.exit("login failed: %r" % line)
            if line == b"+ idling\r\n":
                break
        conns.append((s, f))
    took = time.monotonic() - t0
    time.sleep(1)
    live = (pss(fe), pss(be))
    deadline = time.monotonic() + 600
    while metric(e["HTTP_PORT"], "portico_frontend_parked_sessions") \
            < a.conns:
        if time.monotonic() > deadline:
            sys.exit("not all parked")
        time.sleep(0.5)
    time.sleep(1)
    parked = (pss(fe), pss(be))
    n = a.conns

    def per(x, y):
        return (y - x) / n / 1024

    print("%d sessions in IDLE (logged in in %.1f s)" % (n, took))
    print("| | frontend | backend | both |")
    print("|---|---|---|---|")
    for name, m in (("live", live), ("parked", parked)):
        f_ = per(before[0], m[0])
        b_ = per(before[1], m[1])
        print("| %s | %.2f KB | %.2f KB | %.2f KB |" % (name, f_, b_,
                                                        f_ + b_))
    for s, f in conns:
        s.close()


if __name__ == "__main__":
    main()
