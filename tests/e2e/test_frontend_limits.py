"""Frontend limits: connections overall, per client address and per user,
the authenticated timeout, and what a client sees when one is exceeded.

One stack for the module, with small limits:

    limits.max_connections=8, max_connections_per_address=2,
    max_connections_per_user=2, session_timeout=60s (the least allowed),
    frontend.trusted_networks=127.0.0.9 (no per-address limit).

Tests play several client addresses by binding to 127.0.0.x.  Two idle
sessions (one POP3, one IMAP, from 127.0.0.50) are opened when the stack
starts and checked by the last test, after the session timeout, so that
the minute it takes runs while the other tests do.
"""

import imaplib
import time

import pytest

from conftest import (backend_metric, raw_client, read_until_tagged,
                      wait_for)

pytestmark = pytest.mark.daemons

SESSION_TIMEOUT = 60


class Limits:
    def __init__(self, st):
        self.st = st
        self.user, self.pw = st.new_user("limits")
        self.idle_user, self.idle_pw = st.new_user("idle")
        self.idle_started = None
        self.idle_pop3 = self.idle_imap = None


@pytest.fixture(scope="module")
def lim(stack_factory):
    st = stack_factory(name="limits", settings=[
        "limits.max_connections=8",
        "limits.max_connections_per_address=2",
        "limits.max_connections_per_user=2",
        "limits.session_timeout=%ds" % SESSION_TIMEOUT,
        "frontend.trusted_networks=127.0.0.9",
    ])
    lm = Limits(st)
    # The idle sessions of test_authenticated_timeout (last in the file).
    s, f = raw_client(st, st.POP3S_PORT, tls=True, source="127.0.0.50")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (lm.idle_user.encode(),
                                           lm.idle_pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK"), "POP3 login"
    lm.idle_pop3 = (s, f)
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, source="127.0.0.51")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"i1 LOGIN %s %s\r\ni2 SELECT INBOX\r\n"
              % (lm.idle_user.encode(), lm.idle_pw.encode()))
    assert read_until_tagged(f, b"i2")[-1].startswith(b"i2 OK")
    lm.idle_imap = (s, f)
    lm.idle_started = time.monotonic()
    yield lm
    for s, _ in (lm.idle_pop3, lm.idle_imap):
        s.close()


def greeting(st, port, source, tls=True):
    s, f = raw_client(st, port, tls=tls, source=source)
    return s, f, f.readline()


def settle(st, source="127.0.0.1", port=None):
    """Wait until the frontend has released connections closed by the
    previous test: a new connection from SOURCE is greeted."""
    def ok():
        s, f, line = greeting(st, port or st.IMAPS_PORT, source)
        s.close()
        return line.startswith(b"* OK")
    wait_for(ok, what="connections to be released")


def test_per_address_limit(lim):
    st = lim.st
    settle(st)
    held = []
    try:
        for _ in range(2):
            s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.1")
            assert line.startswith(b"* OK"), line
            held.append(s)
        # The third from the same address is turned away, with a reason.
        s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.1")
        assert line == (b"* BYE [UNAVAILABLE] Too many connections from "
                        b"your address.\r\n"), line
        assert f.readline() == b""
        s.close()
        s, f, line = greeting(st, st.POP3S_PORT, "127.0.0.1")
        assert line.startswith(b"-ERR [SYS/TEMP] Too many connections "
                               b"from your address."), line
        s.close()
        # STARTTLS port: the refusal is the greeting, in clear.
        s, f, line = greeting(st, st.IMAP_PORT, "127.0.0.1", tls=False)
        assert line.startswith(b"* BYE [UNAVAILABLE]"), line
        s.close()
        # SMTP: a greeting's shape, "421 domain text", no enhanced code
        # before EHLO (RFC 5321 3.1, 4.2; RFC 2034 4).
        for port, tls in ((st.SUBMISSION_PORT, False),
                          (st.SUBMISSIONS_PORT, True)):
            s, f, line = greeting(st, port, "127.0.0.1", tls=tls)
            assert line == (b"421 s1f1 Too many connections from your "
                            b"address.\r\n"), line
            assert f.readline() == b""
            s.close()
        # Another address is not affected.
        s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.2")
        assert line.startswith(b"* OK"), line
        s.close()
        # A trusted address (a load balancer, webmail) is exempt.
        for _ in range(3):
            s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.9")
            assert line.startswith(b"* OK"), line
            held.append(s)
    finally:
        for s in held:
            s.close()
    assert "refused: Too many connections from your address" in \
        st.log("s1f1")


