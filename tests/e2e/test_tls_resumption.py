"""TLS session resumption for mail clients: frontends that share a
session-ticket key file (tls.ticket_key_file) resume each other's
sessions, so that a client a load balancer sends to another frontend
skips the full handshake; keys rotate with a reload; without a file a
frontend's tickets are its own, and survive its reloads;
tls.session_lifetime = 0 turns resumption off.

Clients are Python's ssl (OpenSSL) with the session of an earlier
connection; `session_reused` says whether the server took it.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))


@pytest.fixture(scope="module")
def st(stack_factory):
    st = stack_factory(name="tickets", frontends_per_site=2)
    st.add_user("tia", "tia-secret-1")
    return st


@pytest.fixture(scope="module")
def alone(stack_factory):
    """Two frontends without a key file."""
    st = stack_factory(name="notickets", frontends_per_site=2,
                       settings=["tls.ticket_key_file="])
    st.add_user("ned", "ned-secret-1")
    return st


CONTEXTS = {}


def context(st):
    """One client context per stack: Python offers a session only on the
    context that made it, as a mail client keeps its own cache."""
    if st.dir not in CONTEXTS:
        CONTEXTS[st.dir] = st.ssl_context()
    return CONTEXTS[st.dir]


def session(st, user, frontend=1, proto="imaps", resume=None):
    """Log USER in and out on frontend s1f<FRONTEND> over PROTO (imaps,
    pop3s, or imap with STARTTLS), offering the TLS session RESUME.
    Returns (resumed, the session to offer next time)."""
    password = st.users[user]
    port = int(st.port(proto, frontend=frontend))
    raw = socket.create_connection((st.host, port), timeout=10)
    if proto == "imap":
        f = raw.makefile("rb")
        assert f.readline().startswith(b"* OK")
        raw.sendall(b"s STARTTLS\r\n")
        assert f.readline().startswith(b"s OK")
    t = context(st).wrap_socket(raw, server_hostname="localhost",
                                session=resume)
    f = t.makefile("rb")
    if proto == "pop3s":
        assert f.readline().startswith(b"+OK")
        t.sendall(b"USER %s\r\n" % user.encode())
        assert f.readline().startswith(b"+OK")
        t.sendall(b"PASS %s\r\n" % password.encode())
        answer = f.readline()
        assert answer.startswith(b"+OK"), answer
        t.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    else:
        if proto == "imaps":
            assert f.readline().startswith(b"* OK")
        t.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), password.encode()))
        line = f.readline()
        while line.startswith(b"* "):
            line = f.readline()
        assert line.startswith(b"a OK"), line
        t.sendall(b"b LOGOUT\r\n")
        line = f.readline()
        while line.startswith(b"* "):
            line = f.readline()
        assert line.startswith(b"b OK"), line
    resumed, sess = t.session_reused, t.session
    f.close()
    t.close()
    return resumed, sess


def key_file(st):
    return st.dir / "certs" / "tickets.key"


def write_keys(st, *keys):
    path = key_file(st)
    tmp = path.with_suffix(".new")
    tmp.write_text("".join(k + "\n" for k in keys))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def reload(st, name, expect="reload: certificates loaded"):
    """SIGHUP to frontend NAME; waits for the log line EXPECT."""
    before = st.log(name).count(expect)
    pid = int((st.dir / name / "pid").read_text())
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: st.log(name).count(expect) > before,
             what="%s to log %r" % (name, expect))


def handshakes(st, frontend, resumed, proto="imap"):
    port = st["SITE1_FE%d_HTTP_PORT" % frontend]
    text = urllib.request.urlopen("http://%s:%s/metrics" % (st.host, port),
                                  timeout=10).read().decode()
    m = re.search(r'^portico_frontend_tls_handshakes_total\{protocol="%s",'
                  r'resumed="%s"\} (\d+)$' % (proto, resumed), text, re.M)
    assert m, text
    return int(m.group(1))


def test_a_session_resumes_on_the_other_frontend(st):
    full = handshakes(st, 2, "no")
    reused = handshakes(st, 2, "yes")
    first, s1 = session(st, "tia", frontend=1)
    assert not first
    assert s1.has_ticket
    # the other frontend takes the first one's ticket, and logs in
    resumed, s2 = session(st, "tia", frontend=2, resume=s1)
    assert resumed
    assert handshakes(st, 2, "yes") == reused + 1
    assert handshakes(st, 2, "no") == full
    # ... and its own ticket works back on the first
    assert session(st, "tia", frontend=1, resume=s2)[0]
    # every listener seals with the same keys: POP3S and STARTTLS too
    resumed, s3 = session(st, "tia", frontend=2, proto="pop3s", resume=s2)
    assert resumed
    assert handshakes(st, 2, "yes", proto="pop3") >= 1
    assert session(st, "tia", frontend=1, proto="imap", resume=s3)[0]


def test_keys_rotate_with_a_reload(st):
    old_key = key_file(st).read_text().split("\n")[1]
    assert len(old_key) == 160
    _, old = session(st, "tia", frontend=1)
    new_key = secrets.token_hex(80)
    write_keys(st, "# rotated", new_key, old_key)
    for name in ("s1f1", "s1f2"):
        reload(st, name, "ticket_keys=2")
    # the old key still opens tickets (a client resumes with it once)...
    assert session(st, "tia", frontend=2, resume=old)[0]
    # ... while new tickets are sealed with the new key
    _, new = session(st, "tia", frontend=1)
    write_keys(st, new_key)
    for name in ("s1f1", "s1f2"):
        reload(st, name, "ticket_keys=1")
    resumed, _ = session(st, "tia", frontend=2, resume=old)
    assert not resumed  # a full handshake, and the login still works
    assert session(st, "tia", frontend=2, resume=new)[0]


def test_a_bad_key_file_is_refused_and_the_keys_kept(st):
    _, s = session(st, "tia", frontend=1)
    good = key_file(st).read_text()
    try:
        write_keys(st, "0123456789abcdef")  # 8 bytes, not 80
        error = "tickets.key: line 1: a key is 160 hexadecimal digits"
        # a reload keeps the certificates and keys it had ...
        reload(st, "s1f1", "reload: certificates kept")
        assert error in st.log("s1f1")
        assert session(st, "tia", frontend=1, resume=s)[0]
        # ... a start refuses to begin (before it binds a port)
        start = subprocess.run(
            [str(BUILD / "portico-frontend"), "-c",
             str(st.dir / "s1f1" / "frontend.ini")],
            capture_output=True, text=True, timeout=60)
        assert start.returncode == 1
        assert error in start.stderr, start.stderr
    finally:
        key_file(st).write_text(good)
    reload(st, "s1f1")
    assert session(st, "tia", frontend=1, resume=s)[0]


def test_without_a_key_file_tickets_are_the_frontends_own(alone):
    _, s = session(alone, "ned", frontend=1)
    assert s.has_ticket
    assert not session(alone, "ned", frontend=2, resume=s)[0]
    resumed, s = session(alone, "ned", frontend=1, resume=s)
    assert resumed
    # a reload (certificates read again) keeps the frontend's own key
    reload(alone, "s1f1")
    assert session(alone, "ned", frontend=1, resume=s)[0]


def test_session_lifetime_bounds_resumption(alone):
    ini = alone.dir / "s1f2" / "frontend.ini"
    text = ini.read_text()
    try:
        # tickets good for 2 s: one resumes at once, not after 3 s
        ini.write_text(text + "\n[tls]\nsession_lifetime = 2s\n")
        reload(alone, "s1f2")
        _, s = session(alone, "ned", frontend=2)
        assert s.ticket_lifetime_hint == 2
        assert session(alone, "ned", frontend=2, resume=s)[0]
        time.sleep(3)
        assert not session(alone, "ned", frontend=2, resume=s)[0]
        # 0: no tickets at all, and no resumption
        _, s = session(alone, "ned", frontend=2)
        ini.write_text(text + "\n[tls]\nsession_lifetime = 0\n")
        reload(alone, "s1f2", "ticket_keys=0")
        resumed, s0 = session(alone, "ned", frontend=2, resume=s)
        assert not resumed
        assert not s0.has_ticket
    finally:
        ini.write_text(text)
        reload(alone, "s1f2")
    assert session(alone, "ned", frontend=2)[1].has_ticket


def test_a_key_file_open_to_others_is_warned_about(st):
    path = key_file(st)
    warning = "is open to group or others (mode 644)"
    try:
        os.chmod(path, 0o644)
        reload(st, "s1f2")
        assert warning in st.log("s1f2")
    finally:
        os.chmod(path, 0o600)
    before = st.log("s1f2").count(warning)
    reload(st, "s1f2")
    assert st.log("s1f2").count(warning) == before
