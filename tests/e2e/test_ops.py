"""Operations (issue #7 points 7 and 8): one session id from frontend to
backend, protocol logging with secrets redacted, SIGHUP reloads of the
configuration, SIGTERM drains, --check, the systemd units and the
production configuration in config/.

One stack of its own (protocol logging on for every protocol, a frontend
grace of 3s, a backend grace of 20s); the drain tests run last and start
the daemons again.
"""

import base64
import configparser
import http.client
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (REPO, backend_metric, free_port, raw_client,
                      read_until_tagged, wait_for)
from smtp_client import RawSMTP

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD", REPO / "build"))
FRONTEND_GRACE = 3
BACKEND_GRACE = 20


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(
        "ops", settings=("log.protocol_imap=yes", "log.protocol_pop3=yes",
                         "log.protocol_smtp=yes", "log.protocol_lmtp=yes",
                         "frontend.shutdown_grace=%ds" % FRONTEND_GRACE,
                         "backend.shutdown_grace=%ds" % BACKEND_GRACE))


def pid(st, service):
    return int((st.dir / service / "pid").read_text())


def logs(st):
    return st.log("s1f1") + st.log("s1b1")


def b64(data):
    return base64.b64encode(data).decode()


def tls_line(s, f, line):
    s.sendall(line if isinstance(line, bytes) else line.encode())
    return f.readline()


# ---- one session id, frontend to backend ---------------------------------

def session_ids(log, user, event):
    return re.findall(r"session=([0-9a-f]+) .*user=%s .*%s" % (
        re.escape(user), event), log)


def test_session_id_followed_from_frontend_to_backend(st):
    user, pw = st.new_user("sid")
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    p = st.pop3(user, pw)
    p.stat()
    p.quit()
    fe = session_ids(st.log("s1f1"), user, "authenticated")
    assert len(fe) == 2, fe
    be_imap = session_ids(st.log("s1b1"), user, "protocol=imap .*opened")
    be_pop3 = session_ids(st.log("s1b1"), user, "protocol=pop3 .*opened")
    assert be_imap == [fe[0]] and be_pop3 == [fe[1]], (fe, be_imap,
                                                        be_pop3)
    # the backend's later lines of the session carry the same id
    assert re.search(r"session=%s stream=\d+ closed" % fe[0],
                     st.log("s1b1"))


# ---- protocol logging ----------------------------------------------------

SECRET = "Zq7Secret-PlogA1"
SPACED = "Zq7 Spaced Secret B2"


def secret_forms(user, password):
    """Every form of PASSWORD a client sent in these tests."""
    pw = password.encode()
    u = user.encode()
    return [password, b64(pw), b64(b"\0" + u + b"\0" + pw),
            b64(u + b"\0" + u + b"\0" + pw)]


def test_protocol_log_imap(st):
    user, pw = st.add_user("plog-imap@example.test", SECRET)
    user2, pw2 = st.add_user("plog-spaced@example.test", SPACED)
    marker = "MARKER-body-%d" % os.getpid()
    st.import_message(user, ("Subject: log\r\n\r\n%s\r\n" % marker).encode())
    port = st.IMAPS_PORT

    def session():
        s, f = raw_client(st, port, tls=True)
        assert f.readline().startswith(b"* OK")
        return s, f

    # LOGIN: atom, quoted and literal passwords
    s, f = session()
    assert tls_line(s, f, "a1 LOGIN %s %s\r\n" % (user, pw)).startswith(
        b"a1 OK"), f
    s.sendall(b"a2 SELECT INBOX\r\n")
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.sendall(b"a3 FETCH 1 BODY[]\r\n")
    out = read_until_tagged(f, b"a3")
    assert marker.encode() in b"".join(out)
    msg = ("Subject: up\r\n\r\nUP-%s\r\n" % marker).encode()
    s.sendall(b"a4 APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
    assert read_until_tagged(f, b"a4")[-1].startswith(b"a4 OK")
    s.close()
    s, f = session()
    assert tls_line(s, f, 'b1 LOGIN "%s" "%s"\r\n' % (
        user2, pw2)).startswith(b"b1 OK")
    s.close()
    s, f = session()
    s.sendall(b"c1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (
        len(user2), user2.encode(), len(pw2), pw2.encode()))
    assert f.readline().startswith(b"c1 OK")
    s.close()
    # AUTHENTICATE PLAIN with SASL-IR, without, and LOGIN
    plain = b64(b"\0" + user.encode() + b"\0" + pw.encode())
    s, f = session()
    assert tls_line(s, f, "d1 AUTHENTICATE PLAIN %s\r\n" % plain).startswith(
        b"d1 OK")
    s.close()
    s, f = session()
    assert tls_line(s, f, "e1 AUTHENTICATE PLAIN\r\n").startswith(b"+")
    assert tls_line(s, f, plain + "\r\n").startswith(b"e1 OK")
    s.close()
    s, f = session()
    assert tls_line(s, f, "g1 AUTHENTICATE LOGIN\r\n").startswith(b"+")
    assert tls_line(s, f, b64(user.encode()) + "\r\n").startswith(b"+")
    assert tls_line(s, f, b64(pw.encode()) + "\r\n").startswith(b"g1 OK")
    s.close()

    def logged(text):
        return 'dir=in line="%s"' % text.replace('"', '\\"')

    def wait_logged(*lines):
        wait_for(lambda: all(logged(x) in logs(st) for x in lines),
                 what="protocol log lines %r in %s" % (
                     [x for x in lines if logged(x) not in logs(st)],
                     logs(st)[-3000:]))

    wait_logged("a1 LOGIN %s <redacted>" % user,
                'b1 LOGIN "%s" <redacted>' % user2,
                "c1 LOGIN {%d+}<%d octets> <redacted>" % (len(user2),
                                                          len(user2)),
                "d1 AUTHENTICATE PLAIN <redacted>",
                "e1 AUTHENTICATE PLAIN", "g1 AUTHENTICATE LOGIN",
                "<redacted>",
                # after login: the backend
                "a2 SELECT INBOX", "a3 FETCH 1 BODY[]",
                "a4 APPEND INBOX {%d+}<%d octets>" % (len(msg), len(msg)))
    text = logs(st)
    # responses, with the session id and dir=out, literals by their size
    assert re.search(r'session=[0-9a-f]+ protocol=imap dir=out line="a2 OK',
                     st.log("s1b1"))
    assert re.search(r'protocol=imap dir=out line="\* 1 FETCH \(.*BODY\[\] '
                     r'\{\d+\}"', st.log("s1b1"))
    assert re.search(r'protocol=imap dir=out line="\* OK \[CAPABILITY',
                     st.log("s1f1"))
    assert marker not in text
    for form in secret_forms(user, pw) + secret_forms(user2, pw2):
        assert form not in text, form


