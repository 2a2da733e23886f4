#!/usr/bin/python3
"""Large-mailbox benchmark: SELECT, UID FETCH 1:* (FLAGS) and UID SEARCH
on a mailbox of N messages (default 100,000), through a frontend, over
TLS, on a stack started for the run.  Prints one table; with --markdown
appends it to the file given.

    tests/bench/imap_large.py [--messages N] [--runs R] [--markdown FILE]
"""

import argparse
import os
import platform
import select
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "stack"


def stack(*args):
    return subprocess.run([str(STACK)] + [str(a) for a in args], check=True,
                          capture_output=True, text=True, timeout=600)


def read_env(d):
    env = {}
    for line in (Path(d) / "stack.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v.strip("'\"")
    return env


class Client:
    def __init__(self, host, port, ca):
        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection((host, port))
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.n = 0
        self.read_line()

    def read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, text):
        """Sends a command; returns (seconds, bytes of response)."""
        self.n += 1
        tag = b"b%d" % self.n
        t0 = time.perf_counter()
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        # Read until the tagged line (no literal here holds a line that
        # starts with the tag).  The
        # response grows in a bytearray and only what arrived since the
        # last look is searched: a client that copied and searched the
        # whole response for each chunk would time itself, not the server.
        buf = bytearray(b"\r\n")  # a line break before the first line
        buf += self.buf
        needle = b"\r\n" + tag + b" "
        start = 0
        while True:
            i = buf.find(needle, start)
            if i >= 0:
                end = buf.find(b"\r\n", i + 2)
                if end >= 0:
                    dt = time.perf_counter() - t0
                    resp = bytes(buf[2:end])
                    self.buf = bytes(buf[end + 2:])
                    last = resp.rsplit(b"\r\n", 1)[-1]
                    if not last.startswith(tag + b" OK"):
                        raise RuntimeError(last)
                    return dt, len(resp) + 2
            else:
                start = max(0, len(buf) - len(needle) + 1)
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError
            buf += chunk


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="portico-bench-")
    try:
        stack("up", d)
        env = read_env(d)
        user, pw = "bench@example.test", "bench-password"
        stack("adduser", d, user, pw)
        mbox = Path(d) / "big.mbox"
        with open(mbox, "w") as f:
            for i in range(a.messages):
                f.write("From a@b Thu Nov 23 08:00:00 2026\n"
                        "From: Sender %d <s%d@example.org>\n"
                        "To: bench@example.test\nSubject: message %d\n"
                        "Message-ID: <%d@bench>\n\nBody of message %d.\n\n"
                        % (i % 97, i % 97, i, i, i))
        t0 = time.perf_counter()
        stack("import", d, user, mbox)
        import_s = time.perf_counter() - t0
        c = Client(env["FRONTEND_HOST"], int(env["IMAPS_PORT"]),
                   env["CA_FILE"])
        c.command("LOGIN %s %s" % (user, pw))
        ops = [
            ("SELECT INBOX", "SELECT INBOX"),
            ("UID FETCH 1:* (FLAGS)", "UID FETCH 1:* (FLAGS)"),
            # what a mail client downloads of every message at its
            # first look at a mailbox (Thunderbird's header fetch)
            ("UID FETCH 1:* (headers, as a client's first sync)",
             "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
             "(From To Cc Bcc Subject Date Message-ID Priority X-Priority "
             "References Newsgroups In-Reply-To Content-Type "
             "Reply-To)])"),
            ("UID FETCH 1:* (ENVELOPE)", "UID FETCH 1:* (ENVELOPE)"),
            ("UID SEARCH UNSEEN", "UID SEARCH UNSEEN"),
            ("UID SEARCH FROM s42@", "UID SEARCH FROM s42@"),
            ("UID SEARCH BODY (not found)",
             'UID SEARCH BODY "no such words"'),
            ("EXPUNGE (no message marked \\Deleted)", "EXPUNGE"),
        ]
        rows = []
        for name, cmd in ops:
            times = []
            size = 0
            for _ in range(a.runs):
                dt, size = c.command(cmd)
                times.append(dt)
            rows.append((name, statistics.median(times), min(times), size))
        # IDLE latency: another session appends; the times, from the
        # APPEND sent, of its tagged OK (the commit) and of the EXISTS at
        # the idling session, both sockets watched at once (the EXISTS
        # often arrives before the OK).
        ok_lat, ex_lat = [], []
        w = Client(env["FRONTEND_HOST"], int(env["IMAPS_PORT"]),
                   env["CA_FILE"])
        w.command("LOGIN %s %s" % (user, pw))
        c.command("SELECT INBOX")
        small = "Subject: idle\r\n\r\nx\r\n"
        for i in range(a.runs * 4):
            c.n += 1
            tag = b"i%d" % c.n
            c.s.sendall(tag + b" IDLE\r\n")
            while not c.read_line().startswith(b"+"):
                pass
            w.n += 1
            wtag = b"w%d" % w.n
            t_send = time.perf_counter()
            w.s.sendall(wtag + b" APPEND INBOX {%d+}\r\n%s\r\n"
                        % (len(small), small.encode()))
            t_ok = t_ex = None
            while t_ok is None or t_ex is None:
                for cl, want in ((w, wtag + b" OK"), (c, b"EXISTS")):
                    if (t_ok if cl is w else t_ex) is not None:
                        continue
                    while b"\r\n" in cl.buf:
                        line = cl.read_line()
                        hit = (line.startswith(want) if cl is w
                               else line.endswith(want))
                        if hit:
                            if cl is w:
                                t_ok = time.perf_counter()
                            else:
                                t_ex = time.perf_counter()
                            break
                if t_ok is not None and t_ex is not None:
                    break
                socks = [cl.s for cl, t in ((w, t_ok), (c, t_ex))
                         if t is None]
                ready = [s_ for s_ in socks if s_.pending()] or \
                    select.select(socks, [], [], 10)[0]
                if not ready:
                    raise RuntimeError("no OK or EXISTS within 10 s")
                for s_ in ready:
                    cl = w if s_ is w.s else c
                    chunk = s_.recv(1 << 20)
                    if not chunk:
                        raise EOFError
                    cl.buf += chunk
            ok_lat.append(t_ok - t_send)
            ex_lat.append(t_ex - t_send)
            c.s.sendall(b"DONE\r\n")
            while not c.read_line().startswith(tag + b" OK"):
                pass
        rows.append(("IDLE: another session's APPEND, sent to OK",
                     statistics.median(ok_lat), min(ok_lat), 0))
        rows.append(("IDLE: the same APPEND, sent to the EXISTS at the "
                     "idling session", statistics.median(ex_lat),
                     min(ex_lat), 0))
        lines = []
        lines.append("Large mailbox: %d messages, through a frontend over "
                     "TLS, median of %d runs (%s, %d cores, %s)"
                     % (a.messages, a.runs, platform.machine(),
                        os.cpu_count(), time.strftime("%Y-%m-%d")))
        lines.append("")
        lines.append("| operation | median | best | response bytes |")
        lines.append("|---|---|---|---|")
        lines.append("| import (portico-admin, batched) | %.3f s | | |"
                     % import_s)
        for name, med, best, size in rows:
            lines.append("| %s | %.1f ms | %.1f ms | %s |"
                         % (name, med * 1000, best * 1000,
                            size if size else ""))
        out = "\n".join(lines)
        print(out)
        if a.markdown:
            with open(a.markdown, "a") as f:
                f.write("\n" + out + "\n")
    finally:
        subprocess.run([str(STACK), "down", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
