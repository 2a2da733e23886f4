"""PROXY protocol and a real load balancer in front of two frontends.

One stack with two frontends in site 1 that take PROXY headers from
127.0.0.1 only (frontend.proxy_networks=127.0.0.1/32); HAProxy (Debian's
package) listens on loopback and sends PROXY v2 to both.  Clients log in
through HAProxy; one frontend is killed and new logins keep working
through the other.  Raw tests send v1 and v2 headers by hand to show that
the address in the header is the one used for logs, limits and the
penalty, and that a header from elsewhere (127.0.0.2) is refused.
"""

import imaplib
import poplib
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import free_port, raw_client, read_until_tagged, wait_for

pytestmark = pytest.mark.daemons

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="proxy", frontends_per_site=2, settings=[
        "frontend.proxy_networks=127.0.0.1/32",
        # HAProxy's health checks (v2 LOCAL) and the test's own clients
        # come from here: not subject to the per-address limit.
        "frontend.trusted_networks=127.0.0.1/32",
        "limits.max_connections_per_address=2",
        "limits.auth_penalty=1s",
        "limits.auth_penalty_max=1s",
    ])


HAPROXY_CFG = """\
global
    maxconn 200

defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch

frontend imaps
    bind 127.0.0.1:{imaps}
    default_backend imaps_fe

frontend pop3s
    bind 127.0.0.1:{pop3s}
    default_backend pop3s_fe

backend imaps_fe
    balance roundrobin
    server f1 127.0.0.1:{f1_imaps} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 1
    server f2 127.0.0.1:{f2_imaps} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 1

backend pop3s_fe
    balance roundrobin
    server f1 127.0.0.1:{f1_pop3s} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 1
    server f2 127.0.0.1:{f2_pop3s} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 1
"""


@pytest.fixture(scope="module")
def haproxy(st, tmp_path_factory):
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    ports = {"imaps": free_port(), "pop3s": free_port()}
    cfg = tmp_path_factory.mktemp("haproxy") / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(
        f1_imaps=st.port("imaps", 1, 1), f2_imaps=st.port("imaps", 1, 2),
        f1_pop3s=st.port("pop3s", 1, 1), f2_pop3s=st.port("pop3s", 1, 2),
        **ports))
    log = open(cfg.with_suffix(".log"), "wb")
    proc = subprocess.Popen([exe, "-f", str(cfg), "-db"],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)

    def accepts():
        try:
            socket.create_connection(("127.0.0.1", ports["imaps"]),
                                     timeout=1).close()
            return True
        except OSError:
            assert proc.poll() is None, cfg.with_suffix(".log").read_text()
            return False
    try:
        wait_for(accepts, timeout=20, what="haproxy to listen")
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def imap_via(st, port, user, pw):
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=st.ssl_context(),
                          timeout=10)
    typ, _ = c.login(user, pw)
    assert typ == "OK"
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK"
    c.logout()


def test_logins_through_haproxy_survive_a_frontend(st, haproxy):
    user, pw = st.new_user("lb")
    for _ in range(4):
        imap_via(st, haproxy["imaps"], user, pw)
    p = poplib.POP3_SSL("127.0.0.1", haproxy["pop3s"],
                        context=st.ssl_context(), timeout=10)
    p.user(user)
    assert p.pass_(pw).startswith(b"+OK")
    p.quit()
    # Both frontends served, and saw PROXY v2 with the client's address.
    for fe in ("s1f1", "s1f2"):
        assert "proxy_protocol=v2 protocol=imaps worker=" in st.log(fe), fe
    st.stop("s1f1")
    try:
        deadline = time.monotonic() + 30
        for i in range(6):
            imap_via(st, haproxy["imaps"], user, pw)
        assert time.monotonic() < deadline
        p = poplib.POP3_SSL("127.0.0.1", haproxy["pop3s"],
                            context=st.ssl_context(), timeout=10)
        p.user(user)
        assert p.pass_(pw).startswith(b"+OK")
        p.quit()
    finally:
        st.start("s1f1")