def test_protocol_log_pop3(st):
    user, pw = st.add_user("plog-pop3@example.test", SECRET + "p")
    marker = "POPMARKER-%d" % os.getpid()
    st.import_message(user, ("Subject: p\r\n\r\n%s\r\n" % marker).encode())
    s, f = raw_client(st, st.POP3S_PORT, tls=True)
    assert f.readline().startswith(b"+OK")
    assert tls_line(s, f, "USER %s\r\n" % user).startswith(b"+OK")
    assert tls_line(s, f, "PASS %s\r\n" % pw).startswith(b"+OK")
    assert tls_line(s, f, "RETR 1\r\n").startswith(b"+OK")
    body = b""
    while not body.endswith(b"\r\n.\r\n"):
        body += f.readline()
    assert marker.encode() in body
    assert tls_line(s, f, "QUIT\r\n").startswith(b"+OK")
    s.close()
    plain = b64(b"\0" + user.encode() + b"\0" + pw.encode())
    s, f = raw_client(st, st.POP3S_PORT, tls=True)
    f.readline()
    assert tls_line(s, f, "AUTH PLAIN %s\r\n" % plain).startswith(b"+OK")
    s.close()
    s, f = raw_client(st, st.POP3S_PORT, tls=True)
    f.readline()
    assert tls_line(s, f, "AUTH PLAIN\r\n").startswith(b"+")
    assert tls_line(s, f, plain + "\r\n").startswith(b"+OK")
    s.close()
    digest = "c4c9334bac560ecc979e58001b3e22fb"
    s, f = raw_client(st, st.POP3S_PORT, tls=True)
    f.readline()
    assert tls_line(s, f, "APOP %s %s\r\n" % (user, digest)).startswith(
        b"-ERR")
    s.close()
    for line in ("USER %s" % user, "PASS <redacted>",
                 "AUTH PLAIN <redacted>", "AUTH PLAIN", "<redacted>",
                 "APOP %s <redacted>" % user, "RETR 1", "QUIT"):
        wait_for(lambda: 'protocol=pop3 dir=in line="%s"' % line in logs(st),
                 what="POP3 line %r" % line)
    text = logs(st)
    assert re.search(r'protocol=pop3 dir=out data_octets=\d+',
                     st.log("s1b1"))
    assert marker not in text
    assert digest not in text
    for form in secret_forms(user, pw):
        assert form not in text, form


def test_protocol_log_smtp(st):
    user, pw = st.add_user("plog-smtp@example.test", SECRET + "s")
    marker = "SMTPMARKER-%d" % os.getpid()
    ctx = st.ssl_context()
    for how in ("plain-ir", "plain", "login"):
        c = smtplib.SMTP(st.host, st.SUBMISSION_PORT, timeout=10)
        c.starttls(context=ctx)
        c.ehlo()
        c.user, c.password = user, pw
        if how == "plain-ir":
            c.auth("PLAIN", c.auth_plain, initial_response_ok=True)
            c.sendmail(user, [user], "Subject: s\r\n\r\n%s\r\n" % marker)
        elif how == "plain":
            c.auth("PLAIN", c.auth_plain, initial_response_ok=False)
        else:
            c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        c.quit()
    for line in ("AUTH PLAIN <redacted>", "AUTH PLAIN", "AUTH LOGIN",
                 "<redacted>"):
        wait_for(lambda: 'protocol=smtp dir=in line="%s"' % line
                 in st.log("s1f1"), what="SMTP line %r" % line)
    text = st.log("s1f1")
    assert re.search(r'protocol=smtp dir=in data_octets=\d+', text)
    assert re.search(r'protocol=smtp dir=out line="235 ', text)
    # the delivery to the user's mailbox went through LMTP, logged too
    wait_for(lambda: 'protocol=lmtp dir=in line="LHLO' in st.log("s1f1"),
             timeout=30, what="LMTP protocol log")
    text = logs(st)
    assert marker not in text
    for form in secret_forms(user, pw):
        assert form not in text, form


# ---- SIGHUP ----------------------------------------------------------------

def reload(st, service, what="reload: generation=%d applied"):
    """SIGHUP to SERVICE; waits for its log to say the reload is done (or
    refused).  Returns the new part of the log."""
    before = len(st.log(service))
    gens = re.findall(r"reload: generation=(\d+) settings_changed",
                      st.log(service))
    gen = int(gens[-1]) + 1 if gens else 2
    os.kill(pid(st, service), signal.SIGHUP)
    done = (what % gen) if service.startswith("s1f") else \
        "reload: generation=%d settings_changed" % gen

    def finished():
        new = st.log(service)[before:]
        return new if (done in new or "configuration kept" in new) else None
    return wait_for(finished, what="%s to reload" % service)


class ConfigEdit:
    """Appends to a daemon's ini file; restore() puts it back and
    reloads."""

    def __init__(self, st, service, kind):
        self.st, self.service = st, service
        self.path = st.dir / service / ("%s.ini" % kind)
        self.original = self.path.read_text()

    def append(self, text):
        with open(self.path, "a") as f:
            f.write("\n; test_ops\n" + text)

    def restore(self):
        self.path.write_text(self.original)
        new = reload(self.st, self.service)
        assert "configuration kept" not in new, new


def greeting(st, port, source, tls=True):
    s, f = raw_client(st, port, tls=tls, source=source)
    return s, f, f.readline()


def test_sighup_frontend_applies_live_settings(st):
    user, pw = st.new_user("hup")
    src = "127.0.0.77"
    # before: no LOGIN on the cleartext port, three connections from src
    plain = st.imap_plain()
    with pytest.raises(imaplib.IMAP4.error):
        plain.login(user, pw)
    plain.logout()
    s1, f1, g = greeting(st, st.IMAPS_PORT, src)
    assert g.startswith(b"* OK")
    assert tls_line(s1, f1, "a LOGIN %s %s\r\n" % (user, pw)).startswith(
        b"a OK")
    s2, f2, g = greeting(st, st.IMAPS_PORT, src)
    s3, f3, g = greeting(st, st.IMAPS_PORT, src)
    assert g.startswith(b"* OK")
    s3.close()
    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        edit.append("[limits]\nmax_connections_per_address = 2\n"
                    "[frontend]\nimap_login_type = plaintext\n"
                    "workers = 3\n")
        new = reload(st, "s1f1")
        assert "setting=limits.max_connections_per_address changed" in new
        assert "setting=frontend.imap_login_type changed" in new
        assert ("setting=frontend.workers changed but takes effect "
                "only at start; old value kept") in new
        assert "settings_changed=2" in new, new
        # a new connection from src is one too many now ...
        s4, f4, g = greeting(st, st.IMAPS_PORT, src)
        assert g == b"* BYE [UNAVAILABLE] Too many connections from your " \
                    b"address.\r\n", g
        s4.close()
        # ... the existing session goes on, other addresses are served
        s1.sendall(b"b NOOP\r\n")
        assert read_until_tagged(f1, b"b")[-1].startswith(b"b OK")
        s5, f5, g = greeting(st, st.IMAPS_PORT, "127.0.0.78")
        assert g.startswith(b"* OK")
        s5.close()
        # plaintext login type, on the listener that was not moved
        plain = st.imap_plain()
        assert plain.login(user, pw)[0] == "OK"
        plain.logout()
    finally:
        for s in (s1, s2):
            s.close()
        edit.restore()
    plain = st.imap_plain()
    with pytest.raises(imaplib.IMAP4.error):
        plain.login(user, pw)
    plain.logout()