def test_max_connections(lim):
    st = lim.st
    settle(st)
    held = []
    try:
        # Two idle sessions are open (fixture); fill the rest, each from
        # its own address so that only the overall limit can apply.
        # Connections of earlier tests may still be being released: go
        # on until the first refusal.
        for i in range(10, 20):
            s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.%d" % i)
            if not line.startswith(b"* OK"):
                break
            held.append(s)
        assert line == (b"* BYE [UNAVAILABLE] Too many connections to this "
                        b"server; try again later.\r\n"), line
        assert len(held) <= 6
        s.close()
        s, f, line = greeting(st, st.POP3_PORT, "127.0.0.30", tls=False)
        assert line.startswith(b"-ERR [SYS/TEMP] Too many connections"), \
            line
        s.close()
        # Room again once a client leaves.
        held.pop().close()
        settle(st, source="127.0.0.31")
    finally:
        for s in held:
            s.close()


def imap_login(st, user, pw, source):
    s, f, line = greeting(st, st.IMAPS_PORT, source)
    assert line.startswith(b"* OK"), line
    s.sendall(b"a1 LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    return s, f, read_until_tagged(f, b"a1")[-1]


def test_per_user_limit(lim):
    st = lim.st
    settle(st)
    held = []
    try:
        # From two addresses, so that only the per-user limit applies.
        for src in ("127.0.0.1", "127.0.0.2"):
            s, f, line = imap_login(st, lim.user, lim.pw, src)
            assert line.startswith(b"a1 OK"), line
            held.append((s, f))
        s, f, line = imap_login(st, lim.user, lim.pw, "127.0.0.3")
        assert line == (b"a1 NO [LIMIT] Too many connections for this "
                        b"account.\r\n"), line
        # The refused login leaves the connection usable.
        s.sendall(b"a2 NOOP\r\n")
        assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
        s.close()
        p, pf, line = greeting(st, st.POP3S_PORT, "127.0.0.3")
        p.sendall(b"USER %s\r\nPASS %s\r\n" % (lim.user.encode(),
                                               lim.pw.encode()))
        assert pf.readline().startswith(b"+OK")
        line = pf.readline()
        assert line.startswith(b"-ERR [SYS/TEMP] Too many connections for "
                               b"this account"), line
        p.close()
        # One leaves: the next login works.
        s, f = held.pop()
        s.sendall(b"a9 LOGOUT\r\n")
        read_until_tagged(f, b"a9")
        s.close()

        def login_works():
            s, f, line = imap_login(st, lim.user, lim.pw, "127.0.0.3")
            s.close()
            return line.startswith(b"a1 OK")
        wait_for(login_works, what="the user's session to be released")
    finally:
        for s, _ in held:
            s.close()


def test_maximum_command_size_before_login(lim):
    st = lim.st
    settle(st, source="127.0.0.5")
    s, f, line = greeting(st, st.IMAPS_PORT, "127.0.0.5")
    s.sendall(b"a1 LOGIN " + b"x" * 20000 + b" y\r\n")
    assert f.readline().startswith(b"a1 BAD [TOOBIG]")
    s.sendall(b"a2 NOOP\r\n")
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.close()
    p, pf, line = greeting(st, st.POP3S_PORT, "127.0.0.5")
    p.sendall(b"USER " + b"x" * 2000 + b"\r\nNOOP\r\n")
    assert pf.readline().startswith(b"-ERR")
    p.close()


def test_authenticated_timeout(lim):
    """POP3 sessions are cut after limits.session_timeout of silence;
    IMAP ones never before 30 minutes (RFC 3501 5.4, RFC 2177 IDLE)."""
    remaining = lim.idle_started + SESSION_TIMEOUT + 3 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    s, f = lim.idle_pop3
    s.settimeout(15)
    assert f.readline() == b"-ERR Disconnected for inactivity.\r\n"
    assert f.readline() == b""
    s, f = lim.idle_imap
    s.sendall(b"i3 NOOP\r\n")
    assert read_until_tagged(f, b"i3")[-1].startswith(b"i3 OK")
    s.sendall(b"i4 LOGOUT\r\n")
    read_until_tagged(f, b"i4")
    assert "state=relay idle timeout" in lim.st.log("s1f1")


# -- timers while the server has the login -----------------------------------

@pytest.fixture(scope="module")
def timers(stack_factory):
    return stack_factory(name="timers", settings=[
        "limits.prelogin_timeout=2s",
        "limits.auth_penalty=3s",
        "limits.auth_penalty_max=3s",
        "smtp.timeout=10s",
        "limits.max_bad_commands=3",
    ])


def test_penalty_longer_than_the_idle_timeout(timers):
    """A login waiting out a brute-force penalty longer than
    limits.prelogin_timeout is answered, not cut for inactivity: the
    client is not idle while the server has its login."""
    user, pw = timers.new_user("slowlogin")
    src = "127.0.0.61"
    s, f = raw_client(timers, timers.IMAPS_PORT, tls=True, source=src)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s wrong\r\n" % user.encode())
    assert read_until_tagged(f, b"a1")[-1].startswith(b"a1 NO")
    s.sendall(b"a2 LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    s.settimeout(20)
    line = read_until_tagged(f, b"a2")[-1]
    assert line.startswith(b"a2 OK"), line
    s.close()
    assert "delay_ms=3000" in timers.log("s1f1")


def test_lmtp_idle_time_is_smtp_timeout(timers):
    """After the greeting an LMTP client has smtp.timeout (10s here) to
    speak, not limits.prelogin_timeout (2s): LMTP has no login."""
    s, f = raw_client(timers, timers.LMTP_PORT, tls=False)
    assert f.readline().startswith(b"220 ")
    time.sleep(4)
    s.sendall(b"LHLO client.example\r\n")
    line = f.readline()
    assert line.startswith(b"250"), line
    s.close()


def test_invalid_commands_before_login_are_limited(timers):
    """limits.max_bad_commands holds before login too: the third invalid
    command (unknown, malformed, in the wrong state) ends the connection
    with the protocol's goodbye; valid ones in between do not count."""
    s, f = raw_client(timers, timers.IMAPS_PORT, tls=True)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"x1 BOGUS\r\nx2 CAPABILITY\r\nx3 LOGIN\r\n")
    assert read_until_tagged(f, b"x1")[-1].startswith(b"x1 BAD")
    assert read_until_tagged(f, b"x2")[-1].startswith(b"x2 OK")
    assert read_until_tagged(f, b"x3")[-1].startswith(b"x3 BAD")
    s.sendall(b"x4 SELECT INBOX\r\n")
    assert f.readline().startswith(b"x4 BAD")
    line = f.readline()
    assert line.startswith(b"* BYE") and b"Too many invalid commands" in line
    assert f.readline() == b""
    s.close()
    s, f = raw_client(timers, timers.POP3S_PORT, tls=True)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"BOGUS\r\nCAPA\r\n")
    assert f.readline().startswith(b"-ERR")
    while f.readline() != b".\r\n":
        pass
    s.sendall(b"RETR 1\r\nPASS x\r\n")
    assert f.readline().startswith(b"-ERR")
    assert f.readline().startswith(b"-ERR")
    line = f.readline()
    assert line.startswith(b"-ERR") and b"Too many invalid commands" in line
    assert f.readline() == b""
    s.close()