def v1(src, sport, dst="127.0.0.1", dport=993):
    return b"PROXY TCP4 %s %s %d %d\r\n" % (src.encode(), dst.encode(),
                                            sport, dport)


def v2(src, sport, dst="127.0.0.1", dport=993):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + \
        addrs


def proxied(st, header, port=None, tls=True, source="127.0.0.1"):
    """A connection carrying HEADER, then TLS (unless tls=False); returns
    (sock, reader, greeting)."""
    s = socket.create_connection((st.host, port or st.IMAPS_PORT),
                                 timeout=10, source_address=(source, 0))
    s.sendall(header)
    if tls:
        s = st.ssl_context().wrap_socket(s, server_hostname=st.host)
    f = s.makefile("rb")
    return s, f, f.readline()


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_header_address_is_logged(st, make):
    s, f, line = proxied(st, make("192.0.2.7", 40001))
    assert line.startswith(b"* OK"), line
    s.sendall(b"a1 LOGOUT\r\n")
    read_until_tagged(f, b"a1")
    s.close()
    # The cleartext port: the header, then the greeting.
    s, f, line = proxied(st, make("192.0.2.7", 40002, dport=143),
                         port=st.IMAP_PORT, tls=False)
    assert line.startswith(b"* OK"), line
    s.close()
    log = st.log("s1f1")
    assert "client=192.0.2.7:40001 proxy=127.0.0.1:" in log
    assert "client=192.0.2.7:40002 proxy=127.0.0.1:" in log


def proxied_login(st, header, user, password):
    """LOGIN over an IMAPS connection carrying HEADER: the tagged answer,
    or None when the connection was not greeted."""
    s, f, line = proxied(st, header)
    if not line.startswith(b"* OK"):
        s.close()
        return None
    s.sendall(b"a1 LOGIN %s %s\r\n" % (user.encode(), password.encode()))
    out = read_until_tagged(f, b"a1")[-1]
    s.close()
    return out


def two_held_then_refused(st, make, sources, other, port):
    """Two connections from SOURCES[0] and [1] are held, one from
    SOURCES[2] is refused by the per-address limit (2 here) and one from
    OTHER is not; headers made by MAKE(src, sport), ports from PORT."""
    held = []
    try:
        for i, src in enumerate(sources[:2]):
            s, f, line = proxied(st, make(src, port + i))
            assert line.startswith(b"* OK"), line
            held.append(s)
        s, f, line = proxied(st, make(sources[2], port + 2))
        assert line.startswith(b"* BYE [UNAVAILABLE] Too many connections "
                               b"from your address"), line
        s.close()
        s, f, line = proxied(st, make(other, port + 3))
        assert line.startswith(b"* OK"), line
        s.close()
    finally:
        for s in held:
            s.close()


def test_per_address_limit_uses_the_real_address(st):
    # another client behind the same balancer is not affected
    two_held_then_refused(st, v2, ["192.0.2.50"] * 3, "192.0.2.51", 41001)


def v1_6(src, sport, dst="::1", dport=993):
    return b"PROXY TCP6 %s %s %d %d\r\n" % (src.encode(), dst.encode(),
                                            sport, dport)


def v2_6(src, sport, dst="::1", dport=993):
    addrs = socket.inet_pton(socket.AF_INET6, src) + \
        socket.inet_pton(socket.AF_INET6, dst) + \
        struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(addrs)) + \
        addrs