def listening_sockets(port):
    """How many TCP sockets listen on 127.0.0.1:PORT (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows
               if r[1] == "0100007F:%04X" % port and r[3] == "0A")


def test_sighup_moves_listeners(st):
    """frontend.*_listen and http.listen apply at a reload: a listener
    moved to a new address accepts there on every loop and no longer at
    the old one, an emptied one closes, one whose new address another
    process holds stays where it was (and says so), sessions already open
    go on; putting the file back puts the listeners back."""
    user, pw = st.new_user("hupmove")
    imaps, pop3 = st.port("imaps"), st.port("pop3")
    submissions = int(st.env["SUBMISSIONS_PORT"])
    c = st.imap(user, pw)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    moved, http_moved = free_port(), free_port()
    http_port = st.HTTP_PORT
    kept = http.client.HTTPConnection(st.host, http_port, timeout=10)
    kept.request("GET", "/health")
    assert kept.getresponse().read() is not None
    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        edit.append("[frontend]\nimaps_listen = 127.0.0.1:%d\n"
                    "pop3_listen =\nsubmissions_listen = 127.0.0.1:%d\n"
                    "[http]\nlisten = 127.0.0.1:%d\n"
                    % (moved, taken, http_moved))
        new = reload(st, "s1f1")
        assert "takes effect only at start" not in new, new
        for name in ("frontend.imaps_listen", "frontend.pop3_listen",
                     "frontend.submissions_listen", "http.listen"):
            assert "setting=%s changed" % name in new, new
        assert "reload: http.listen: no longer listening on " \
            "127.0.0.1:%d" % http_port in new, new
        assert "listening protocol=http address=127.0.0.1:%d" % http_moved \
            in new, new
        assert "reload: frontend.imaps_listen: no longer listening on " \
            "127.0.0.1:%d" % imaps in new, new
        assert "listening protocol=imaps address=127.0.0.1:%d" % moved \
            in new, new
        assert "reload: frontend.pop3_listen: no longer listening on " \
            "127.0.0.1:%d" % pop3 in new, new
        assert "reload: frontend.submissions_listen kept at 127.0.0.1:%d: " \
            "127.0.0.1:%d cannot be bound" % (submissions, taken) in new, new
        # a socket of each loop's listens there, and serves logins
        workers = int(re.search(r"applied by (\d+) workers", new).group(1))
        assert listening_sockets(moved) == workers >= 2, new
        assert listening_sockets(imaps) == listening_sockets(pop3) == 0
        assert listening_sockets(submissions) == workers
        assert listening_sockets(http_moved) == workers
        assert listening_sockets(http_port) == 0
        h = http.client.HTTPConnection("127.0.0.1", http_moved, timeout=10)
        h.request("GET", "/health")
        assert h.getresponse().status == 200
        h.close()
        # the HTTP connection from before goes on
        kept.request("GET", "/health")
        assert kept.getresponse().status == 200
        for _ in range(8):
            m = imaplib.IMAP4_SSL("127.0.0.1", moved,
                                  ssl_context=st.ssl_context(), timeout=10)
            assert m.login(user, pw)[0] == "OK"
            m.logout()
        assert not port_open(imaps) and not port_open(pop3)
        # the session from before goes on; submissions stayed
        assert c.noop()[0] == "OK"
        s, f = raw_client(st, submissions, tls=True)
        assert f.readline().startswith(b"220 ")
        s.close()
    finally:
        holder.close()
        edit.restore()
    assert port_open(imaps) and port_open(pop3) and not port_open(moved)
    assert listening_sockets(imaps) == listening_sockets(pop3) == workers
    assert listening_sockets(http_port) == workers
    assert listening_sockets(http_moved) == 0
    kept.close()
    assert st.imap(user, pw).logout()[0] == "BYE"
    c.logout()


def test_sighup_applies_network_lists(st):
    """frontend.proxy_networks, frontend.trusted_networks and
    http.metrics_networks apply at a reload, on every event loop: a load
    balancer added to proxy_networks has its PROXY headers taken (the
    session logs the address in the header), an address put in
    trusted_networks is no longer held to limits.max_connections_per_address,
    and /metrics answers 403 to a loopback no longer listed."""
    import urllib.error
    import urllib.request
    src, lb = "127.0.0.81", "127.0.0.82"

    def proxied(n=1):
        # one client address each: a connection closed here may still
        # count against limits.max_connections_per_address until the
        # frontend has read its end
        s, f = raw_client(st, st.IMAP_PORT, source=lb)
        s.sendall(b"PROXY TCP4 192.0.2.8%d 127.0.0.1 40811 143\r\n"
                  b"a1 CAPABILITY\r\n" % n)
        lines = [f.readline(), f.readline()]
        s.close()
        return lines

    def metrics_status():
        url = "http://%s:%s/metrics" % (st.host, st.HTTP_PORT)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    # (the cleartext port greets first, then refuses the header)
    assert proxied()[1] == (b"* BYE PROXY protocol is not accepted from "
                            b"your address.\r\n")
    assert metrics_status() == 200
    edit = ConfigEdit(st, "s1f1", "frontend")
    held = []
    try:
        edit.append("[limits]\nmax_connections_per_address = 1\n"
                    "[frontend]\nproxy_networks = %s/32\n"
                    "trusted_networks = %s/32\n"
                    "[http]\nmetrics_networks = 10.0.0.0/8\n" % (lb, src))
        new = reload(st, "s1f1")
        for name in ("frontend.proxy_networks", "frontend.trusted_networks",
                     "http.metrics_networks"):
            assert "setting=%s changed" % name in new, new
            assert "%s changed but takes effect only at start" % name \
                not in new
        # the balancer's header is taken, on whichever loop
        for n in range(1, 5):
            first, second = proxied(n)
            assert first.startswith(b"* OK"), first
            assert second.startswith(b"* CAPABILITY"), second
        assert "client=192.0.2.81" in st.log("s1f1")
        # a trusted address is not held to one connection
        for _ in range(3):
            s, f, g = greeting(st, st.IMAPS_PORT, src)
            assert g.startswith(b"* OK"), g
            held.append(s)
        s, f, g = greeting(st, st.IMAPS_PORT, "127.0.0.83")
        s2, f2, g2 = greeting(st, st.IMAPS_PORT, "127.0.0.83")
        assert g2 == b"* BYE [UNAVAILABLE] Too many connections from " \
            b"your address.\r\n", g2
        s.close()
        s2.close()
        assert metrics_status() == 403
    finally:
        for s in held:
            s.close()
        edit.restore()
    assert metrics_status() == 200
    assert proxied()[1].startswith(b"* BYE PROXY protocol")


def test_sighup_applies_http_limits(st):
    """http.* sizes and timeouts apply at a reload (docs/OPERATIONS.md):
    after request_timeout = 1s, a request begun and left unfinished gets
    its 408 well within the 10 s this test waits (30 s before)."""
    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        edit.append("[http]\nrequest_timeout = 1s\n")
        new = reload(st, "s1f1")
        assert "setting=http.request_timeout changed" in new, new
        s = socket.create_connection((st.host, st.HTTP_PORT), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert s.makefile("rb").readline().startswith(b"HTTP/1.1 408 ")
        s.close()
    finally:
        edit.restore()


def login_result(st, user, pw):
    """An IMAP LOGIN through the frontend: "OK", or the error's text."""
    c = st.imap()
    try:
        return c.login(user, pw)[0]
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        try:
            c.logout()
        except imaplib.IMAP4.error:
            pass