def keepalive_timers(port):
    """Timer kinds (/proc/net/tcp "tr": 2 is keepalive) of the
    established sockets whose local port is PORT: the frontend's side of
    its clients' connections."""
    kinds = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, timer = fields[1], fields[3], fields[5]
            if state == "01" and int(local.split(":")[1], 16) == port:
                kinds.append(int(timer.split(":")[0], 16))
    return kinds


def test_tcp_keepalive_on_client_connections(stack):
    """limits.tcp_keepalive (5m): the kernel keeps a keepalive timer on
    every client connection, so a client that vanished is found."""
    s, f = raw_client(stack, stack.IMAP_PORT)
    assert f.readline().startswith(b"* OK")
    wait_for(lambda: keepalive_timers(stack.IMAP_PORT), timeout=10,
             what="the client's connection in /proc/net/tcp")
    assert 2 in keepalive_timers(stack.IMAP_PORT), \
        keepalive_timers(stack.IMAP_PORT)
    s.close()


def test_sessions_per_user_on_the_backend(stack_factory):
    """backend.max_sessions_per_user (3 here): an account's IMAP and POP3
    sessions through all frontends together; each frontend's own
    limits.max_connections_per_user (20) is far from reached.  Beyond,
    the login is refused and the connection stays usable."""
    st = stack_factory(name="usersessions", frontends_per_site=2,
                       settings=["backend.max_sessions_per_user=3"])
    user, pw = st.new_user("many")
    other, other_pw = st.new_user("few")
    refused = "portico_backend_user_session_refusals_total"
    held = [st.imap(user, pw, frontend=1), st.imap(user, pw, frontend=2),
            st.pop3(user, pw, frontend=1)]
    # a fourth, through either frontend and either protocol
    s, f = raw_client(st, st.port("imaps", 1, 2), tls=True)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    assert read_until_tagged(f, b"a1")[-1] == \
        b"a1 NO [LIMIT] Too many sessions for this account.\r\n"
    s.sendall(b"a2 NOOP\r\n")
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s, f = raw_client(st, st.port("pop3s", 1, 1), tls=True)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(), pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline() == \
        b"-ERR [SYS/TEMP] Too many sessions for this account.\r\n"
    s.close()
    assert backend_metric(st, refused) == 2
    # another account is not concerned
    c = st.imap(other, other_pw, frontend=2)
    c.logout()
    # a session ended makes room for one
    held.pop(0).logout()
    c = wait_for(lambda: try_imap(st, user, pw), what="room for a session")
    assert try_imap(st, user, pw) is None
    c.logout()
    for h in held:
        h.quit() if hasattr(h, "quit") else h.logout()


