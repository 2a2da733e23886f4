"""Hostile input through the frontend, before login, and connections to a
backend's link port by something that is not a frontend.

Every case asserts the exact answer, then that the same connection (where
it survives) and the server still serve: a real user logs in and reads a
message after each test.  The frontend's memory is read from /proc while a
client streams tens of megabytes that never form a command."""

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import raw_client, read_until_tagged

pytestmark = pytest.mark.daemons

PRELOGIN_TIMEOUT = 2      # limits.prelogin_timeout
LOGIN_DEADLINE = 5        # limits.login_deadline
MAX_LINE = 8192           # limits.prelogin_max_line (the default)


class Hostile:
    def __init__(self, st):
        self.st = st
        self.user = st.new_user("hostile")
        st.import_message(self.user[0], b"Subject: still here\r\n\r\nok\r\n")


@pytest.fixture(scope="module")
def hs(stack_factory):
    st = stack_factory(
        "hostile",
        settings=["limits.prelogin_timeout=%ds" % PRELOGIN_TIMEOUT,
                  "limits.login_deadline=%ds" % LOGIN_DEADLINE,
                  "limits.auth_penalty=0",
                  "limits.max_connections_per_address=1000"])
    return Hostile(st)


@pytest.fixture
def h(hs):
    yield hs
    # the server still serves: a real login reads the stored message
    c = hs.st.imap(*hs.user)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    assert c.fetch("1", "(BODY.PEEK[])")[1][0][1] == \
        b"Subject: still here\r\n\r\nok\r\n"
    c.logout()


def imap(st, tls=False):
    port = st.IMAPS_PORT if tls else st.IMAP_PORT
    s, f = raw_client(st, port, tls=tls, timeout=20)
    assert f.readline().startswith(b"* OK [CAPABILITY ")
    return s, f


def pop3(st):
    s, f = raw_client(st, st.POP3_PORT, timeout=20)
    assert f.readline().startswith(b"+OK")
    return s, f


def still_usable(s, f, tag=b"z9"):
    s.sendall(tag + b" NOOP\r\n")
    assert read_until_tagged(f, tag)[-1] == tag + b" OK NOOP completed.\r\n"


def frontend_rss_kb(st):
    pid = int((st.dir / "s1f1" / "pid").read_text())
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- literals ---------------------------------------------------------------

def test_ten_megabyte_synchronizing_literal(h):
    s, f = imap(h.st)
    s.sendall(b"a1 LOGIN {10485760}\r\n")
    assert f.readline() == b"a1 BAD [TOOBIG] Literal too large\r\n"
    still_usable(s, f)
    s.close()


def test_ten_megabyte_non_synchronizing_literal(h):
    s, f = imap(h.st)
    s.sendall(b"a1 LOGIN {10485760+}\r\n")
    try:
        s.sendall(b"x" * (1 << 20))
    except OSError:
        pass  # the server may close before all of it is sent
    assert f.readline() == b"* BYE [TOOBIG] Literal too large\r\n"
    assert f.readline() == b""
    s.close()


@pytest.mark.parametrize("literal", [b"{99999999999999999999}",
                                     b"{99999999999999999999+}",
                                     b"{18446744073709551616}",
                                     b"{-1}", b"{1a}"])
def test_absurd_literal_lengths(h, literal):
    s, f = imap(h.st)
    s.sendall(b"a1 LOGIN " + literal + b"\r\n")
    line = f.readline()
    if literal.endswith(b"+}"):
        assert line == b"* BYE [TOOBIG] Literal too large\r\n"
        s.close()
        return
    assert line.startswith(b"a1 BAD "), line
    still_usable(s, f)
    s.close()


# ---- parentheses, NULs, long lines -----------------------------------------

def test_hundred_thousand_nested_parentheses(h):
    s, f = imap(h.st)
    s.sendall(b"a1 ID " + b"(" * 100000 + b"\r\n")
    assert f.readline() == b"a1 BAD [TOOBIG] Command line too long\r\n"
    still_usable(s, f)
    # within the line limit, the nesting limit answers
    s.sendall(b"a2 ID " + b"(" * 4000 + b")" * 4000 + b"\r\n")
    line = f.readline()
    assert line.startswith(b"a2 BAD "), line
    still_usable(s, f, b"z8")
    s.close()


def test_nul_bytes(h):
    s, f = imap(h.st)
    s.sendall(b"a1 CAPA\x00BILITY\r\na2 LOGIN \x00 \x00\r\n")
    assert f.readline() == b"a1 BAD NUL byte in command\r\n"
    assert f.readline() == b"a2 BAD NUL byte in command\r\n"
    still_usable(s, f)
    s.close()
    p, pf = pop3(h.st)
    p.sendall(b"USER a\x00b\r\nCAPA\r\n")
    assert pf.readline().startswith(b"-ERR ")
    assert pf.readline().startswith(b"+OK")
    p.close()


def test_lines_far_beyond_the_maximum(h):
    s, f = imap(h.st)
    s.sendall(b"a1 LOGIN " + b"x" * (MAX_LINE * 128) + b"\r\n")
    assert f.readline() == b"a1 BAD [TOOBIG] Command line too long\r\n"
    still_usable(s, f)
    s.close()
    p, pf = pop3(h.st)
    p.sendall(b"USER " + b"x" * (MAX_LINE * 128) + b"\r\nCAPA\r\n")
    assert pf.readline().startswith(b"-ERR ")
    assert pf.readline().startswith(b"+OK")
    p.close()