def test_sighup_moves_the_directory(st):
    """ldap.uris, ldap.tls_ca_file (and the rest of the directory's address
    and credentials) apply at a reload: the frontend's LDAP connections
    are made again with them, on every event loop, and logins go on; a
    URI that does not parse refuses the reload as a whole, a CA file that
    does not load leaves the connections as they were;
    ldap.privileged_attribute and ldap.base_dn apply to the next login; a directory that is not there gives
    logins a temporary failure, and the old address back makes them work
    again."""
    def login(prefix):
        return login_result(st, *st.new_user(prefix))

    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        edit.append("[ldap]\nuris = ftp://127.0.0.1/\n")
        new = reload(st, "s1f1")
        assert "reload: configuration kept" in new, new
        assert "error=\"ldap.uris: invalid LDAP URI 'ftp://127.0.0.1/'" \
            in new, new
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nwrite_uris = http://127.0.0.1/\n")
        new = reload(st, "s1f1")
        assert "reload: configuration kept" in new, new
        assert "error=\"ldap.write_uris: invalid LDAP URI " \
            "'http://127.0.0.1/'" in new, new
        # a CA file that does not load: said, and the connections stay,
        # with the settings they were made with (ldap.starttls too)
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nuris = %s\ntls_ca_file = %s\nstarttls = true\n"
                    % (st.LDAPS_URI, st.dir / "no-such-ca.pem"))
        for attempt in range(2):
            new = reload(st, "s1f1")
            # (the second time too: the settings were kept as they were)
            for name in ("ldap.uris", "ldap.tls_ca_file", "ldap.starttls"):
                assert "setting=%s changed" % name in new, (attempt, new)
                assert "%s changed but takes effect only at start" \
                    % name not in new, new
            assert "ldap reload: ldap.tls_ca_file \"%s\"" \
                % (st.dir / "no-such-ca.pem") in new, new
            # the names are resolved and the file read once for every loop
            assert new.count("ldap.uris, ldap.write_uris, "
                             "ldap.tls_ca_file and ldap.starttls kept, and "
                             "the directory connections stay as they "
                             "were") == 1, new
        assert login("hupstay") == "OK"
        # connections made again (the directory restarted) are made as
        # before: in clear, not with a StartTLS that has no TLS context
        st.stop("ldap")
        st.start("ldap")
        wait_for(lambda: login("hupagain") == "OK", timeout=30,
                 what="a login once the directory is back")
        assert "TLS setup failed" not in st.log("s1f1")
        # the same directory over ldaps://, verified with the stack's CA,
        # while clients keep logging in: none fails for the change, and
        # every connection is made again, a busy one once it is idle
        stop = threading.Event()
        results = []

        def keep_logging_in(user, pw):
            while not stop.is_set():
                results.append(login_result(st, user, pw))

        threads = [threading.Thread(target=keep_logging_in,
                                    args=st.new_user("hupload%d" % i))
                   for i in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(results) >= 8, what="logins")
            edit.path.write_text(edit.original)
            edit.append("[ldap]\nuris = %s\ntls_ca_file = %s\n"
                        % (st.LDAPS_URI, st.CA_FILE))
            before = st.log("s1f1").count("ldap reload: uris=")
            new = reload(st, "s1f1")
            for name in ("ldap.uris", "ldap.tls_ca_file"):
                assert "setting=%s changed" % name in new, new
            assert "takes effect only at start" not in new, new
            # every event loop made its connections again
            workers = int(re.search(r"applied by (\d+) workers",
                                    new).group(1))
            assert st.log("s1f1").count("ldap reload: uris=") - before \
                == workers, new
            pattern = re.compile(r"ldap uri=%s conn=(\S+) connected "
                                 r"tls=TLSv1\.[23]"
                                 % re.escape(st.LDAPS_URI))
            wait_for(lambda: {"search0", "auth0", "auth1", "auth2",
                              "auth3"} <= set(pattern.findall(
                                  st.log("s1f1"))),
                     what="every connection made again over ldaps://")
            done = len(results)
            wait_for(lambda: len(results) >= done + 8, what="logins")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert set(results) == {"OK"}, [r for r in results if r != "OK"]
        # an attribute that marks privileged accounts, from the next login
        boss, boss_pw = st.new_user("hupboss")
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nprivileged_attribute = uid=%s\n" % boss)
        new = reload(st, "s1f1")
        assert "setting=ldap.privileged_attribute changed" in new, new
        assert "takes effect only at start" not in new, new
        c = st.imap()
        with pytest.raises(imaplib.IMAP4.error,
                           match=r"\[AUTHORIZATIONFAILED\]"):
            c.login(boss, boss_pw)
        c.logout()
        assert login("hupnotboss") == "OK"
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nprivileged_attribute = uid\n")
        new = reload(st, "s1f1")
        assert "error=\"ldap.privileged_attribute: expected " \
            "attribute=value" in new, new
        # the users' tree moves: a login is looked up in the new one
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nbase_dn = ou=nowhere,dc=example,dc=test\n")
        new = reload(st, "s1f1")
        assert "setting=ldap.base_dn changed" in new, new
        assert "takes effect only at start" not in new, new
        assert login("hupbase") != "OK"
        # a directory that is not there: a temporary failure
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nuris = ldap://127.0.0.1:1/\n")
        reload(st, "s1f1")
        assert "[UNAVAILABLE]" in login("hupnoldap")
    finally:
        edit.restore()
    assert login("hupback") == "OK"


def ldap_connections(st, service):
    """The established TCP connections of SERVICE to the stack's slapd."""
    inodes = set()
    fds = Path("/proc/%d/fd" % pid(st, service))
    for fd in fds.iterdir():
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
        if m:
            inodes.add(m.group(1))
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] == "01" and int(f[2].split(":")[1], 16) == \
                int(st.LDAP_PORT) and f[9] in inodes:
            n += 1
    return n


