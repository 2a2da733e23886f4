"""Prometheus metrics and health endpoints of the frontend (GET /metrics,
GET /health[/PROTOCOL] on its HTTP listener) and of the backend (its
backend.http_listen).

One stack for the module, its frontend with two event loops (counters
live per loop and are summed at scrape time) and /metrics open to
127.0.0.1 only:

    frontend.workers = 2, http.metrics_networks = 127.0.0.1/32,
    frontend.proxy_networks = 127.0.0.2 (a load balancer)

Values are compared before and after what a test does: every count
moves by exactly what the test caused.
"""

import http.client
import imaplib
import os
import poplib
import smtplib
import re
import signal
import socket
import ssl
import time
import urllib.parse

import pytest

from conftest import raw_client, read_until_tagged, sigstop, wait_for

pytestmark = pytest.mark.daemons

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="metrics", settings=[
        "frontend.workers=2",
        "http.metrics_networks=127.0.0.1/32",
        "frontend.proxy_networks=127.0.0.2",
    ])


def get(st, path, port=None, source=None):
    conn = http.client.HTTPConnection(
        st.host, port or st.HTTP_PORT, timeout=30,
        source_address=(source, 0) if source else None)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, r.getheader("Content-Type"), body


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page; every
    line is a comment or a well-formed sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith("# HELP ") or \
                line.startswith("# TYPE "), line
            continue
        m = SAMPLE.match(line)
        assert m, "malformed sample %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in out, "duplicate sample %r" % line
        out[key] = float(m.group(4))
    return out


def scrape(st, port=None):
    status, ctype, body = get(st, "/metrics", port)
    assert status == 200, body
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    return parse(body)