def try_imap(st, user, pw):
    """An IMAP session of USER through frontend 2, or None if refused."""
    import imaplib
    c = st.imap(frontend=2)
    try:
        c.login(user, pw)
        return c
    except imaplib.IMAP4.error as e:
        assert "Too many sessions for this account" in str(e), e
        c.logout()
        return None


def test_connection_rate_per_address(stack_factory):
    """limits.connection_rate_per_address (5 a minute here): beyond it a
    new connection is closed before its TLS handshake (a cleartext one
    after * BYE, HTTP after 503), whatever the port; other addresses,
    trusted_networks, LMTP and a load balancer's own connections (PROXY
    LOCAL) are not concerned; behind a balancer each client counts."""
    import socket
    import ssl
    import struct
    st = stack_factory(name="connrate", settings=[
        "limits.connection_rate_per_address=5",
        "frontend.trusted_networks=127.0.0.9",
        "frontend.proxy_networks=127.0.0.70/32",
    ])
    src = "127.0.0.60"
    # (the stack's start-up checks from 127.0.0.1 may have met it)
    before = rate_refusals(st)
    for _ in range(5):
        s, f, line = greeting(st, st.IMAPS_PORT, src)
        assert line.startswith(b"* OK"), line
        s.close()
    # the sixth: no handshake
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        greeting(st, st.IMAPS_PORT, src)
    s, f, line = greeting(st, st.IMAP_PORT, src, tls=False)
    assert line == (b"* BYE [UNAVAILABLE] Too many new connections from "
                    b"your address; slow down.\r\n"), line
    assert f.readline() == b""
    s.close()
    # the settings page's listener shares the count
    s, f = raw_client(st, st.HTTP_PORT, source=src)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert f.readline().startswith(b"HTTP/1.1 503 "), "HTTP not refused"
    s.close()
    assert rate_refusals(st) == before + 3
    # LMTP (mail transfer agents) is not counted
    s, f, line = greeting(st, st.LMTP_PORT, src, tls=False)
    assert line.startswith(b"220 ") or line.startswith(b"554 "), line
    assert b"Too many" not in line
    s.close()
    # another address, and a trusted one however often
    for source in ["127.0.0.61"] + ["127.0.0.9"] * 8:
        s, f, line = greeting(st, st.IMAPS_PORT, source)
        assert line.startswith(b"* OK"), (source, line)
        s.close()

    # a balancer: its health checks (PROXY LOCAL) are not counted, its
    # clients are, each on its own
    sig = b"\r\n\r\n\x00\r\nQUIT\n"

    def via_balancer(header):
        s = socket.create_connection((st.host, st.IMAPS_PORT), timeout=10,
                                     source_address=("127.0.0.70", 0))
        s.sendall(header)
        try:
            s = st.ssl_context().wrap_socket(s, server_hostname=st.host)
            return s.makefile("rb").readline()
        except (ssl.SSLError, ConnectionError, OSError):
            return b""
        finally:
            s.close()

    def client(ip, port):
        addrs = socket.inet_aton(ip) + socket.inet_aton("127.0.0.1") + \
            struct.pack("!HH", port, 993)
        return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + \
            addrs

    for _ in range(8):
        assert via_balancer(sig + bytes([0x20, 0x00, 0, 0])) \
            .startswith(b"* OK")
    for i in range(5):
        assert via_balancer(client("192.0.2.80", 44000 + i)) \
            .startswith(b"* OK")
    assert via_balancer(client("192.0.2.80", 44005)) == b""
    assert via_balancer(client("192.0.2.81", 44006)).startswith(b"* OK")
    refused = [l for l in st.log("s1f1").splitlines()
               if "Too many new connections" in l and
               ("client=%s:" % src in l or "client=192.0.2.80:" in l)]
    assert len(refused) == 3, refused


def rate_refusals(st):
    """The frontend's count, read from a trusted address (the others may
    be over the rate)."""
    s, f = raw_client(st, st.HTTP_PORT, source="127.0.0.9")
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close"
              b"\r\n\r\n")
    body = f.read().decode()
    s.close()
    name = "portico_frontend_connection_rate_refusals_total "
    for line in body.splitlines():
        if line.startswith(name):
            return float(line.split()[1])
    raise AssertionError("no %s in %r" % (name, body[:200]))