def test_sighup_resizes_the_directory_and_the_caches(st):
    """ldap.auth_connections, ldap.cache_size and
    limits.auth_penalty_entries apply at a reload: binds spread over more
    connections at once, fewer close as soon as they are idle, and the
    authentication cache starts, shrinks (the least recent logins go
    first) and stops, with no restart and no login failing."""
    def login(user, pw):
        return login_result(st, user, pw)

    def hits(user, what):
        return [l for l in st.log("s1f1").splitlines()
                if "user=%s " % user in l and what in l]

    users = [st.new_user("hupconns%d" % i) for i in range(16)]
    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        edit.append("[ldap]\nauth_connections = 8\n"
                    "[limits]\nconnection_rate_per_address = 0\n"
                    "auth_penalty_entries = 50\n")
        new = reload(st, "s1f1")
        for name in ("ldap.auth_connections", "limits.auth_penalty_entries"):
            assert "setting=%s changed" % name in new, new
        assert "takes effect only at start" not in new, new
        workers = int(re.search(r"applied by (\d+) workers",
                                new).group(1))
        assert new.count("ldap reload: auth_connections=8 (were 4)") \
            == workers, new
        # sixteen clients logging in at once: a loop's binds in flight
        # together take more than the four connections of before (each
        # loop has one search connection besides)
        stop = threading.Event()
        results = []

        def keep_logging_in(user, pw):
            while not stop.is_set():
                results.append(login(user, pw))

        threads = [threading.Thread(target=keep_logging_in, args=u)
                   for u in users]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: ldap_connections(st, "s1f1") > workers * 5,
                     timeout=60, interval=0.2,
                     what="more than 4 bind connections in a loop")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert results and set(results) == {"OK"}, \
            [r for r in results if r != "OK"]
        # down to one: the others close once idle, logins go on
        edit.path.write_text(edit.original)
        edit.append("[ldap]\nauth_connections = 1\n")
        new = reload(st, "s1f1")
        assert new.count("ldap reload: auth_connections=1 (were 8)") \
            == workers, new
        wait_for(lambda: ldap_connections(st, "s1f1") <= workers * 2,
                 what="the bind connections beyond the first to close")
        assert login(*users[0]) == "OK"
        assert ldap_connections(st, "s1f1") <= workers * 2
        # the cache starts: a second login of the same password is
        # answered without the directory
        (ann, ann_pw), (bob, bob_pw) = (st.new_user("hupcachea"),
                                        st.new_user("hupcacheb"))
        edit.path.write_text(edit.original)
        edit.append("[ldap]\ncache_size = 1000\n")
        new = reload(st, "s1f1")
        assert "setting=ldap.cache_size changed" in new, new
        assert "takes effect only at start" not in new, new
        for user, pw in ((ann, ann_pw), (bob, bob_pw), (ann, ann_pw),
                         (bob, bob_pw)):
            assert login(user, pw) == "OK"
        assert len(hits(ann, "authenticated cache=hit")) == 1
        assert len(hits(bob, "authenticated cache=hit")) == 1
        # down to one entry: bob's, the more recent, stays
        edit.path.write_text(edit.original)
        edit.append("[ldap]\ncache_size = 1\n")
        reload(st, "s1f1")
        assert login(bob, bob_pw) == "OK"
        assert login(ann, ann_pw) == "OK"
        assert len(hits(bob, "authenticated cache=hit")) == 2
        assert len(hits(ann, "authenticated cache=hit")) == 1
        # (now ann's is the one entry)
        assert login(ann, ann_pw) == "OK"
        assert len(hits(ann, "authenticated cache=hit")) == 2
        # off: every login asks the directory again
        edit.path.write_text(edit.original)
        edit.append("[ldap]\ncache_size = 0\n")
        reload(st, "s1f1")
        assert login(ann, ann_pw) == "OK"
        assert len(hits(ann, "authenticated cache=hit")) == 2
        assert len(hits(ann, "authenticated cache=miss")) == 3
    finally:
        edit.restore()
    assert login(*users[3]) == "OK"


def test_sighup_with_a_broken_file_keeps_the_old_config(st):
    src = "127.0.0.79"
    edit = ConfigEdit(st, "s1f1", "frontend")
    try:
        # parses, but a live change next to a value out of range
        edit.append("[limits]\nmax_connections_per_address = 1\n"
                    "max_bad_commands = 0\n")
        new = reload(st, "s1f1")
        assert ('reload: configuration kept, error="%s:' % edit.path) in new
        assert "limits.max_bad_commands: '0' is outside 1..1000" in new
        # a value only the daemon's own checks refuse
        edit.path.write_text(edit.original)
        edit.append("[frontend]\nimap_login_type = sometimes\n")
        new = reload(st, "s1f1")
        assert ("reload: configuration kept, error=\"frontend."
                "imap_login_type: invalid value 'sometimes'") in new, new
        # not INI at all
        edit.path.write_text(edit.original + "\n[limits\nno equals sign\n")
        new = reload(st, "s1f1")
        assert "syntax error" in new, new
        # the old limit (500 per address) still holds
        conns = [greeting(st, st.IMAPS_PORT, src) for _ in range(3)]
        assert all(g.startswith(b"* OK") for _, _, g in conns)
        for s, _, _ in conns:
            s.close()
    finally:
        edit.restore()


def test_sighup_backend(st):
    user, pw = st.new_user("behup")
    c = st.imap(user, pw)
    typ, data = c.getquotaroot("INBOX")
    assert b"MESSAGE" not in b" ".join(
        x for x in data[1] if isinstance(x, bytes)), data
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[backend]\nquota_messages = 7\nstore_dir = /nowhere\n")
        new = reload(st, "s1b1")
        assert "setting=backend.quota_messages changed" in new
        assert ("setting=backend.store_dir changed but takes effect only "
                "at start; old value kept") in new
        # the session that was open sees the new quota
        typ, data = c.getquotaroot("INBOX")
        assert typ == "OK"
        assert b'(MESSAGE 0 7)' in b" ".join(
            x for x in data[1] if isinstance(x, bytes)), data
        # a broken file: refused, the quota stays
        edit.append("[limits]\nmax_line = lots\n")
        new = reload(st, "s1b1")
        assert "limits.max_line: invalid value 'lots'" in new, new
        typ, data = c.getquotaroot("INBOX")
        assert b'(MESSAGE 0 7)' in b" ".join(
            x for x in data[1] if isinstance(x, bytes)), data
    finally:
        edit.restore()
    c.logout()