def test_ipv6_network_is_one_address(st):
    """IPv6 clients are counted by their /64 (limits.ipv6_prefix): a host
    drawing a new address of its network for every connection or guess is
    one address to max_connections_per_address (2 here) and to the
    authentication penalty."""
    # the next /64 is another client
    two_held_then_refused(st, v2_6, ["2001:db8:7:7::1", "2001:db8:7:7:a:b:c:d",
                                     "2001:db8:7:7:ffff::3"],
                          "2001:db8:7:8::1", 43001)
    log = st.log("s1f1")
    # the address is logged whole, in brackets before the port
    assert "client=[2001:db8:7:7:a:b:c:d]:43002 proxy=" in log

    user, pw = st.new_user("v6pen")

    def login(src, password):
        # (the connections above may not be released yet)
        return wait_for(lambda: proxied_login(st, v1_6(src, 43100), user,
                                              password),
                        what="a connection from " + src)

    assert login("2001:db8:7:9::1", "bad1").startswith(b"a1 NO")
    # the same login from another address of the network waits
    assert login("2001:db8:7:9:1::2", "bad2").startswith(b"a1 NO")
    assert "client=[2001:db8:7:9:1::2]:43100 user=%s auth penalty" % user \
        in st.log("s1f1")
    # another network does not
    assert login("2001:db8:7:a::1", pw).startswith(b"a1 OK")
    assert "client=[2001:db8:7:a::1]:43100 user=%s auth penalty" % user \
        not in st.log("s1f1")


def test_penalty_uses_the_real_address(st):
    user, pw = st.new_user("proxpen")

    def login(src, password):
        out = proxied_login(st, v1(src, 42000), user, password)
        assert out is not None, "not greeted"
        return out

    assert login("192.0.2.60", "bad1").startswith(b"a1 NO")
    assert login("192.0.2.60", "bad2").startswith(b"a1 NO")
    log = st.log("s1f1")
    assert "client=192.0.2.60:42000 user=%s auth penalty" % user in log
    # The balancer's other clients are not penalised for that user.
    assert login("192.0.2.61", pw).startswith(b"a1 OK")
    assert "client=192.0.2.61:42000 user=%s auth penalty" % user \
        not in st.log("s1f1")


def test_header_from_untrusted_address_is_refused(st):
    # Cleartext port: greeted (no header expected), then refused.
    s, f = raw_client(st, st.IMAP_PORT, source="127.0.0.2")
    assert f.readline().startswith(b"* OK")
    s.sendall(v1("192.0.2.9", 43000, dport=143) + b"a1 CAPABILITY\r\n")
    assert f.readline() == (b"* BYE PROXY protocol is not accepted from "
                            b"your address.\r\n")
    assert f.readline() == b""
    s.close()
    s, f = raw_client(st, st.POP3_PORT, source="127.0.0.2")
    assert f.readline().startswith(b"+OK")
    s.sendall(v2("192.0.2.9", 43001, dport=110))
    assert f.readline().startswith(b"-ERR PROXY protocol is not accepted")
    s.close()
    # Implicit TLS port: closed without a handshake.
    s = socket.create_connection((st.host, st.IMAPS_PORT), timeout=10,
                                 source_address=("127.0.0.2", 0))
    s.sendall(v2("192.0.2.9", 43002))
    with pytest.raises((ssl.SSLError, OSError)):
        st.ssl_context().wrap_socket(s, server_hostname=st.host)
    s.close()
    assert "client=192.0.2.9" not in st.log("s1f1")
    assert "PROXY protocol header from an untrusted address refused" in \
        st.log("s1f1")


def test_missing_or_bad_header_from_the_balancer(st):
    # From a proxy network, a connection must start with a header.
    s = socket.create_connection((st.host, st.IMAP_PORT), timeout=10)
    s.sendall(b"a1 CAPABILITY\r\n")
    assert s.recv(100) == b""
    s.close()
    s = socket.create_connection((st.host, st.IMAP_PORT), timeout=10)
    s.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 99999 143\r\n")
    assert s.recv(100) == b""
    s.close()
    assert "invalid PROXY header" in st.log("s1f1")
    # v2 LOCAL (health checks): the balancer's own address stands.
    s = socket.create_connection((st.host, st.IMAP_PORT), timeout=10)
    s.sendall(V2_SIG + bytes([0x20, 0x00, 0, 0]))
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.close()