def test_endless_line_keeps_memory_bounded(h):
    """64 MB that never end a line, over four connections at once: the
    frontend discards what it cannot use."""
    before = frontend_rss_kb(h.st)
    conns = [imap(h.st) for _ in range(4)]
    chunk = b"y" * (1 << 20)
    for _ in range(16):
        for s, _f in conns:
            s.sendall(chunk)
    peak = frontend_rss_kb(h.st)
    for s, f in conns:
        s.sendall(b"\r\n")
        assert f.readline() == b"* BAD [TOOBIG] Command line too long\r\n"
        still_usable(s, f)
        s.close()
    growth_mb = (peak - before) / 1024
    assert growth_mb < 32, "frontend grew %.1f MB" % growth_mb


# ---- slow clients -----------------------------------------------------------

def test_commands_sent_byte_by_byte(h):
    s, f = imap(h.st)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b"a1 CAPABILITY\r\n":
        s.send(bytes([b]))
        time.sleep(0.005)
    lines = read_until_tagged(f, b"a1")
    assert lines[0].startswith(b"* CAPABILITY IMAP4rev1 ")
    assert lines[-1] == b"a1 OK Capability completed.\r\n"
    s.close()
    # a whole login, byte by byte inside TLS (one record per byte)
    s, f = imap(h.st, tls=True)
    for b in b"a2 LOGIN \"%s\" \"%s\"\r\n" % (h.user[0].encode(),
                                             h.user[1].encode()):
        s.send(bytes([b]))
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK ")
    s.sendall(b"a3 LOGOUT\r\n")
    read_until_tagged(f, b"a3")
    s.close()


def test_slowloris_unfinished_line_is_cut_after_the_timeout(h):
    s, f = imap(h.st)
    s.sendall(b"a1 CAPAB")
    t0 = time.monotonic()
    assert f.readline() == b"* BYE Disconnected for inactivity.\r\n"
    assert f.readline() == b""
    assert time.monotonic() - t0 < PRELOGIN_TIMEOUT + 10
    s.close()


@pytest.mark.parametrize("feed", ["trickle", "noop"])
def test_busy_client_is_cut_at_the_login_deadline(h, feed):
    """Bytes or commands every half second reset the idle timer, but not
    limits.login_deadline."""
    for proto in ("imap", "pop3"):
        s, f = imap(h.st) if proto == "imap" else pop3(h.st)
        t0 = time.monotonic()
        closed = None
        while time.monotonic() - t0 < LOGIN_DEADLINE + 10:
            try:
                if feed == "trickle":
                    s.sendall(b"x")
                else:
                    # IMAP NOOP; POP3 has no NOOP before login: CAPA
                    s.sendall(b"n NOOP\r\n" if proto == "imap"
                              else b"CAPA\r\n")
                    line = f.readline()
                    if not line.startswith((b"n OK", b"+OK")):
                        closed = line
                        break
                    while proto == "pop3" and line != b".\r\n":
                        line = f.readline()
            except OSError:
                break
            time.sleep(0.5)
        if closed is None:
            s.settimeout(10)
            closed = f.readline()
        expect = (b"* BYE Login time limit reached.\r\n" if proto == "imap"
                  else b"-ERR Login time limit reached.\r\n")
        assert closed == expect, (proto, closed)
        assert time.monotonic() - t0 >= LOGIN_DEADLINE - 0.5
        s.close()
    assert "login deadline reached" in h.st.log("s1f1")


# ---- the backend's link port ------------------------------------------------

def link_handshake(st, cert=None, key=None, ca=None):
    """TLS to the backend's link port as a client; True when the backend
    completes the handshake and then keeps the connection open."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(st.dir / "ca" / "ca.pem"))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    raw = socket.create_connection((st.host, int(st.SITE1_BE1_LINK_PORT)),
                                   timeout=10)
    try:
        s = ctx.wrap_socket(raw)
        # TLS 1.3: the server refuses a client certificate after the
        # client's Finished; the refusal shows on the first read.
        s.settimeout(3)
        try:
            data = s.recv(1)
        except socket.timeout:
            return True   # still open: accepted
        except (ssl.SSLError, OSError):
            return False
        return data != b""
    except (ssl.SSLError, OSError):
        return False
    finally:
        raw.close()


def other_ca(tmp_path):
    """A certificate with clientAuth from a CA the backend does not know."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", tmp_path / "o.key", "-out",
                    tmp_path / "o.pem", "-days", "2", "-subj",
                    "/CN=frontend:intruder", "-addext",
                    "extendedKeyUsage=clientAuth"],
                   check=True, capture_output=True)
    return tmp_path / "o.pem", tmp_path / "o.key"


def test_link_refuses_what_is_not_a_frontend(h, tmp_path):
    st = h.st
    certs = st.dir / "certs"
    # no client certificate at all
    assert not link_handshake(st)
    # the mail server certificate (serverAuth only) and a backend's own
    # link certificate, both from the deployment's CA
    assert not link_handshake(st, certs / "mail.pem", certs / "mail.key")
    assert not link_handshake(st, certs / "s1b1-link.pem",
                              certs / "s1b1-link.key")
    # a client certificate from another CA
    assert not link_handshake(st, *other_ca(tmp_path))
    # plain text instead of TLS
    with socket.create_connection(
            (st.host, int(st.SITE1_BE1_LINK_PORT)), timeout=10) as s:
        s.sendall(b"a1 LOGIN alice secret\r\n" * 10)
        s.settimeout(10)
        got = b""
        try:
            while True:
                data = s.recv(4096)   # a TLS alert at most, then EOF
                if not data:
                    break
                got += data
        except ConnectionResetError:
            pass
        assert b"OK" not in got and len(got) < 64, got
    # the frontend's own certificate is what the backend accepts
    assert link_handshake(st, certs / "s1f1-link.pem",
                          certs / "s1f1-link.key")