def test_sighup_moves_the_backends_listeners(st):
    """backend.link_listen and backend.http_listen move at a reload, and
    the http.* limits apply to the backend's HTTP too: the links up and
    the sessions on them go on, a frontend links at the new address, the
    old ones refuse; an address another process holds keeps the old
    listener."""
    from test_link_peer import Peer
    user, pw = st.new_user("bemove")
    c = st.imap(user, pw)
    link_port = int(st.SITE1_BE1_LINK_PORT)
    http_port = int(st.SITE1_BE1_HTTP_PORT)

    new_link, new_http = free_port(), free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[backend]\nlink_listen = 127.0.0.1:%d\n"
                    "http_listen = 127.0.0.1:%d\n"
                    "[http]\nrequest_timeout = 1s\n" % (new_link, new_http))
        new = reload(st, "s1b1")
        assert "takes effect only at start" not in new, new
        for name in ("backend.link_listen", "backend.http_listen",
                     "http.request_timeout"):
            assert "setting=%s changed" % name in new, new
        assert "reload: backend.link_listen: no longer listening on " \
            "127.0.0.1:%d" % link_port in new, new
        assert "listening protocol=link address=127.0.0.1:%d" % new_link \
            in new, new
        assert "listening protocol=http address=127.0.0.1:%d" % new_http \
            in new, new
        assert not port_open(link_port) and not port_open(http_port)
        # a frontend links at the new address; the links up go on
        Peer(st, port=new_link).close()
        assert c.noop()[0] == "OK"
        h = http.client.HTTPConnection("127.0.0.1", new_http, timeout=10)
        h.request("GET", "/health")
        r = h.getresponse()
        assert r.status == 200 and b"link ok" in r.read()
        h.close()
        # the backend's HTTP takes http.request_timeout from the reload
        s = socket.create_connection(("127.0.0.1", new_http), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert s.makefile("rb").readline().startswith(b"HTTP/1.1 408 ")
        s.close()
        # an address held elsewhere: the listener stays where it was
        edit.append("[backend]\nhttp_listen = 127.0.0.1:%d\n" % taken)
        new = reload(st, "s1b1")
        assert "reload: backend.http_listen kept at 127.0.0.1:%d: " \
            "127.0.0.1:%d: Address already in use" % (new_http, taken) \
            in new, new
        assert port_open(new_http)
    finally:
        holder.close()
        edit.restore()
    assert port_open(link_port) and port_open(http_port)
    assert not port_open(new_link) and not port_open(new_http)
    assert c.noop()[0] == "OK"
    c.logout()

def test_second_backend_on_the_same_link_port_fails(st, tmp_path):
    """The link port is one backend's alone (unlike a frontend's ports,
    which its event loops share): a second backend started with the same
    backend.link_listen, by mistake, fails at once and says why."""
    ini = tmp_path / "backend.ini"
    ini.write_text((st.dir / "s1b1" / "backend.ini").read_text() +
                   "\n[backend]\nstore_dir = %s\nhttp_listen =\n"
                   "direct_imap_listen =\n" % (tmp_path / "store"))
    p = subprocess.run([str(BUILD / "portico-backend"), "-c", str(ini)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p.stderr[-2000:]
    assert "link listen=127.0.0.1:%s error=\"Address already in use\"" \
        % st.SITE1_BE1_LINK_PORT in p.stderr, p.stderr[-2000:]

def test_second_backend_on_the_same_store_fails(st):
    """A store has one backend: a second one started on the same
    backend.store_dir (a copied configuration, its ports changed) fails
    before it opens the store, naming the backend that has it; the first
    goes on serving, its mail intact."""
    user, pw = st.new_user("onestore")
    c = st.imap(user, pw)
    assert c.append("INBOX", None, None, b"Subject: kept\r\n\r\nx\r\n")[0] \
        == "OK"
    ini = st.dir / "s1b1" / "backend.ini"
    copy = ini.parent.parent / "second-backend.ini"
    copy.write_text(ini.read_text() +
                    "\n[backend]\nlink_listen = 127.0.0.1:%d\n"
                    "http_listen =\ndirect_imap_listen =\n" % free_port())
    try:
        p = subprocess.run([str(BUILD / "portico-backend"), "-c", str(copy)],
                           capture_output=True, text=True, timeout=60)
    finally:
        copy.unlink()
    pid = int((st.dir / "s1b1" / "pid").read_text())
    assert p.returncode != 0, p.stderr[-2000:]
    assert "store error=\"%s is in use by another backend (pid %d): a " \
        "store has one backend\"" % (st.dir / "s1b1" / "store", pid) \
        in p.stderr, p.stderr[-2000:]
    assert (st.dir / "s1b1" / "store" / "backend.lock").read_text() == \
        "%d\n" % pid
    assert c.noop()[0] == "OK"
    assert c.select("INBOX", readonly=True) == ("OK", [b"1"])
    c.logout()
    st.imap(user, pw).logout()


# ---- autoexpunge of \Trash and \Junk -------------------------------------

def test_autoexpunge_trash_and_junk(st):
    """backend.trash_lifetime and backend.junk_lifetime, set by a reload
    with a shorter backend.autoexpunge_interval (which brings the next
    look forward): what has lain in \\Trash longer than the lifetime
    goes, and a session in IDLE on Trash sees it go; a message put there
    later stays; INBOX, and Junk while its lifetime is 0, keep theirs; the
    quota is freed; the log and the metric count them.  Then Junk's
    lifetime empties Junk."""
    user, pw = st.new_user("autoexp")
    c = st.imap(user, pw)

    def put(folder, n, size=1000):
        typ, data = c.append(folder, None, None,
                             b"Subject: %s %d\r\n\r\n%s\r\n" % (
                                 folder.encode(), n, b"x" * size))
        assert typ == "OK", data

    def subjects(folder):
        typ, data = c.select(folder, readonly=True)
        assert typ == "OK"
        if data == [b"0"]:
            c.close()
            return []
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        c.close()
        return [d[1].strip() for d in data if isinstance(d, tuple)]

    def used():
        typ, data = c.getquotaroot("INBOX")
        assert typ == "OK", data
        m = re.search(rb"STORAGE (\d+) ", b" ".join(
            x for x in data[1] if isinstance(x, bytes)))
        return int(m.group(1)) if m else None

    for n in range(3):
        put("Trash", n)
    put("Junk", 0)
    put("INBOX", 0)
    before = used()
    watcher = st.imap(user, pw)
    watcher.select("Trash")
    tag = watcher._new_tag()
    watcher.send(tag + b" IDLE\r\n")
    assert watcher.readline().startswith(b"+ ")
    counted = backend_metric(st, "portico_backend_autoexpunged_messages_total")
    time.sleep(5.5)  # the three have lain in Trash for more than 5 s
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[backend]\ntrash_lifetime = 5s\n"
                    "autoexpunge_interval = 1s\n")
        new = reload(st, "s1b1")
        assert "setting=backend.trash_lifetime changed" in new, new
        put("Trash", 3)  # just come: stays
        watcher.sock.settimeout(10)
        seen = []
        while seen.count(b"* 1 EXPUNGE\r\n") < 3:
            assert len(seen) < 8, seen
            seen.append(watcher.readline())
        # the new message's EXISTS, then the three old ones going
        assert sorted(set(seen)) == [b"* 1 EXPUNGE\r\n",
                                     b"* 4 EXISTS\r\n"], seen
        watcher.send(b"DONE\r\n")
        line = watcher.readline()
        while not line.startswith(tag):
            line = watcher.readline()
        assert line.startswith(tag + b" OK"), line
        wait_for(lambda: "autoexpunge folders=1 messages=3" in
                 st.log("s1b1"), what="the autoexpunge log line")
        assert subjects("Trash") == [b"Subject: Trash 3"]
        assert subjects("Junk") == [b"Subject: Junk 0"]
        assert subjects("INBOX") == [b"Subject: INBOX 0"]
        if before is not None:
            assert used() < before
        assert backend_metric(
            st, "portico_backend_autoexpunged_messages_total") == counted + 3
        # Junk's turn
        edit.append("junk_lifetime = 1s\n")
        reload(st, "s1b1")
        wait_for(lambda: subjects("Junk") == [], what="Junk emptied")
        assert subjects("INBOX") == [b"Subject: INBOX 0"]
    finally:
        edit.restore()
    watcher.logout()
    c.logout()


# ---- capabilities switched off for a client --------------------------------

def test_client_capabilities_off(st):
    """imap.client_capabilities_off (set by a reload): a client whose ID
    names it, before login (through the frontend) or after, loses those
    capabilities and their commands from then on; another version, and a
    client without ID, keep everything; a rule without a pattern is
    refused by the reload."""
    user, pw = st.new_user("clientcaps")

    def caps(c):
        typ, data = c.capability()
        assert typ == "OK", data
        return set(data[0].decode().split())

    def idle_refused(c):
        tag = c._new_tag()
        c.send(tag + b" IDLE\r\n")
        line = c.readline()
        if line.startswith(b"+"):
            c.send(b"DONE\r\n")
            line = c.readline()
            assert line.startswith(tag + b" OK"), line
            return False
        assert line == tag + b" BAD Unknown command\r\n", line
        return True

    # imaplib does not know ID (RFC 2971)
    imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

    def ident(c, name, version):
        typ, data = c._simple_command(
            "ID", '("name" "%s" "version" "%s")' % (name, version))
        assert typ == "OK", data

    full = caps(st.imap(user, pw))
    assert {"IDLE", "COMPRESS=DEFLATE", "MOVE"} <= full
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[imap]\nclient_capabilities_off = "
                    "Broken Mail/1.*: IDLE COMPRESS ; other*: MOVE\n")
        new = reload(st, "s1b1")
        assert "setting=imap.client_capabilities_off changed" in new, new
        # ID before login: the LOGIN's OK already leaves them out
        c = st.imap()
        ident(c, "broken mail", "1.4.2")
        typ, data = c.login(user, pw)
        assert typ == "OK", data
        said = set(re.search(rb"\[CAPABILITY ([^\]]*)\]",
                             data[0]).group(1).decode().split())
        assert said == full - {"IDLE", "COMPRESS=DEFLATE"}, said
        assert caps(c) == said
        assert idle_refused(c)
        c.logout()
        # ID after login: from then on
        c = st.imap(user, pw)
        assert caps(c) == full
        ident(c, "Broken Mail", "1.9")
        assert caps(c) == full - {"IDLE", "COMPRESS=DEFLATE"}
        assert idle_refused(c)
        c.logout()
        # another version, and no ID at all: everything
        c = st.imap()
        ident(c, "Broken Mail", "2.0")
        c.login(user, pw)
        assert caps(c) == full
        assert not idle_refused(c)
        c.logout()
        c = st.imap(user, pw)
        assert not idle_refused(c)
        c.logout()
        assert re.search(r'client="broken mail/1\.4\.2" capabilities off: '
                         r"IDLE COMPRESS \(client\)", st.log("s1b1"))
        # a rule without its pattern: the reload is refused, the old
        # rules stay
        edit.append("[imap]\nclient_capabilities_off = : IDLE\n")
        new = reload(st, "s1b1")
        assert "configuration kept" in new, new
        assert "imap.client_capabilities_off: ': IDLE': a pattern and " \
            "capability names expected" in new, new
        c = st.imap()
        ident(c, "Broken Mail", "1.0")
        c.login(user, pw)
        assert "IDLE" not in caps(c)
        c.logout()
    finally:
        edit.restore()


# ---- --check, config/production, config/systemd ---------------------------

def check(daemon, path):
    return subprocess.run([str(BUILD / daemon), "--check", "-c", str(path)],
                          capture_output=True, text=True, timeout=30)


def test_check_mode_and_production_configs(tmp_path):
    for daemon, ini in (("portico-frontend", "frontend.ini"),
                        ("portico-backend", "backend.ini")):
        path = REPO / "config" / "production" / ini
        p = check(daemon, path)
        assert p.returncode == 0, p.stderr
        assert p.stdout == "%s: %s: configuration OK\n" % (daemon, path)
        # -t is the short form
        p = subprocess.run([str(BUILD / daemon), "-t", "-c", str(path)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
    fe = (REPO / "config/production/frontend.ini").read_text()
    # the standard ports, LMTP on an internal address, HTTPS on 443
    for listen in ("imap_listen = 0.0.0.0:143", "imaps_listen = 0.0.0.0:993",
                   "pop3_listen = 0.0.0.0:110", "pop3s_listen = 0.0.0.0:995",
                   "submission_listen = 0.0.0.0:587",
                   "submissions_listen = 0.0.0.0:465",
                   "lmtp_listen = 10.0.0.10:24",
                   "tls_listen = 0.0.0.0:443"):
        assert listen in fe
    bad = tmp_path / "bad.ini"
    bad.write_text(fe.replace("imap_login_type = secure",
                              "imap_login_type = maybe"))
    p = check("portico-frontend", bad)
    assert p.returncode == 1
    assert "frontend.imap_login_type: invalid value 'maybe'" in p.stderr
    bad.write_text(fe + "\n[limits]\nmax_connections = 0\n")
    p = check("portico-frontend", bad)
    assert p.returncode == 1
    assert "limits.max_connections: '0' is outside" in p.stderr
    be = (REPO / "config/production/backend.ini").read_text()
    bad.write_text(be.replace("id = be1", "id ="))
    p = check("portico-backend", bad)
    assert p.returncode == 1 and "backend.id: required" in p.stderr


def unit(name):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string((REPO / "config" / "systemd" / name).read_text())
    return cp


def test_systemd_units(tmp_path):
    for name, daemon, grace in (
            ("portico-frontend.service", "portico-frontend", "45s"),
            ("portico-backend.service", "portico-backend", "60s")):
        u = unit(name)
        svc = u["Service"]
        assert svc["Type"] == "simple"
        assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
        assert svc["ExecStart"] == ("/usr/local/bin/%s -c /etc/portico/%s"
                                    % (daemon, daemon.split("-")[1] +
                                       ".ini"))
        assert svc["TimeoutStopSec"] == grace
        assert svc["User"] == "portico"
        assert int(svc["LimitNOFILE"]) >= 65536
        assert svc["NoNewPrivileges"] == "yes"
        assert svc["ProtectSystem"] == "strict"
        assert u["Install"]["WantedBy"] == "multi-user.target"
    assert unit("portico-backend.service")["Service"]["ReadWritePaths"] == \
        "/var/lib/portico"
    # the stop timeouts exceed the graces of config/production
    for ini, unit_name in (("frontend.ini", "portico-frontend.service"),
                           ("backend.ini", "portico-backend.service")):
        text = (REPO / "config/production" / ini).read_text()
        grace = int(re.search(r"^shutdown_grace = (\d+)s", text,
                              re.M).group(1))
        stop = int(unit(unit_name)["Service"]["TimeoutStopSec"][:-1])
        assert stop > grace
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("systemd-analyze not installed: units checked as INI only")
        return
    # verify with the built binaries and the production configs in place
    for kind in ("frontend", "backend"):
        text = (REPO / ("config/systemd/portico-%s.service" % kind)).read_text()
        text = text.replace("/usr/local/bin/portico-%s" % kind,
                            str(BUILD / ("portico-" + kind)))
        text = text.replace("/etc/portico/%s.ini" % kind,
                            str(REPO / ("config/production/%s.ini" % kind)))
        (tmp_path / ("portico-%s.service" % kind)).write_text(text)
    p = subprocess.run([tool, "verify", "--man=no",
                        str(tmp_path / "portico-frontend.service"),
                        str(tmp_path / "portico-backend.service")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Unknown" not in p.stderr and "ignoring" not in p.stderr, \
        p.stderr


# ---- SIGTERM (last: they stop and start the daemons) -----------------------

def exited(p):
    try:
        os.kill(p, 0)
    except ProcessLookupError:
        return True
    # a zombie until scripts/stack's parent is gone: look at its state
    try:
        return Path("/proc/%d/stat" % p).read_text().split()[2] == "Z"
    except OSError:
        return True


def imap_session(st, user, pw):
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    assert read_until_tagged(f, b"l")[-1].startswith(b"l OK")
    return s, f


def test_sigterm_backend_drains(st):
    user, pw = st.new_user("drainbe")
    idle, fi = imap_session(st, user, pw)
    idle.sendall(b"i1 SELECT INBOX\r\n")
    read_until_tagged(fi, b"i1")
    idle.sendall(b"i2 IDLE\r\n")
    assert fi.readline() == b"+ idling\r\n"
    busy, fb = imap_session(st, user, pw)
    acked = b"Subject: acked\r\n\r\nappended before SIGTERM\r\n"
    busy.sendall(b"b1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(acked), acked))
    assert read_until_tagged(fb, b"b1")[-1].startswith(b"b1 OK")
    late = b"Subject: late\r\n\r\nliteral finished after SIGTERM\r\n"
    busy.sendall(b"b2 APPEND INBOX {%d}\r\n" % len(late))
    assert fb.readline() == b"+ OK\r\n"
    busy.sendall(late[:10])
    be = pid(st, "s1b1")
    t0 = time.monotonic()
    os.kill(be, signal.SIGTERM)
    try:
        # no new links while the APPEND is still running
        wait_for(lambda: not port_open(st.SITE1_BE1_LINK_PORT),
                 what="the link listener to close")
        assert not exited(be)
        # a login meanwhile is refused for now, with POP3's code for it
        # (RFC 3206), not IMAP's
        p3 = st.pop3()
        p3.user(user)
        with pytest.raises(poplib.error_proto,
                           match=r"^b?'?-ERR \[SYS/TEMP\] Server shutting "
                                 r"down"):
            p3.pass_(pw)
        p3.quit()
        # the command in progress completes; the session, between
        # commands then, is parked at the frontend like the one in IDLE
        busy.sendall(late[10:] + b"\r\n")
        line = fb.readline()
        assert line.startswith(b"b2 OK [APPENDUID "), line
        # nothing left: it exits long before backend.shutdown_grace
        wait_for(lambda: exited(be), timeout=10, what="the backend to exit")
        assert time.monotonic() - t0 < BACKEND_GRACE / 2
    finally:
        st.start("s1b1")
    st.wait_for_login(user, pw, timeout=30)
    # its next command takes it up on the backend that is back
    busy.settimeout(30)
    busy.sendall(b"b3 SELECT INBOX\r\n")
    lines = read_until_tagged(fb, b"b3")
    assert lines[-1].startswith(b"b3 OK"), lines
    assert b"* 2 EXISTS\r\n" in lines, lines
    busy.sendall(b"b4 LOGOUT\r\n")
    assert read_until_tagged(fb, b"b4")[-1].startswith(b"b4 OK")
    busy.close()
    # IDLE: parked at the frontend rather than told goodbye (test_park.py);
    # once the backend is back it shows what came meanwhile, and goes on
    idle.settimeout(30)
    seen = []
    while b"* 2 EXISTS\r\n" not in seen:
        seen.append(fi.readline())
        assert seen[-1] and b"BYE" not in seen[-1], seen
    idle.sendall(b"DONE\r\n")
    assert fi.readline() == b"i2 OK IDLE terminated\r\n"
    idle.close()
    c = st.imap(user, pw)
    c.select("INBOX")
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(x[1].strip() for x in data if isinstance(x, tuple))
    assert subjects == [b"Subject: acked", b"Subject: late"], subjects
    c.logout()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def start_append(st, user, pw, tag=b"p"):
    """A session in the middle of an APPEND: its literal half sent."""
    s, f = imap_session(st, user, pw)
    msg = b"Subject: half\r\n\r\nnever completed\r\n"
    s.sendall(b"%s APPEND INBOX {%d}\r\n" % (tag, len(msg)))
    assert f.readline() == b"+ OK\r\n"
    s.sendall(msg[:10])
    return s, f


FE_BYE = b"* BYE [UNAVAILABLE] Server shutting down.\r\n"
BE_BYE = b"* BYE [UNAVAILABLE] Server shutting down\r\n"


def test_sigterm_frontend_drains(st):
    user, pw = st.new_user("drainfe")
    relay, fr = imap_session(st, user, pw)
    relay.sendall(b"r1 SELECT INBOX\r\n")
    read_until_tagged(fr, b"r1")
    relay.sendall(b"r2 IDLE\r\n")
    assert fr.readline() == b"+ idling\r\n"
    busy, fb = start_append(st, user, pw)
    pop, fp = raw_client(st, st.POP3S_PORT, tls=True, timeout=30)
    assert fp.readline().startswith(b"+OK")
    assert tls_line(pop, fp, "USER %s\r\n" % user).startswith(b"+OK")
    assert tls_line(pop, fp, "PASS %s\r\n" % pw).startswith(b"+OK")
    waiting, fw = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
    assert fw.readline().startswith(b"* OK")
    smtp = RawSMTP(st.host, st.SUBMISSION_PORT, timeout=30)
    assert smtp.reply()[0] == 220
    # a login in progress: its literal half sent
    midcmd, fm = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
    assert fm.readline().startswith(b"* OK")
    midcmd.sendall(b"m1 LOGIN %s {%d}\r\n" % (user.encode(), len(pw)))
    assert fm.readline().startswith(b"+")
    fe = pid(st, "s1f1")
    t0 = time.monotonic()
    os.kill(fe, signal.SIGTERM)
    try:
        # between commands before login: told at once by the frontend
        assert fw.readline() == FE_BYE
        assert fw.readline() == b""
        assert smtp.reply() == (421, ["4.3.2 s1f1 Server shutting down."])
        # in IDLE after login: told at once by the backend (Drain frame)
        assert fr.readline() == BE_BYE
        assert fr.readline() == b""
        assert fp.readline() == b"-ERR [SYS/TEMP] Server shutting down.\r\n"
        assert fp.readline() == b""
        # no new connections
        wait_for(lambda: not port_open(st.IMAPS_PORT),
                 what="the listener to close")
        # the login in progress completes; the new session is between
        # commands, so the backend says goodbye at once
        midcmd.sendall(pw.encode() + b"\r\n")
        assert read_until_tagged(fm, b"m1")[-1].startswith(b"m1 OK")
        assert fm.readline() == BE_BYE
        # the APPEND that never completes: frontend.shutdown_grace, then
        # the frontend's goodbye
        assert fb.readline() == FE_BYE
        elapsed = time.monotonic() - t0
        assert FRONTEND_GRACE - 0.5 <= elapsed < FRONTEND_GRACE + 10
        for f in (fb, fm, fr, fw, fp):
            f.close()
        wait_for(lambda: exited(fe), timeout=10, what="the frontend to exit")
    finally:
        for s in (relay, busy, pop, waiting, midcmd, smtp.sock):
            s.close()
        st.start("s1f1")
    st.wait_for_login(user, pw)
    c = st.imap(user, pw)
    c.select("INBOX", readonly=True)
    assert c.search(None, "ALL")[1] == [b""]  # the half APPEND is not there
    c.logout()


def test_second_sigterm_stops_at_once(st):
    user, pw = st.new_user("twice")
    s, f = start_append(st, user, pw)
    fe = pid(st, "s1f1")
    before = len(st.log("s1f1"))
    os.kill(fe, signal.SIGTERM)
    wait_for(lambda: "signal=15 draining" in st.log("s1f1")[before:],
             what="the frontend to drain")
    t0 = time.monotonic()
    os.kill(fe, signal.SIGTERM)
    try:
        assert f.readline() == FE_BYE
        # (a client closes after BYE; the frontend waits up to 3s for
        # that, common/conn.c's lingering close)
        f.close()
        s.close()
        wait_for(lambda: exited(fe), timeout=10, what="the frontend to exit")
        assert time.monotonic() - t0 < FRONTEND_GRACE
    finally:
        s.close()
        st.start("s1f1")
    st.wait_for_login(user, pw)