def v(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def phase_count(m, proto, phase):
    return v(m, "portico_frontend_login_phase_seconds_count",
             protocol=proto, phase=phase)


def imap_login(st, user, pw):
    c = imaplib.IMAP4_SSL(st.host, st.IMAPS_PORT,
                          ssl_context=st.ssl_context())
    try:
        c.login(user, pw)
        c.select("INBOX")
        c.logout()
        return True
    except imaplib.IMAP4.error:
        c.logout()
        return False


def test_metrics_move_with_logins(st):
    user, pw = st.new_user("m")
    before = scrape(st)
    n = 4   # spread over both loops by the kernel
    for _ in range(n):
        assert imap_login(st, user, pw)
    assert not imap_login(st, user, pw + "-wrong")
    p = poplib.POP3_SSL(st.host, st.POP3S_PORT, context=st.ssl_context())
    p.user(user)
    p.pass_(pw)
    p.quit()
    wait_for(lambda: v(scrape(st), "portico_frontend_connections",
                       protocol="imap", state="relay") == 0,
             what="sessions closed")
    after = scrape(st)

    def d(name, **labels):
        return v(after, name, **labels) - v(before, name, **labels)

    assert d("portico_frontend_logins_total", protocol="imap",
             result="ok") == n
    assert d("portico_frontend_logins_total", protocol="imap",
             result="fail") == 1
    assert d("portico_frontend_logins_total", protocol="pop3",
             result="ok") == 1
    assert d("portico_frontend_connections_accepted_total",
             protocol="imap") == n + 1
    assert d("portico_frontend_connections_accepted_total",
             protocol="pop3") == 1
    for phase in ("tls", "credentials", "ldap"):
        assert phase_count(after, "imap", phase) - \
            phase_count(before, "imap", phase) == n + 1, phase
    for phase in ("route", "backend", "total"):
        assert phase_count(after, "imap", phase) - \
            phase_count(before, "imap", phase) == n, phase
    # buckets are cumulative and end with the count
    for phase in ("tls", "ldap", "total"):
        buckets = sorted(
            (float(dict(k[1])["le"]), val) for k, val in after.items()
            if k[0] == "portico_frontend_login_phase_seconds_bucket"
            and dict(k[1]).get("protocol") == "imap"
            and dict(k[1]).get("phase") == phase)
        counts = [c for _, c in buckets]
        assert counts == sorted(counts)
        assert buckets[-1][0] == float("inf")
        assert counts[-1] == phase_count(after, "imap", phase)
    assert d("portico_frontend_link_sessions_total") == n + 1
    assert d("portico_frontend_link_bytes_total",
             direction="to_backend") > 0
    assert d("portico_frontend_link_bytes_total",
             direction="from_backend") > 0
    assert v(after, "portico_frontend_backend_links_up") >= 1
    assert v(after, "portico_frontend_workers") == 2
    for state in ("prelogin", "auth", "opening", "relay"):
        assert v(after, "portico_frontend_connections", protocol="imap",
                 state=state) == 0, state


def test_logged_in_submission_sessions_are_local(st):
    """A submission session after AUTH is counted in state "local" (its
    transactions go to a backend one by one), never as "other"."""
    user, pw = st.new_user("msub")
    s = smtplib.SMTP_SSL(st.host, st["SUBMISSIONS_PORT"],
                         context=st.ssl_context(), timeout=10)
    try:
        s.login(user, pw)
        m = scrape(st)
        assert v(m, "portico_frontend_connections", protocol="submission",
                 state="local") == 1
        assert not [k for k in m if dict(k[1]).get("state") == "other"]
    finally:
        s.quit()


def test_settings_page_logins_counted(st):
    user, pw = st.new_user("mh")
    before = scrape(st)
    conn = http.client.HTTPSConnection(st.host, st.HTTPS_PORT,
                                       context=st.ssl_context(), timeout=30)
    for password, status in ((pw, 200), (pw + "x", 403)):
        conn.request("POST", "/settings", urllib.parse.urlencode(
            {"user": user, "password": password}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        assert r.status == status
    after = scrape(st)
    for result, delta in (("ok", 1), ("fail", 1), ("tempfail", 0)):
        assert v(after, "portico_frontend_logins_total", protocol="http",
                 result=result) - v(before, "portico_frontend_logins_total",
                                    protocol="http", result=result) == delta


def test_metrics_only_for_metrics_networks(st):
    status, _, body = get(st, "/metrics", source="127.0.0.7")
    assert status == 403 and "http.metrics_networks" in body
    # health is for everyone (load balancers)
    status, _, _ = get(st, "/health", source="127.0.0.7")
    assert status == 200


def via_balancer(st, client, request, tls=False):
    """REQUEST sent from the balancer (127.0.0.2) after a PROXY v1 header
    naming CLIENT (None: no header); the raw answer."""
    s = socket.create_connection(
        (st.host, st.HTTPS_PORT if tls else st.HTTP_PORT), timeout=10,
        source_address=("127.0.0.2", 0))
    if client is not None:
        s.sendall(b"PROXY TCP4 %s 127.0.0.1 40000 80\r\n" %
                  client.encode())
    if tls:
        s = st.ssl_context().wrap_socket(s, server_hostname=st.host)
    s.sendall(request)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            break
        if not b:
            break
        out += b
    s.close()
    return out


def test_http_behind_a_balancer(st):
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    # the client address of the PROXY header is the one that counts
    assert via_balancer(st, "127.0.0.1", req).startswith(b"HTTP/1.1 200 ")
    assert via_balancer(st, "127.0.0.9", req).startswith(b"HTTP/1.1 403 ")
    # PROXY header, then TLS
    assert via_balancer(st, "127.0.0.1", req, tls=True).startswith(
        b"HTTP/1.1 200 ")
    # from the balancer without a header: closed, never served
    assert via_balancer(st, None, req) == b""
    assert "invalid PROXY header" in st.log("s1f1")


def health(st, path="/health"):
    return get(st, path)[0::2]


def test_health_ok(st):
    status, body = health(st)
    assert status == 200, body
    lines = body.splitlines()
    assert lines[0] == "status ok"
    assert lines[1] == "ldap ok"
    assert lines[2].startswith("backend ok ")
    assert lines[3:] == ["imap ok", "pop3 ok"]
    status, body = health(st, "/health/imap")
    assert status == 200 and body.splitlines()[-1] == "imap ok"
    status, body = health(st, "/health/pop3")
    assert status == 200 and body.splitlines()[-1] == "pop3 ok"
    assert health(st, "/health/gopher")[0] == 404


def test_health_and_errors_when_ldap_is_down(st):
    user, pw = st.new_user("mdown")
    before = scrape(st)
    st.stop("ldap")
    try:
        status, body = health(st)
        assert status == 503, body
        assert body.splitlines()[0] == "status fail"
        assert body.splitlines()[1].startswith("ldap fail ")
        assert not imap_login(st, user, pw)
        after = scrape(st)
        assert v(after, "portico_frontend_logins_total", protocol="imap",
                 result="tempfail") - v(before,
                                        "portico_frontend_logins_total",
                                        protocol="imap",
                                        result="tempfail") == 1
        errs = sum(v(after, "portico_frontend_ldap_errors_total", kind=k) -
                   v(before, "portico_frontend_ldap_errors_total", kind=k)
                   for k in ("unavailable", "timeout"))
        assert errs == 1
    finally:
        st.start("ldap")
    wait_for(lambda: health(st)[0] == 200, timeout=30,
             what="health back to 200")


def test_health_when_the_backend_is_down(st):
    st.stop("s1b1")
    try:
        status, body = wait_for(
            lambda: (lambda r: r if r[0] == 503 else None)(health(st)),
            timeout=30, what="health 503")
        lines = body.splitlines()
        assert lines[1] == "ldap ok"
        assert lines[2].startswith("backend fail no link up; probe=s1b1: ")
        assert v(scrape(st), "portico_frontend_backend_links_up") == 0
    finally:
        st.start("s1b1")
    # no link is up, but the probe reaches the backend again
    status, body = wait_for(
        lambda: (lambda r: r if r[0] == 200 else None)(health(st)),
        timeout=30, what="health 200")
    assert body.splitlines()[2] in ("backend ok links_up=0 probe=s1b1",) \
        or body.splitlines()[2].startswith("backend ok links_up=")


# -- the backend's listener ------------------------------------------------------

def test_backend_metrics_move(st):
    port = st.SITE1_BE1_HTTP_PORT
    user, pw = st.new_user("mb")
    before = scrape(st, port)
    c = imaplib.IMAP4_SSL(st.host, st.IMAPS_PORT,
                          ssl_context=st.ssl_context())
    c.login(user, pw)
    c.select("INBOX")
    for i in range(3):
        typ, _ = c.append("INBOX", None, None,
                          b"Subject: m%d\r\n\r\nbody\r\n" % i)
        assert typ == "OK"
    assert c.uid("FETCH", "1:*", "(FLAGS)")[0] == "OK"
    assert c.uid("STORE", "1", "+FLAGS", "(\\Seen)")[0] == "OK"
    assert c.select("No/Such/Mailbox")[0] == "NO"
    c.logout()
    p = poplib.POP3_SSL(st.host, st.POP3S_PORT, context=st.ssl_context())
    p.user(user)
    p.pass_(pw)
    assert p.stat()[0] == 3
    p.retr(1)
    with pytest.raises(poplib.error_proto):
        p.retr(99)
    p.quit()
    after = wait_for(lambda: (lambda m: m if v(
        m, "portico_backend_sessions") == 0 else None)(scrape(st, port)),
        what="backend sessions closed")

    def d(name, **labels):
        return v(after, name, **labels) - v(before, name, **labels)

    assert d("portico_backend_sessions_opened_total", protocol="imap") == 1
    assert d("portico_backend_sessions_opened_total", protocol="pop3") == 1
    cmd = "portico_backend_commands_total"
    assert d(cmd, protocol="imap", command="APPEND", result="OK") == 3
    assert d(cmd, protocol="imap", command="SELECT", result="OK") == 1
    assert d(cmd, protocol="imap", command="SELECT", result="NO") == 1
    assert d(cmd, protocol="imap", command="UID FETCH", result="OK") == 1
    assert d(cmd, protocol="imap", command="UID STORE", result="OK") == 1
    assert d(cmd, protocol="imap", command="LOGOUT", result="OK") == 1
    assert d(cmd, protocol="pop3", command="STAT", result="OK") == 1
    assert d(cmd, protocol="pop3", command="RETR", result="OK") == 1
    assert d(cmd, protocol="pop3", command="RETR", result="ERR") == 1
    assert d(cmd, protocol="pop3", command="QUIT", result="OK") == 1
    # every APPEND and the STORE were written; commits may group them
    commits = d("portico_backend_store_commits_total")
    txns = d("portico_backend_store_transaction_seconds_count")
    ops = d("portico_backend_store_commit_operations_sum")
    assert 1 <= commits and txns == commits
    assert d("portico_backend_store_commit_operations_count") == commits
    assert ops >= 4
    assert d("portico_backend_store_transaction_seconds_sum") > 0
    status, body = get(st, "/health", port)[0::2]
    assert status == 200
    assert body.splitlines()[:3] == ["status ok", "store ok", "link ok"]
    assert get(st, "/nothing", port)[0] == 404


def test_backend_link_writes_per_command(st):
    """A session's commands that wait for the store: each answer leaves in
    one write to the link, with no Credit frame of its own (credit goes
    back once half of the link window is used)."""
    port = st.SITE1_BE1_HTTP_PORT
    user, pw = st.new_user("lw")
    st.import_message(user, b"Subject: lw\r\n\r\nbody\r\n")
    c = imaplib.IMAP4_SSL(st.host, st.IMAPS_PORT,
                          ssl_context=st.ssl_context())
    c.login(user, pw)
    c.select("INBOX")
    n = 40
    before = scrape(st, port)
    for i in range(n):
        flag = "+FLAGS" if i % 2 == 0 else "-FLAGS"
        assert c.store("1", flag, "(\\Flagged)")[0] == "OK"
    after = scrape(st, port)
    c.logout()

    def d(name):
        return v(after, name) - v(before, name)

    writes = d("portico_backend_link_writes_total")
    credits = d("portico_backend_link_credit_frames_total")
    # 40 answers; a little room for other sessions of the shared stack
    assert n <= writes <= n + 10, writes
    assert credits <= 2, credits


def test_frontend_logout_leaves_in_one_write(st):
    """A session's last answer (BYE and the tagged OK) and its TLS
    close_notify leave the frontend in one write: what one read from the
    link brings a client waits corked until the read is processed (it
    took two writes before, the close_notify one of its own)."""
    user, pw = st.new_user("cw")
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    assert read_until_tagged(f, b"l")[-1].startswith(b"l OK")
    s.sendall(b"n NOOP\r\n")
    assert read_until_tagged(f, b"n")[-1].startswith(b"n OK")
    before = v(scrape(st), "portico_frontend_client_writes_total")
    s.sendall(b"z LOGOUT\r\n")
    lines = read_until_tagged(f, b"z")
    assert lines[0].startswith(b"* BYE"), lines
    assert lines[-1].startswith(b"z OK"), lines
    assert f.read() == b""  # the close_notify, then the end
    s.close()
    after = v(scrape(st), "portico_frontend_client_writes_total")
    assert after - before == 1, after - before


def test_frontend_link_writes_per_loop_iteration(st):
    """The commands of many clients that one event loop reads in the same
    iteration go to the backend in one write per link, not one each: the
    frontend is stopped (SIGSTOP) while twelve logged-in clients send a
    NOOP, so that its two loops find them all ready at once when it goes
    on; every client still gets its own answer."""
    n = 12
    socks = []
    for i in range(n):
        if i % 4 == 0:
            user, pw = st.new_user("fw")
        s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
        line = read_until_tagged(f, b"l")[-1]
        assert line.startswith(b"l OK"), line
        socks.append((s, f))
    pid = int((st.dir / "s1f1" / "pid").read_text())
    before = scrape(st)
    sigstop(pid)
    try:
        for i, (s, f) in enumerate(socks):
            s.sendall(b"n%d NOOP\r\n" % i)
        time.sleep(0.5)  # every NOOP in the frontend's socket buffers
    finally:
        os.kill(pid, signal.SIGCONT)
    for i, (s, f) in enumerate(socks):
        line = read_until_tagged(f, b"n%d" % i)[-1]
        assert line.startswith(b"n%d OK" % i), line
    after = scrape(st)
    for s, f in socks:
        s.sendall(b"z LOGOUT\r\n")
        s.close()
    writes = v(after, "portico_frontend_link_writes_total") - \
        v(before, "portico_frontend_link_writes_total")
    # one per loop (two loops), a little room for a probe or a straggler;
    # one write per command would be 12
    assert 1 <= writes <= 5, writes


def test_every_metric_is_documented(stack):
    """Every family on a frontend's and a backend's /metrics page has its
    row in docs/OPERATIONS.md, under its name without the prefix."""
    from conftest import REPO
    doc = (REPO / "docs" / "OPERATIONS.md").read_text()
    missing = []
    for port, prefix in ((stack.HTTP_PORT, "portico_frontend_"),
                         (stack.SITE1_BE1_HTTP_PORT, "portico_backend_")):
        status, _, body = get(stack, "/metrics", port)
        assert status == 200
        families = [l.split()[2] for l in body.splitlines()
                    if l.startswith("# TYPE ")]
        assert len(families) > 10, families
        for name in families:
            short = name[len(prefix):] if name.startswith(prefix) else name
            if "| `%s` |" % short not in doc and \
                    "| `%s` |" % name not in doc:
                missing.append(name)
    assert not missing, "not in docs/OPERATIONS.md: %s" % missing
