"""portico-admin against a running two-site stack: settings show/set,
backends with their health, a frontend's live sessions (GET /sessions),
disable/enable in LDAP, kick, export/import round trips (mboxrd,
Maildir), show, and remove.

One stack for the module: two sites with a backend each, the frontends
with two event loops (sessions are listed from both), /metrics and
/sessions open to 127.0.0.1 only, a message quota for `show`.
"""

import contextlib
import difflib
import http.client
import imaplib
import os
import re
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (CMD_TIMEOUT, backend_metric, metric, run_stack,
                      sigstop, wait_for)
from smtp_client import RawSMTP

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))
QUOTA_MESSAGES = 1000


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="admin", sites=2, settings=[
        "frontend.workers=2",
        "http.metrics_networks=127.0.0.1/32",
        "backend.quota_messages=%d" % QUOTA_MESSAGES,
    ])


def admin(st, ini, *args, stdin=None, text=True):
    """portico-admin -c DIR/INI ARGS (INI: "s1f1/frontend.ini", ...)."""
    argv = [str(BUILD / "portico-admin"), "-c", str(st.dir / ini)]
    return subprocess.run(argv + [str(a) for a in args], input=stdin,
                          capture_output=True, text=text,
                          timeout=CMD_TIMEOUT)


FE = "s1f1/frontend.ini"
BE = "s1b1/backend.ini"


def set_account_state(st, verb, user):
    """portico-admin disable|enable USER, as the directory's admin."""
    p = admin(st, FE, verb, user, "--bind-dn", st.LDAP_ADMIN_DN,
              "--password-file", password_file(st))
    assert p.returncode == 0, p.stderr
    return p


def new_user(st, prefix):
    """A fresh user on s1b1: (login, password, mailbox id)."""
    return st.new_account(prefix)


def password_file(st):
    p = st.dir / "ldap-admin.pw"
    p.write_text(st.LDAP_ADMIN_PASSWORD + "\n")
    return p


def parse_show(out):
    """settings show: {name: (value, source)}; every line is
    "section.name = value  ; default" or "...  ; set (default "X")"."""
    got = {}
    for line in out.splitlines():
        m = re.fullmatch(r'([a-z0-9_]+\.[a-z0-9_]+) = (.*?) *  ; '
                         r'(default|set \(default "(.*)"\))', line)
        assert m, line
        got[m.group(1)] = (m.group(2), m.group(3) if m.group(4) is None
                           else "set", m.group(4))
    return got


def uid_fetch_all(c):
    """[(UID, flags, INTERNALDATE, bytes)] of every message of the selected
    mailbox, in UID order."""
    typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1)
        date = re.search(r'INTERNALDATE "([^"]+)"', head).group(1)
        uid = int(re.search(r"UID (\d+)", head).group(1))
        out.append((uid, flags.split(), date, item[1]))
    return out


def fetch_all(st, user, mailbox="INBOX"):
    """[(flags, INTERNALDATE, bytes)] of every message, in UID order."""
    c = st.imap(user)
    try:
        typ, _ = c.select(mailbox, readonly=True)
        assert typ == "OK"
        return [(set(flags), date, body)
                for _, flags, date, body in uid_fetch_all(c)]
    finally:
        c.logout()


# ---- settings ----------------------------------------------------------------

def test_settings_show_and_set(st, tmp_path):
    ini = tmp_path / "frontend.ini"
    original = (st.dir / FE).read_text()
    ini.write_text("; operator's note, kept\n" + original.replace(
        "[ldap]\n", "[ldap]\n; directory servers\ntimeout = 7s ; short\n", 1))

    def run(*args):
        return admin(st, ini, "settings", *args)

    p = run("show")
    assert p.returncode == 0, p.stderr
    got = parse_show(p.stdout)
    assert got["ldap.timeout"] == ("7s", "set", "5s")
    assert got["ldap.bind_password"] == ("(hidden)", "set", "")
    assert got["frontend.workers"] == ("2", "set", "0")
    assert got["frontend.imap_listen"] == ("127.0.0.1:%d" % st.IMAP_PORT,
                                           "set", "")
    assert got["ldap.auth_connections"] == ("4", "default", None)
    assert got["frontend.imap_enabled"] == ("yes", "default", None)
    assert len(got) > 100
    # --changed: only what the file sets
    p = run("show", "--changed")
    assert p.returncode == 0
    changed = parse_show(p.stdout)
    assert {v[1] for v in changed.values()} == {"set"}
    assert changed == {k: v for k, v in got.items() if v[1] == "set"}
    p = run("show", "ldap.timeout")
    assert list(parse_show(p.stdout).items()) == [
        ("ldap.timeout", ("7s", "set", "5s"))]
    assert set(k.split(".")[0] for k in
               parse_show(run("show", "ldap").stdout)) == {"ldap"}
    p = run("show", "nosuch.thing")
    assert p.returncode == 1
    assert "no setting or section nosuch.thing" in p.stderr

    # set: in place, in its section, in a new section; SIGHUP to the pid
    before_set = ini.read_text()
    pidfile = st.dir / "s1f1" / "pid"
    p = run("set", "ldap.timeout=30s", "frontend.workers=3",
            "ldap.cache_size=100", "backend.quota_storage=1G",
            "lmtp.trusted_networks=10.0.0.0/8", "--reload", pidfile)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "ldap.timeout = 30s", "frontend.workers = 3",
        "ldap.cache_size = 100", "backend.quota_storage = 1G",
        "lmtp.trusted_networks = 10.0.0.0/8",
        "reload: SIGHUP sent to %s" % pidfile.read_text().strip()]
    text = ini.read_text()
    assert text.startswith("; operator's note, kept\n")
    assert "[ldap]\n; directory servers\ntimeout = 30s ; short\n" in text
    assert text.count("workers = ") == 1 and "workers = 3\n" in text
    assert "\nbase_dn = " in text
    # a new key at the end of its section (before the next one), or in a
    # section of its own at the end
    ldap_section = text.split("[ldap]\n", 1)[1].split("\n[", 1)[0]
    assert ldap_section.rstrip("\n").endswith("cache_size = 100")
    assert "[backend]\nquota_messages = %d\nquota_storage = 1G\n" % \
        QUOTA_MESSAGES in text
    assert text.endswith("\n\n[lmtp]\ntrusted_networks = 10.0.0.0/8\n")
    # and nothing else changed
    diff = list(difflib.ndiff(before_set.splitlines(), text.splitlines()))
    assert sorted(l for l in diff if l[:2] == "- ") == [
        "- timeout = 7s ; short", "- workers = 2"]
    assert sorted(l for l in diff if l[:2] == "+ ") == sorted([
        "+ timeout = 30s ; short", "+ workers = 3", "+ cache_size = 100",
        "+ quota_storage = 1G", "+ ", "+ [lmtp]",
        "+ trusted_networks = 10.0.0.0/8"])
    changed = parse_show(run("show", "--changed").stdout)
    assert changed["ldap.timeout"] == ("30s", "set", "5s")
    assert changed["ldap.cache_size"] == ("100", "set", "0")
    assert changed["backend.quota_storage"][:2] == ("1G", "set")
    assert changed["frontend.workers"] == ("3", "set", "0")
    assert changed["lmtp.trusted_networks"][:2] == ("10.0.0.0/8", "set")
    # the file is what the daemons read: the frontend starts with it
    # (checked by config-load of every value above) and the running one
    # took SIGHUP and still answers
    status = http.client.HTTPConnection(st.host, st.HTTP_PORT, timeout=30)
    status.request("GET", "/health")
    assert status.getresponse().status == 200

    # refused values: the file is left alone, the setting named
    before = ini.read_bytes()
    for arg, rc, msg in [
            ("frontend.workers=abc", 1,
             "frontend.workers: invalid value 'abc'"),
            ("ldap.timeout=0", 1, "ldap.timeout: '0' is outside 1..300"),
            ("frontend.nosuch=1", 1, "unknown setting frontend.nosuch"),
            ("workers=3", 2, "expected section.name=value"),
            ("ldap.uris=a\nb", 1, "ldap.uris: a value is one line")]:
        p = run("set", "frontend.workers=4", arg)
        assert p.returncode == rc, (arg, p.stdout, p.stderr)
        assert msg in p.stderr, (arg, p.stderr)
    assert ini.read_bytes() == before
    # values each well-formed that the daemon itself would refuse at its
    # next start or reload: portico-frontend -t (or -backend) decides
    for arg, msg in [
            ("frontend.imap_login_type=sometimes",
             "frontend.imap_login_type: invalid value 'sometimes'"),
            ("global.log_level=loud", "global.log_level: invalid value"),
            ("lmtp.trusted_networks=10.0.0.0/33", "lmtp.trusted_networks"),
            ("frontend.imap_listen=nowhere", "frontend.imap_listen")]:
        p = run("set", "frontend.workers=4", arg)
        assert p.returncode == 1, (arg, p.stdout, p.stderr)
        assert msg in p.stderr, (arg, p.stderr)
        assert "portico-frontend -t refuses the new file" in p.stderr, \
            p.stderr
        assert ini.read_bytes() == before
    assert not [f for f in ini.parent.iterdir() if f.name != ini.name]
    # a backend's file gets the backend's check
    bini = tmp_path / "backend.ini"
    bini.write_text((st.dir / BE).read_text())
    p = admin(st, bini, "settings", "set", "transport.quota_failure=maybe")
    assert p.returncode == 1, p.stdout
    assert "transport.quota_failure: invalid value 'maybe'" in p.stderr
    assert "portico-backend -t refuses the new file" in p.stderr
    p = admin(st, bini, "settings", "set", "transport.quota_failure=permanent")
    assert p.returncode == 0, p.stderr
    assert "quota_failure = permanent" in bini.read_text()


# ---- backends ----------------------------------------------------------------

def test_backends_two_sites(st):
    p = admin(st, FE, "backends")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = p.stdout.splitlines()
    assert rows[0].split() == ["backend", "site", "link-address", "health"]
    assert [r.split()[:2] for r in rows[1:3]] == [["s1b1", "1"],
                                                   ["s2b1", "2"]]
    for r in rows[1:3]:
        assert re.fullmatch(r"\S+ +\d +127\.0\.0\.1:\d+ +ok \d+\.\d ms", r)
    assert rows[3] == "2 backends, 0 failing"
    st.stop("s2b1")
    try:
        p = admin(st, FE, "backends")
        assert p.returncode == 1
        rows = p.stdout.splitlines()
        assert re.fullmatch(r"s1b1 +1 +\S+ +ok .*", rows[1])
        assert re.fullmatch(r"s2b1 +2 +\S+ +fail connect: Connection "
                            r"refused \(\d+\.\d ms\)", rows[2]), rows[2]
        assert rows[3] == "2 backends, 1 failing"
    finally:
        st.start("s2b1")
    # a backend configuration has no backends_dn: a clear refusal
    p = admin(st, BE, "backends")
    assert p.returncode == 1
    assert "ldap.backends_dn is not set" in p.stderr


# ---- sessions ----------------------------------------------------------------

def sessions(st):
    p = admin(st, FE, "sessions")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["id", "protocol", "user", "client",
                                "backend", "state", "age", "worker"]
    assert re.fullmatch(r"\d+ sessions", lines[-1])
    rows = [l.split() for l in lines[1:-1]]
    assert int(lines[-1].split()[0]) == len(rows)
    return rows


def test_sessions_of_every_loop(st):
    user, pw, _ = new_user(st, "sess")
    imaps = [st.imap(user) for _ in range(6)]
    pop = st.pop3(user)
    try:
        for c in imaps:
            c.select("INBOX")
        rows = [r for r in sessions(st) if r[2] == user]
        assert sorted(r[1] for r in rows) == ["imap"] * 6 + ["pop3"]
        for r in rows:
            assert re.fullmatch(r"[0-9a-f]{16}", r[0])
            assert r[3].startswith("127.0.0.1:")
            assert r[4] == "s1b1" and r[5] == "relay"
            assert int(r[6]) >= 0 and r[7] in ("0", "1")
        assert len({r[0] for r in rows}) == 7
        # the raw endpoint, and its owner: the same sessions
        conn = http.client.HTTPConnection(st.host, st.HTTP_PORT, timeout=30)
        conn.request("GET", "/sessions")
        r = conn.getresponse()
        body = r.read().decode()
        assert r.status == 200
        assert r.getheader("Content-Type").startswith("text/plain")
        assert sum(1 for l in body.splitlines()
                   if l.split("\t")[2:3] == [user]) == 7
    finally:
        for c in imaps:
            c.logout()
        pop.quit()
    wait_for(lambda: not [r for r in sessions(st) if r[2] == user],
             what="sessions gone after logout")


def test_sessions_refused_outside_metrics_networks(st):
    conn = http.client.HTTPConnection(st.host, st.HTTP_PORT, timeout=30,
                                      source_address=("127.0.0.2", 0))
    conn.request("GET", "/sessions")
    r = conn.getresponse()
    assert r.status == 403
    assert r.read() == b"Not from this address (http.metrics_networks).\n"


# ---- disable / enable ------------------------------------------------------

def test_disable_then_enable(st):
    user, pw, mbox = new_user(st, "dis")
    pwfile = password_file(st)
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file", pwfile]
    st.imap(user).logout()
    p = admin(st, FE, "disable", user, *creds)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("%s: porticoAccountState active -> disabled "
                        "(uid=%s,ou=people,dc=example,dc=test)\n"
                        "%s: sessions already open go on; end them with "
                        "portico-admin -c BACKEND.ini kick %s (backend "
                        "s1b1)\n" % (user, user, user, mbox))
    with pytest.raises(imaplib.IMAP4.error) as e:
        st.imap(user)
    assert "AUTHORIZATIONFAILED" in str(e.value)
    p = admin(st, FE, "enable", user, *creds)
    assert p.returncode == 0, p.stderr
    assert "disabled -> active" in p.stdout
    st.imap(user).logout()
    # refusals
    p = admin(st, FE, "disable", "nobody@example.test", *creds)
    assert p.returncode == 1
    assert "nobody@example.test matches 0 users" in p.stderr
    p = admin(st, FE, "disable", user)
    assert p.returncode == 2 and "--bind-dn DN" in p.stderr
    wrong = st.dir / "wrong.pw"
    wrong.write_text("not-the-password\n")
    p = admin(st, FE, "disable", user, "--bind-dn", st.LDAP_ADMIN_DN,
              "--password-file", wrong)
    assert p.returncode == 1 and "Invalid credentials" in p.stderr
    st.imap(user).logout()


# ---- kick ------------------------------------------------------------------

class Raw:
    """A logged-in IMAP or POP3 session over implicit TLS, read by line."""

    def __init__(self, st, proto, user, password, site=1):
        self.s = st.ssl_context().wrap_socket(
            socket.create_connection(
                (st.host, st.port(proto + "s", site)), timeout=15),
            server_hostname=st.host)
        self.f = self.s.makefile("rb")
        assert self.f.readline()[:4] in (b"* OK", b"+OK ")
        if proto == "imap":
            self.send(b"l LOGIN %s %s\r\n" % (user.encode(),
                                                password.encode()))
            assert self.until(b"l ").startswith(b"l OK")
        else:
            self.send(b"USER %s\r\n" % user.encode())
            assert self.f.readline().startswith(b"+OK")
            self.send(b"PASS %s\r\n" % password.encode())
            assert self.f.readline().startswith(b"+OK")

    def send(self, data):
        self.s.sendall(data)

    def until(self, prefix):
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            if line.startswith(prefix):
                return line

    def rest(self):
        """Every line until the server closes the connection."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return lines
            lines.append(line)


def kick_http(st, method, query, headers=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection(st.host, st.SITE1_BE1_HTTP_PORT,
                                      timeout=30,
                                      source_address=(source, 0))
    conn.request(method, "/kick" + query, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def test_kick(st):
    """portico-admin kick ends every IMAP and POP3 session of one mailbox
    on its backend, through either site's frontend: in IDLE, in the middle
    of a command line the client withholds, and a POP3 session whose DELE
    is then not done (no QUIT, RFC 1939 6).  Another account's session
    stays; the account can log in again (kick is not disable).  Only
    POST, from http.metrics_networks, not from a web page."""
    user, pw, mbox = new_user(st, "kick")
    other, opw, _ = new_user(st, "kickother")
    c = st.imap(user)
    c.append("INBOX", None, None, b"Subject: keep\r\n\r\nkeep me\r\n")
    c.logout()
    kicked = "portico_backend_kicked_sessions_total"
    before = backend_metric(st, kicked)

    idle = Raw(st, "imap", user, pw)
    idle.send(b"s SELECT INBOX\r\n")
    assert idle.until(b"s ").startswith(b"s OK")
    idle.send(b"i IDLE\r\n")
    assert idle.f.readline().startswith(b"+ ")
    partial = Raw(st, "imap", user, pw, site=2)
    partial.send(b"p NOOP")  # no line end: a command withheld
    pop = Raw(st, "pop3", user, pw)
    pop.send(b"DELE 1\r\n")
    assert pop.f.readline().startswith(b"+OK")
    bystander = Raw(st, "imap", other, opw)

    # the backend lists them, through both sites' frontends
    p = admin(st, BE, "sessions", mbox)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["session", "protocol", "user", "mailbox-id",
                                "frontend", "client", "age"]
    rows = sorted((r.split()[1], r.split()[2], r.split()[3], r.split()[4])
                  for r in lines[1:-1])
    assert rows == sorted([("imap", user, mbox, "s1f1"),
                           ("imap", user, mbox, "s2f1"),
                           ("pop3", user, mbox, "s1f1")]), p.stdout
    assert lines[-1] == "3 sessions"
    p = admin(st, BE, "sessions")
    assert p.returncode == 0, p.stderr
    assert any(r.split()[2] == other for r in p.stdout.splitlines()[1:-1])
    assert admin(st, BE, "sessions", mbox, "x").returncode == 2
    status = http.client.HTTPConnection(
        st.host, st.SITE1_BE1_HTTP_PORT, timeout=30,
        source_address=("127.0.0.2", 0))
    status.request("GET", "/sessions")
    assert status.getresponse().status == 403
    status = http.client.HTTPConnection(st.host, st.SITE1_BE1_HTTP_PORT,
                                        timeout=30)
    status.request("GET", "/sessions?mailbox=a%0Ab")
    assert status.getresponse().status == 400

    # refused: another method, another address, a web page, no mailbox
    q = "?mailbox=" + mbox
    assert kick_http(st, "GET", q)[0] == 405
    assert kick_http(st, "POST", q, source="127.0.0.2") == (
        403, b"Not from this address (http.metrics_networks).\n")
    assert kick_http(st, "POST", q, {"Origin": "http://evil.test"}) == (
        403, b"Not from a web page.\n")
    assert kick_http(st, "POST", q, {"Sec-Fetch-Site": "cross-site"})[0] \
        == 403
    assert kick_http(st, "POST", "")[0] == 400
    assert kick_http(st, "POST", "?mailbox=a%0Ab")[0] == 400
    assert backend_metric(st, kicked) == before

    p = admin(st, BE, "kick", mbox)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"kicked %s: 3 sessions ended, cached logins "
                        r"forgotten on [1-9]\d* frontend links?\n" % mbox,
                        p.stdout), p.stdout
    assert idle.rest() == [b"* BYE Session ended by an administrator\r\n"]
    assert partial.rest() == [
        b"* BYE Session ended by an administrator\r\n"]
    assert pop.rest() == [b"-ERR Session ended by an administrator.\r\n"]
    assert backend_metric(st, kicked) == before + 3
    # the other account's session goes on
    bystander.send(b"n NOOP\r\n")
    assert bystander.until(b"n ").startswith(b"n OK")
    # none left; the account logs in again, its message not deleted
    p = admin(st, BE, "kick", mbox)
    assert p.returncode == 0
    assert p.stdout.startswith("kicked %s: 0 sessions ended," % mbox)
    p = admin(st, BE, "sessions", mbox)
    assert p.returncode == 0 and p.stdout.splitlines()[1:] == ["0 sessions"]
    c = st.imap(user)
    assert c.select("INBOX", readonly=True)[1] == [b"1"]
    c.logout()
    # without a backend.http_listen to ask
    ini = st.dir / "kick-backend.ini"
    ini.write_text((st.dir / BE).read_text().replace(
        "http_listen", "; http_listen"))
    p = admin(st, ini, "kick", mbox)
    assert p.returncode == 1
    assert "backend.http_listen is not set" in p.stderr
    assert admin(st, BE, "kick").returncode == 2
    for extra in (["--parked"], ["--park", "--park"], ["x"]):
        p = admin(st, BE, "kick", mbox, *extra)
        assert p.returncode == 2, (extra, p.stdout, p.stderr)
        assert "portico-admin -c BACKEND.ini kick MAILBOX_ID [--park]\n" \
            in p.stderr, p.stderr
        assert p.stdout == "", p.stdout


def test_kick_forgets_cached_logins(stack_factory):
    """With ldap.cache_size set, a disabled account could log in from a
    frontend's cache until ldap.cache_ttl ran out; kick has its backend
    tell every linked frontend, of either site, to forget the account's
    cached logins: the next login asks LDAP and is refused."""
    st2 = stack_factory(name="kickcache", sites=2, settings=[
        "frontend.workers=1", "ldap.cache_size=1000",
        "http.metrics_networks=127.0.0.1/32"])
    user, pw, mbox = new_user(st2, "cached")
    other, opw, _ = new_user(st2, "cachedother")
    for site in (1, 2):
        st2.imap(user, site=site).logout()
        st2.imap(other, site=site).logout()
    set_account_state(st2, "disable", user)
    # the caches still let it in
    for site in (1, 2):
        st2.imap(user, site=site).logout()
    p = admin(st2, BE, "kick", mbox)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("kicked %s: 0 sessions ended, cached logins "
                        "forgotten on 2 frontend links\n" % mbox)
    for site in (1, 2):
        with pytest.raises(imaplib.IMAP4.error) as e:
            st2.imap(user, site=site)
        assert "AUTHORIZATIONFAILED" in str(e.value)
        # another account's cached login is not touched
        st2.imap(other, site=site).logout()
    # the refusal was not cached: enable applies at once
    set_account_state(st2, "enable", user)
    for site in (1, 2):
        st2.imap(user, site=site).logout()


def test_kick_reaches_a_frontend_linked_later(stack_factory):
    """A frontend whose link was down at the kick (stopped here until the
    backend gave its link up: a network fault, in life) got no Forget and
    let the disabled account in from its cache.  The backend remembers
    the kick (backend.kick_memory) and tells such a frontend before its
    new link's first session: what its cache let in while the link came
    up (a session, a submitted message) is refused for now, and the next
    login asks LDAP."""
    st2 = stack_factory(name="kicklater", frontends_per_site=2, settings=[
        "frontend.workers=1", "ldap.cache_size=1000",
        "backend.link_ping_interval=1s", "backend.link_timeout=3s",
        "http.metrics_networks=127.0.0.1/32"])
    user, pw, mbox = new_user(st2, "later")
    sender, spw, smbox = new_user(st2, "latersender")
    other, opw, _ = new_user(st2, "laterother")
    late, lpw, lmbox = new_user(st2, "latersubmitter")
    for fe in (1, 2):
        for u in (user, sender, other):
            st2.imap(u, frontend=fe).logout()
    # submission logins are cached too
    for u, p in ((sender, spw), (late, lpw)):
        smtp = smtplib.SMTP_SSL(st2.host,
                                st2.port("submissions", frontend=2),
                                context=st2.ssl_context(), timeout=10)
        smtp.login(u, p)
        smtp.quit()
    for u in (user, sender):
        set_account_state(st2, "disable", u)
    pid = int((st2.dir / "s1f2" / "pid").read_text())

    def kick_while_s1f2_is_cut_off(ids):
        lost = st2.log("s1b1").count("frontend=s1f2 lost")
        sigstop(pid)
        try:
            wait_for(lambda: st2.log("s1b1").count("frontend=s1f2 lost")
                     > lost, timeout=30)
            for i in ids:
                p = admin(st2, BE, "kick", i)
                assert p.returncode == 0, p.stderr
                assert p.stdout == ("kicked %s: 0 sessions ended, cached "
                                    "logins forgotten on 1 frontend "
                                    "link\n" % i)
        finally:
            os.kill(pid, signal.SIGCONT)
        # The stopped frontend finds its link gone; past its retry
        # interval a new one is made for what comes next.
        time.sleep(1.5)

    kick_while_s1f2_is_cut_off([mbox, smbox])
    with pytest.raises(imaplib.IMAP4.error, match="AUTHORIZATIONFAILED"):
        st2.imap(user, frontend=1)
    # A cached login waits for the new link, whose backend names the
    # kicked accounts before its Hello.
    with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
        st2.imap(user, frontend=2)
    # (the frontend logs after answering)
    wait_for(lambda: re.search(r"link backend=s1b1 forget mailboxes=2 "
                               r"cached=2 waiting=1\n", st2.log("s1f2")),
             what="the forget line in s1f2.log")
    assert re.search(r"link backend=s1b1 address=\S+ version=\S+ ready "
                     r"forgets=2\n", st2.log("s1f2")), \
        st2.log("s1f2")[-3000:]
    assert re.search(r"frontend=s1f2 version=\S+ ready forgets=2\n",
                     st2.log("s1b1")), st2.log("s1b1")[-3000:]
    for u in (user, sender):
        with pytest.raises(imaplib.IMAP4.error,
                           match="AUTHORIZATIONFAILED"):
            st2.imap(u, frontend=2)
    # another account's cached login stays
    hits = len(re.findall(r"user=%s authenticated cache=hit" %
                          re.escape(other), st2.log("s1f2")))
    st2.imap(other, frontend=2).logout()
    assert len(re.findall(r"user=%s authenticated cache=hit" %
                          re.escape(other), st2.log("s1f2"))) == hits + 1

    # A submission its cache let in while the link was down: the message
    # waiting for the link is refused, not sent.
    set_account_state(st2, "disable", late)
    kick_while_s1f2_is_cut_off([lmbox])
    smtp = smtplib.SMTP_SSL(st2.host, st2.port("submissions", frontend=2),
                            context=st2.ssl_context(), timeout=10)
    smtp.login(late, lpw)   # from the cache: no link needed
    with pytest.raises(smtplib.SMTPDataError) as e:
        smtp.sendmail(late, [other], b"Subject: after the kick\r\n\r\n"
                      b"not to be sent\r\n")
    assert 400 <= e.value.smtp_code < 500, e.value
    smtp.close()
    wait_for(lambda: re.search(r"link backend=s1b1 forget mailboxes=3 "
                               r"cached=1 waiting=1\n",
                               st2.log("s1f2")),
             what="the forget line in s1f2.log")
    c = st2.imap(other, frontend=1)
    c.select("INBOX")
    assert c.search(None, "SUBJECT", '"after the kick"')[1] == [b""]
    c.logout()


def test_kick_memory_is_bounded(stack_factory):
    """What kick remembers is one entry per account (a second kick moves
    it to the end), at most backend.kick_memory_entries, the oldest
    forgotten first; a frontend linking later is named all of them."""
    st2 = stack_factory(name="kickmem", settings=[
        "backend.kick_memory_entries=3",
        "http.metrics_networks=127.0.0.1/32"])
    ids = ["%016x" % (0xa0 + i) for i in range(4)]
    for i in (0, 1, 0, 2, 3):
        p = admin(st2, BE, "kick", ids[i])
        assert p.returncode == 0, p.stderr
    log = st2.log("s1b1")
    assert log.count("kick memory full (backend.kick_memory_entries=3): "
                     "forgetting the oldest 1\n") == 1, log[-3000:]
    # the frontend's first link comes with the login
    user, pw, _ = new_user(st2, "kickmem")
    st2.imap(user).logout()
    assert re.search(r"frontend=s1f1 version=\S+ ready forgets=3\n",
                     st2.log("s1b1")), st2.log("s1b1")[-3000:]
    assert re.search(r"link backend=s1b1 forget mailboxes=3 cached=0 "
                     r"waiting=0\n", st2.log("s1f1")), \
        st2.log("s1f1")[-3000:]


def test_kick_memory_survives_a_restart(stack_factory):
    """What kick remembers is in the store as well: a restarted backend
    still names the kicked accounts to a frontend whose link comes up,
    those within backend.kick_memory; the records past it or beyond
    backend.kick_memory_entries are removed.  The kick's answer comes
    once its record is stored."""
    memory = 6.0
    st2 = stack_factory(name="kickstore", settings=[
        "backend.kick_memory=%ds" % memory, "backend.kick_memory_entries=3",
        "http.metrics_networks=127.0.0.1/32"])
    ids = ["%016x" % (0xb0 + i) for i in range(4)]

    def kick(i):
        p = admin(st2, BE, "kick", i)
        assert p.returncode == 0, p.stderr

    def restart():
        st2.stop("s1b1")
        st2.start("s1b1")
        return re.findall(r"kick memory: (\d+) accounts remembered, (\d+) "
                          r"past backend.kick_memory or its entries\n",
                          st2.log("s1b1"))[-1]

    kick(ids[0])
    time.sleep(memory + 0.3)
    t = time.monotonic()
    for i in ids[1:]:
        kick(i)
    kicked = time.monotonic()
    # the fourth record went with the third kick's (past kick_memory)
    assert restart() == ("3", "0")
    assert time.monotonic() - t < memory - 1, "restart too slow to test"
    p = admin(st2, BE, "check", "--all")  # the records are well formed
    assert p.returncode == 0, p.stdout + p.stderr
    user, pw, _ = new_user(st2, "kickstore")
    ready = st2.log("s1b1").count("ready forgets=3\n")
    st2.imap(user).logout()  # the frontend's link to the new process
    assert st2.log("s1b1").count("frontend=s1f1 version=")
    assert st2.log("s1b1").count("ready forgets=3\n") == ready + 1, \
        st2.log("s1b1")[-3000:]
    wait_for(lambda: re.search(r"link backend=s1b1 forget mailboxes=3 "
                               r"cached=0 waiting=0\n", st2.log("s1f1")),
             what="the forget line in s1f1.log")
    # past kick_memory at the next start: forgotten, their records gone
    st2.stop("s1b1")
    time.sleep(max(0.0, kicked + memory + 0.3 - time.monotonic()))
    st2.start("s1b1")
    assert re.findall(r"kick memory: (\d+) accounts remembered, (\d+) "
                      r"past", st2.log("s1b1"))[-1] == ("0", "3")
    assert restart() == ("0", "0")


def test_kick_memory_forgets_a_tenth_when_full(stack_factory):
    """Full, what kick remembers drops its oldest tenth at once, in memory
    and in the store, so that neither moves at each kick; a restart reads
    the rest back."""
    st2 = stack_factory(name="kicktenth", settings=[
        "backend.kick_memory_entries=20",
        "http.metrics_networks=127.0.0.1/32"])
    for i in range(21):
        p = admin(st2, BE, "kick", "%016x" % (0xd0 + i))
        assert p.returncode == 0, p.stderr
    log = st2.log("s1b1")
    assert log.count("kick memory full (backend.kick_memory_entries=20): "
                     "forgetting the oldest 3\n") == 1, log[-3000:]
    st2.stop("s1b1")
    st2.start("s1b1")
    assert "kick memory: 18 accounts remembered, 0 past" in \
        st2.log("s1b1"), st2.log("s1b1")[-3000:]
    user, _, _ = new_user(st2, "kicktenth")
    st2.imap(user).logout()
    assert re.search(r"frontend=s1f1 version=\S+ ready forgets=18\n",
                     st2.log("s1b1")), st2.log("s1b1")[-3000:]


def hold_store_writer(store):
    """An mdb_load of nothing into STORE that has begun its write
    transaction and waits for its input: the store's writer lock is held
    (every commit of the backend waits) until release() ends it, having
    changed nothing."""
    header = b"VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
    p = subprocess.Popen(["mdb_load", str(store)], stdin=subprocess.PIPE)
    p.stdin.write(header)
    p.stdin.flush()

    def holding():
        # the header read, and waiting in the next read: after
        # mdb_txn_begin
        rchar = int(re.search(r"^rchar: (\d+)", Path(
            "/proc/%d/io" % p.pid).read_text(), re.M).group(1))
        call = Path("/proc/%d/syscall" % p.pid).read_text().split()
        return rchar >= len(header) and call[:2] == ["0", "0x0"]
    wait_for(holding, what="mdb_load holding the writer lock")

    def release():
        p.stdin.write(b"DATA=END\n")
        p.stdin.close()
        assert p.wait(timeout=CMD_TIMEOUT) == 0
    return release


def test_kick_waits_for_a_sent_messages_reply(st):
    """A submission session kicked while its message is complete and the
    backend has not yet replied (the queue's commit waits here for the
    store's writer lock) gets that reply first, then the kick's 421: the
    backend may have taken the message, and a client that saw only 421
    would send it again.  The message is delivered once."""
    user, pw, mbox = new_user(st, "kickresult")
    other, opw, _ = new_user(st, "kickresultto")
    s = submission(st, user, pw)
    s.expect("MAIL FROM:<%s>" % user, 250)
    s.expect("RCPT TO:<%s>" % other, 250)
    s.expect("DATA", 354)
    release = hold_store_writer(st.dir / "s1b1" / "store")
    try:
        s.send("Subject: sent before the kick\r\n\r\nonce\r\n.\r\n")
        wait_for(lambda: any(r[2] == user and r[5] == "local:result"
                             for r in sessions(st)),
                 what="the session waiting for the backend's reply")
        # the Forgets leave at once; the answer waits for the store
        kick = subprocess.Popen(
            [str(BUILD / "portico-admin"), "-c", str(st.dir / BE), "kick",
             mbox], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        wait_for(lambda: re.search(r"user=%s kicked state=result\n"
                                   % re.escape(user), st.log("s1f1")),
                 what="the kick of the waiting session")
        # nothing yet: the reply is still to come
        assert select.select([s.sock], [], [], 0.3)[0] == [] and \
            s.sock.pending() == 0
    finally:
        release()
    out, err = kick.communicate(timeout=CMD_TIMEOUT)
    assert kick.returncode == 0 and "kicked %s: " % mbox in out, err
    code, text = s.reply()
    assert code == 250, (code, text)
    kicked_bye(s)
    s.close()
    c = st.imap(other, opw)
    c.select("INBOX", readonly=True)
    wait_for(lambda: c.noop() and c.search(
        None, "SUBJECT", '"sent before the kick"')[1] == [b"1"],
             what="the message in its recipient's INBOX")
    c.logout()


def test_kicks_beyond_what_a_frontend_keeps(stack_factory):
    """A frontend keeps at most 100,000 Forgets before a link's Hello;
    told more (backend.kick_memory_entries set above it), it forgets every
    cached login of the backend's accounts, refuses what they let in
    while the link came up, and ends every submission session of them.
    The kicks are written into the stopped backend's store, which it reads
    back at start."""
    st2 = stack_factory(name="kickall", settings=[
        "backend.kick_memory_entries=200000", "ldap.cache_size=1000",
        "frontend.workers=1", "http.metrics_networks=127.0.0.1/32"])
    user, pw, _ = new_user(st2, "kickall")
    other, opw, _ = new_user(st2, "kickallother")
    st2.imap(other).logout()  # cached, and the link is up
    s = submission(st2, user, pw)
    st2.stop("s1b1")
    now = int(time.time() * 1000)
    records = "".join("%016x\n%s\n" % (0xc00000 + i, "".join(
        "\\%02x" % b for b in now.to_bytes(8, "big")))
        for i in range(100001))
    subprocess.run(["mdb_load", "-T", "-s", "kicks",
                    str(st2.dir / "s1b1" / "store")],
                   input=records, text=True,
                   check=True, timeout=CMD_TIMEOUT)
    st2.start("s1b1")
    assert "kick memory: 100001 accounts remembered, 0 past" in \
        st2.log("s1b1")
    # the cached login waits for the new link, whose Forgets are too many
    with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
        st2.imap(other)
    kicked_bye(s)
    wait_for(lambda: re.search(r"link backend=s1b1 forget mailboxes=all "
                               r"cached=[1-9]\d* waiting=1\n",
                               st2.log("s1f1")),
             what="the forget line in s1f1.log")
    assert re.search(r"kick backend=s1b1 worker=0 mailboxes=all "
                     r"sessions=1\n", st2.log("s1f1")), \
        st2.log("s1f1")[-3000:]
    st2.imap(other).logout()  # asked of LDAP


def submission(st, user, password, frontend=1):
    """A RawSMTP session over implicit TLS, logged in as user."""
    s = RawSMTP(st.host, st.port("submissions", frontend=frontend),
                st.ssl_context())
    assert s.reply()[0] == 220
    s.ehlo()
    assert s.auth_plain(user, password)[0] == 235
    return s


def send_one(s, sender, rcpt, subject):
    """One message from sender to rcpt in the logged-in submission
    session s, accepted; then QUIT."""
    s.expect("MAIL FROM:<%s>" % sender, 250)
    s.expect("RCPT TO:<%s>" % rcpt, 250)
    s.expect("DATA", 354)
    s.send("Subject: %s\r\n\r\nsent\r\n.\r\n" % subject)
    assert s.reply()[0] == 250
    s.expect("QUIT", 221)


def frontend_metric(st, name):
    """NAME on the /metrics page of ST's first frontend."""
    return metric(st, st.HTTP_PORT, name, "frontend")


def kicked_bye(s):
    """The unsolicited 421 of a kicked session, then the end of it."""
    code, text = s.reply()
    assert code == 421, (code, text)
    assert text[-1].startswith("4.7.0 ") and \
        text[-1].endswith("Session ended by an administrator"), text
    assert s.f.readline() == b""


def test_kick_ends_submission_sessions(stack_factory):
    """An SMTP submission session lives in the frontend alone once logged
    in (a link only per message), so the backend's kick did not end it: a
    disabled or compromised account could go on sending until it quit.
    The kick's Forget frames end the account's submission sessions with
    421 4.7.0 (RFC 5321 3.8) on every loop of the frontend, the loops with
    no link to the backend included; a message still coming in is
    dropped.  A kick the backend remembers ends, when a frontend's link
    comes up later, the sessions that logged in before it, not those that
    logged in after it (kick is not disable)."""
    st2 = stack_factory(name="kicksmtp", frontends_per_site=2, settings=[
        "frontend.workers=2", "http.metrics_networks=127.0.0.1/32"])
    user, pw, mbox = new_user(st2, "kicksub")
    other, opw, _ = new_user(st2, "kicksubother")
    f1 = "s1f1/frontend.ini"

    def worker_of(s, ini=f1):
        port = s.sock.getsockname()[1]
        p = admin(st2, ini, "sessions")
        assert p.returncode == 0, p.stderr
        rows = [r.split() for r in p.stdout.splitlines()[1:-1]]
        got = [r[7] for r in rows if r[3] == "127.0.0.1:%d" % port]
        assert len(got) == 1, p.stdout
        return got[0]

    # One loop of s1f1 has a link to s1b1 (another account's IMAP
    # session), the other none.
    bystander = Raw(st2, "imap", other, opw)
    linked = next(r[7] for r in sessions(st2) if r[2] == other)
    assert st2.log("s1f1").count("link backend=s1b1 address=") == 1
    # sessions of the account on both loops (SO_REUSEPORT spreads them)
    subs, workers = [], set()
    while len(workers) < 2:
        assert len(subs) < 24, "every connection on one loop"
        subs.append(submission(st2, user, pw))
        workers.add(worker_of(subs[-1]))
    assert st2.log("s1f1").count("link backend=s1b1 address=") == 1
    # one in the middle of a message's content
    data = subs[0]
    data.expect("MAIL FROM:<%s>" % user, 250)
    data.expect("RCPT TO:<%s>" % other, 250)
    data.expect("DATA", 354)
    data.send("Subject: cut by the kick\r\n\r\nnot to be delivered\r\n")
    # another account's session stays
    keep = submission(st2, other, opw)

    kicked = frontend_metric(st2, "portico_frontend_kicked_sessions_total")
    p = admin(st2, BE, "kick", mbox)
    assert p.returncode == 0, p.stderr
    for s in subs:
        kicked_bye(s)
        s.close()
    wait_for(lambda: frontend_metric(
        st2, "portico_frontend_kicked_sessions_total") == kicked + len(subs),
        what="kicked_sessions_total counting every session")
    keep.expect("NOOP", 250)
    keep.expect("QUIT", 221)
    bystander.send(b"n NOOP\r\n")
    assert bystander.until(b"n ").startswith(b"n OK")
    unlinked = "1" if linked == "0" else "0"
    wait_for(lambda: re.search(r"kick backend=s1b1 worker=%s mailboxes=1 "
                               r"sessions=[1-9]" % unlinked,
                               st2.log("s1f1")),
             what="the kick line of the loop without a link")
    log = st2.log("s1f1")
    assert log.count("kicked state=") == len(subs), log[-3000:]
    assert "kicked state=content" in log
    # the message was dropped, never delivered
    c = st2.imap(other)
    c.select("INBOX", readonly=True)
    assert c.search(None, "SUBJECT", '"cut by the kick"')[1] == [b""]
    c.logout()
    # the account logs in again and sends (kick is not disable)
    s = submission(st2, user, pw)
    send_one(s, user, other, "after the kick")

    # s1f2 has no link to s1b1: the kick reaches it when one comes up,
    # through what the backend remembers, for the sessions from before.
    assert "link backend=s1b1 address=" not in st2.log("s1f2")
    before = submission(st2, user, pw, frontend=2)
    p = admin(st2, BE, "kick", mbox)
    assert p.returncode == 0, p.stderr
    assert "kicked %s: 0 sessions ended" % mbox in p.stdout
    time.sleep(0.05)
    after = submission(st2, user, pw, frontend=2)
    after.expect("NOOP", 250)
    before.expect("NOOP", 250)  # nothing told s1f2 yet
    st2.imap(other, frontend=2).logout()  # its first link to s1b1
    kicked_bye(before)
    time.sleep(0.3)  # the other loop has had the kick too
    after.expect("NOOP", 250)
    after.expect("QUIT", 221)
    wait_for(lambda: re.search(r"kick backend=s1b1 worker=\d mailboxes=1 "
                               r"sessions=1\n", st2.log("s1f2")),
             what="the kick line in s1f2.log")


# ---- export / import -------------------------------------------------------

MBOX = (b"From alice@example.test Mon Nov  3 08:00:00 2025\n"
        b"Return-Path: <sender@example.test>\n"
        b"From: Sender <sender@example.test>\n"
        b"Subject: first\n"
        b"\n"
        b">From the start of a line\n"
        b">>From a quoted line\n"
        b"From: not a header\n"
        b"\n"
        b"From MAILER-DAEMON Tue Nov 18 09:10:11 2025\n"
        b"Subject: second\n"
        b"\n"
        b"second body \xc3\xa9\n"
        b"\n")

APPENDED = (b"From: Other <other@example.test>\r\n"
            b"Subject: appended\r\n"
            b"\r\n"
            b"From now on\r\n"
            b">>>From deep\r\n"
            b"\r\n"
            b"last line\r\n")


def test_export_import_round_trip(st, tmp_path):
    src, _, src_id = new_user(st, "exp")
    dst, _, dst_id = new_user(st, "imp")
    src_file = tmp_path / "src.mbox"
    src_file.write_bytes(MBOX)
    p = admin(st, BE, "import", src_id, src_file)
    assert p.returncode == 0 and p.stdout == "imported 2\n", p.stderr
    c = st.imap(src)
    typ, _ = c.append("INBOX", "(\\Seen)", '"05-Jan-2024 10:20:30 +0000"',
                      APPENDED)
    assert typ == "OK"
    c.logout()
    before = fetch_all(st, src)
    assert [m[2] for m in before[:2]] == [
        b"Return-Path: <sender@example.test>\r\n"
        b"From: Sender <sender@example.test>\r\nSubject: first\r\n\r\n"
        b"From the start of a line\r\n>From a quoted line\r\n"
        b"From: not a header\r\n",
        b"Subject: second\r\n\r\nsecond body \xc3\xa9\r\n"]

    p = admin(st, BE, "export", src_id, text=False)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"exported 3 messages of %s INBOX\n" % \
        src_id.encode()
    out = p.stdout
    assert out.startswith(b"From sender@example.test Mon Nov  3 08:00:00 "
                          b"2025\nReturn-Path: <sender@example.test>\n")
    assert b"\n>From the start of a line\n>>From a quoted line\n" in out
    assert b"\nFrom MAILER-DAEMON Tue Nov 18 09:10:11 2025\n" in out
    assert b"\nFrom other@example.test Fri Jan  5 10:20:30 2024\n" in out
    assert b"\n>From now on\n>>>>From deep\n\nlast line\n\n" in out
    assert b"\r" not in out
    exported = tmp_path / "out.mbox"
    exported.write_bytes(out)

    p = admin(st, BE, "import", dst_id, exported)
    assert p.returncode == 0 and p.stdout == "imported 3\n", p.stderr
    after = fetch_all(st, dst)
    # every byte and internal date; flags are not part of mbox
    assert [(m[1], m[2]) for m in after] == [(m[1], m[2]) for m in before]
    assert after[0][1].strip() in ("3-Nov-2025 08:00:00 +0000",
                                   "03-Nov-2025 08:00:00 +0000")

    # another mailbox, and the errors
    p = admin(st, BE, "export", src_id, "--mailbox", "Trash")
    assert p.returncode == 0 and p.stdout == ""
    p = admin(st, BE, "export", src_id, "--mailbox", "Nope")
    assert p.returncode == 1 and "no such mailbox" in p.stderr
    p = admin(st, BE, "export", "0000000000000000")
    assert p.returncode == 1 and "no such mailbox id" in p.stderr


def folder_state(st, user, folder):
    """{Message-ID: (flags, INTERNALDATE, bytes, UID)} of one folder, and
    {"UIDVALIDITY": ..., "UIDNEXT": ...} under the key None."""
    c = st.imap(user)
    try:
        typ, _ = c.select('"%s"' % folder, readonly=True)
        assert typ == "OK", folder
        info = {k: int(c.untagged_responses[k][-1])
                for k in ("UIDVALIDITY", "UIDNEXT")}
        out = {}
        for uid, flags, date, body in uid_fetch_all(c):
            mid = re.search(rb"Message-ID: (\S+)", body).group(1)
            out[mid] = (frozenset(flags) - {"\\Recent"}, date, body, uid)
        out[None] = info
        return out
    finally:
        c.logout()


def test_move_to_another_backend(st, tmp_path):
    """The move of docs/OPERATIONS.md, done as written: a mailbox goes from
    s1b1 to s2b1 (the other site) with every folder, message byte,
    internal date, flag, keyword, UID, UIDVALIDITY and UIDNEXT, and so
    POP3 UIDL (export --maildir, import, which creates the folders the
    new backend lacks), mail for it is deferred
    during the move and reaches the new backend at the MTA's next try,
    the account logs in through either site's frontend to its new
    backend, and the old copy is removed."""
    user, pw, mbox = new_user(st, "move")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    c = st.imap(user)
    c.create('"Projects/2024"')
    msgs = [("INBOX", "(\\Seen \\Flagged $Important)",
             '"03-Jan-2024 10:00:00 +0100"'),
            ("INBOX", "()", '"04-Jan-2024 11:00:00 +0000"'),
            ("INBOX", "(\\Answered \\Draft project-x)",
             '"05-Jan-2024 12:30:00 -0500"'),
            ("Sent", "(\\Seen)", '"06-Jan-2024 08:00:00 +0000"'),
            ("Projects/2024", "(\\Seen project-x $Important)",
             '"07-Jan-2024 09:15:00 +0000"'),
            ("Projects/2024", "(\\Deleted)",
             '"08-Jan-2024 09:15:00 +0000"')]
    for i, (folder, flags, date) in enumerate(msgs):
        typ, _ = c.append('"%s"' % folder, flags, date,
                          b"Message-ID: <m%d@move>\r\nSubject: move %d\r\n"
                          b"\r\nbody %d\r\n" % (i, i, i))
        assert typ == "OK"
    # an expunged message: UIDNEXT is more than the last UID
    c.select('"Projects/2024"')
    c.expunge()
    c.logout()
    folders = ["INBOX", "Sent", "Projects/2024"]
    before = {f: folder_state(st, user, f) for f in folders}
    assert len(before["INBOX"]) == 4 and len(before["Projects/2024"]) == 2
    assert before["Projects/2024"][None]["UIDNEXT"] == 3
    pop = st.pop3(user, pw)
    uidls = pop.uidl()[1]
    pop.quit()
    assert len(uidls) == 3

    def highestmodseq(folder):
        c = st.imap(user)
        typ, data = c.status('"%s"' % folder, "(HIGHESTMODSEQ)")
        c.logout()
        assert typ == "OK", data
        return int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))
    modseqs = {f: highestmodseq(f) for f in folders}

    # 1. no new logins, no open sessions
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st)]
    p = admin(st, FE, "disable", user, *creds, "--state", "moving")
    assert p.returncode == 0, p.stderr
    p = admin(st, BE, "kick", mbox)
    assert p.returncode == 0, p.stderr
    # mail for it is deferred meanwhile, not refused
    note = (b"Message-ID: <late@move>\r\nSubject: during the move\r\n\r\n"
            b"kept by the MTA\r\n")
    with smtplib.LMTP(st.host, int(st.LMTP_PORT), timeout=30) as lm:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            lm.sendmail("mta@remote.example", [user], note)
        code, text = e.value.recipients[user]
        assert code == 450 and text.startswith(b"4.2.1 "), text
    # 2. every folder, as a Maildir, into the mailbox on the new backend
    NEW = "s2b1/backend.ini"
    p = admin(st, NEW, "provision", mbox)
    assert p.returncode == 0, p.stderr
    for i, folder in enumerate(folders):
        d = tmp_path / ("folder%d" % i)
        p = admin(st, BE, "export", mbox, "--mailbox", folder,
                  "--maildir", d)
        assert p.returncode == 0, p.stderr
        assert p.stderr == "exported %d messages of %s %s to %s\n" % (
            len(before[folder]) - 1, mbox, folder, d)
        p = admin(st, NEW, "import", mbox, d, "--mailbox", folder)
        assert p.returncode == 0, p.stderr
        assert p.stdout == "imported %d\n" % (len(before[folder]) - 1)
        assert ("created mailbox %s" % folder in p.stderr) == \
            (folder == "Projects/2024")
        assert "kept UIDVALIDITY %d and the UIDs of %s" % (
            before[folder][None]["UIDVALIDITY"], folder) in p.stderr
    # 3. the directory names the new backend; logins again
    ldap_modify(st, dn, "replace: porticoMailboxServer",
                "porticoMailboxServer: s2b1")
    p = admin(st, FE, "enable", user, *creds)
    assert p.returncode == 0, p.stderr
    for site in (1, 2):
        c = st.imap(user, site=site)
        typ, data = c.list()
        assert typ == "OK"
        listed = b"\n".join(data)
        assert b'"Projects/2024"' in listed or b" Projects/2024" in listed
        c.logout()
    # the same UIDVALIDITY, UIDNEXT and UIDs: clients need not resync;
    # HIGHESTMODSEQ above the old one (a CONDSTORE client's CHANGEDSINCE
    # of the old backend is answered with every message's flags)
    after = {f: folder_state(st, user, f) for f in folders}
    assert after == before
    for f in folders:
        assert highestmodseq(f) > modseqs[f]
    p = admin(st, NEW, "check", mbox)
    assert p.returncode == 0, p.stdout + p.stderr
    # the MTA's next try reaches the new backend, with the next UID
    with smtplib.LMTP(st.host, int(st.LMTP_PORT), timeout=30) as lm:
        assert lm.sendmail("mta@remote.example", [user], note) == {}
    inbox = folder_state(st, user, "INBOX")
    late = inbox.pop(b"<late@move>")
    assert late[2].endswith(note)
    assert late[3] == before["INBOX"][None]["UIDNEXT"]
    assert inbox.pop(None)["UIDNEXT"] == late[3] + 1
    assert inbox == {k: v for k, v in before["INBOX"].items() if k}
    # POP3 clients that leave mail on the server see the same UIDLs
    pop = st.pop3(user, pw, site=2)
    assert pop.uidl()[1][:3] == uidls
    pop.quit()
    # 4. the old copy goes
    p = admin(st, BE, "remove", mbox, "--yes")
    assert p.returncode == 0, p.stderr
    assert len(folder_state(st, user, "INBOX")) == 5

    # into a folder that has had messages: new UIDs, said so
    p = admin(st, NEW, "import", mbox, tmp_path / "folder1", "--mailbox",
              "INBOX")
    assert p.returncode == 0 and p.stdout == "imported 1\n", p.stderr
    assert "INBOX: new UIDs (the folder has had messages)" in p.stderr

    # export --maildir refuses a directory that exists
    p = admin(st, NEW, "export", mbox, "--maildir", tmp_path / "folder0")
    assert p.returncode == 1 and "File exists" in p.stderr
    assert admin(st, NEW, "export", mbox, "--maildir").returncode == 2


def account_view(st, user, pw, site=1):
    """Everything a client can see of an account: LIST with special-use,
    LSUB, per folder STATUS, FLAGS and every message's UID, FLAGS,
    MODSEQ, INTERNALDATE, SAVEDATE, size and octets; the quota; POP3
    UIDL."""
    view = {}
    c = st.imap(user, pw, site=site)
    try:
        typ, data = c.list()
        assert typ == "OK", data
        view["list"] = sorted(data)
        typ, data = c.lsub()
        assert typ == "OK", data
        view["lsub"] = sorted(data)
        typ, data = c.getquotaroot("INBOX")
        assert typ == "OK", data
        view["quota"] = data
        for line in view["list"]:
            m = re.fullmatch(rb'\(([^)]*)\) "/" "?([^"]*)"?', line)
            assert m, line
            if b"\\Noselect" in m.group(1).split():
                continue
            name = m.group(2).decode()
            typ, data = c.status('"%s"' % name, "(MESSAGES UIDNEXT "
                                 "UIDVALIDITY HIGHESTMODSEQ UNSEEN SIZE)")
            assert typ == "OK", data
            folder = {"status": data}
            typ, _ = c.select('"%s"' % name, readonly=True)
            assert typ == "OK"
            folder["flags"] = c.untagged_responses.get("FLAGS")
            typ, data = c.uid("FETCH", "1:*", "(FLAGS MODSEQ INTERNALDATE "
                              "SAVEDATE RFC822.SIZE BODY.PEEK[])")
            assert typ == "OK", data
            folder["messages"] = data
            c.close()
            view[name] = folder
    finally:
        c.logout()
    pop = st.pop3(user, pw, site=site)
    view["uidl"] = pop.uidl()[1]
    pop.quit()
    view["qresync"] = qresync_view(st, user, pw, site)
    return view


def qresync_view(st, user, pw, site, folder="INBOX"):
    """What a QRESYNC client (RFC 7162) that last saw the folder at each of
    its modseqs is told on SELECT: VANISHED (EARLIER) and FETCH lines."""
    c = st.imap(user, pw, site=site)
    try:
        typ, data = c._simple_command("ENABLE", "QRESYNC")
        assert typ == "OK", data
        typ, data = c.status(folder, "(UIDVALIDITY HIGHESTMODSEQ)")
        assert typ == "OK", data
        uv, top = map(int, re.search(rb"UIDVALIDITY (\d+) HIGHESTMODSEQ "
                                     rb"(\d+)", data[0]).groups())
        out = []
        for modseq in range(1, top + 1):
            c.untagged_responses = {}
            typ, data = c._simple_command(
                "SELECT", '"%s" (QRESYNC (%d %d))' % (folder, uv, modseq))
            assert typ == "OK", data
            out.append((c.untagged_responses.get("VANISHED"),
                        c.untagged_responses.get("FETCH")))
        return out
    finally:
        c.logout()


def account_stream_body(blob):
    """An export --account stream without its header and end records (what
    names the backend and the time, and the digest over them)."""
    magic = b"PORTICO-ACCOUNT 1\n"
    assert blob.startswith(magic)
    off = len(magic)
    records = []
    while off < len(blob):
        n = int.from_bytes(blob[off:off + 4], "big")
        records.append(blob[off:off + 4 + n])
        off += 4 + n
    assert off == len(blob)
    return b"".join(records[1:-1])


def test_move_whole_account(st, tmp_path):
    """A mailbox moves to the other site's backend with one pipe, export
    --account into import --account, as docs/OPERATIONS.md says: every
    folder (a parent kept only for its child too, and without a standard
    folder the account had deleted) with its special-use, UIDVALIDITY,
    UIDNEXT, HIGHESTMODSEQ, keyword table (more keywords than a
    Maildir's 26 letters) and expunge records (a QRESYNC client is told
    exactly what it was told before), every message with its UID, flags, keywords,
    MODSEQ, internal date, save date and octets, the subscriptions (one to a
    folder that does not exist, one standard folder unsubscribed), the own
    quota, the last login and the POP3 UIDLs: what a client sees is the same, and an
    export of the new copy is the same stream.  A filled account, a stream
    cut short, a damaged one and something else are refused, each with a
    message; a file that exists is not overwritten."""
    user, pw, mbox = new_user(st, "whole")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    c = st.imap(user, pw)
    for cmd in (lambda: c.create('"Projects/2024"'),
                lambda: c.create('"Old/Child"'),
                lambda: c.delete('"Old"'),
                lambda: c.delete('"Archive"'),
                lambda: c.unsubscribe('"Junk"'),
                lambda: c.subscribe('"Shared/Elsewhere"')):
        typ, data = cmd()
        assert typ == "OK", data
    keywords = ["kw%02d" % i for i in range(30)]
    msgs = [("INBOX", "(\\Seen \\Flagged %s)" % " ".join(keywords[:15]),
             '"03-Jan-2024 10:00:00 +0100"'),
            ("INBOX", "(%s)" % " ".join(keywords[15:]),
             '"04-Jan-2024 11:00:00 +0000"'),
            ("INBOX", "()", '"05-Jan-2024 12:30:00 -0500"'),
            ("INBOX", "(\\Answered \\Draft)", '"06-Jan-2024 08:00:00 +0000"'),
            ("Sent", "(\\Seen)", '"07-Jan-2024 08:00:00 +0000"'),
            ("Projects/2024", "(\\Deleted $Important)",
             '"08-Jan-2024 09:15:00 +0000"'),
            ("Old/Child", "()", '"09-Jan-2024 09:15:00 +0000"')]
    for i, (folder, flags, date) in enumerate(msgs):
        typ, data = c.append('"%s"' % folder, flags, date,
                             b"Message-ID: <w%d@whole>\r\nSubject: whole %d"
                             b"\r\n\r\nbody %d\r\n" % (i, i, i))
        assert typ == "OK", data
    # modseqs out of UID order, and an expunged message
    c.select("INBOX")
    assert c.uid("STORE", "2", "+FLAGS", "(\\Seen)")[0] == "OK"
    assert c.uid("STORE", "1", "-FLAGS", "(kw03)")[0] == "OK"
    assert c.uid("STORE", "3", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    assert c.uid("STORE", "4", "+FLAGS", "(\\Flagged)")[0] == "OK"
    c.logout()
    # a POP3 download (its retrieval time goes with the message)
    pop = st.pop3(user, pw)
    assert pop.retr(1)[0].startswith(b"+OK")
    pop.quit()
    p = admin(st, BE, "quota", mbox, "123456789", "4321")
    assert p.returncode == 0, p.stderr
    before = account_view(st, user, pw)
    assert "Old/Child" in before and "Old" not in before
    assert "Archive" not in before and len(before["INBOX"]["messages"]) >= 3
    assert b"Shared/Elsewhere" in b"".join(before["lsub"])
    assert b"kw29" in b"".join(before["INBOX"]["flags"])
    # exact answers: since the modseq of the expunge, nothing vanished
    assert before["qresync"][-2][0] is None
    assert before["qresync"][0][0] == [b"(EARLIER) 3"]

    last_login = re.search(r"\nlast-login (.+)\n",
                           admin(st, BE, "show", mbox).stdout).group(1)
    assert last_login.endswith(" UTC"), last_login

    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st)]
    assert admin(st, FE, "disable", user, *creds, "--state",
                 "moving").returncode == 0
    assert admin(st, BE, "kick", mbox).returncode == 0
    NEW = "s2b1/backend.ini"
    exp_err, imp = pipe_account(st, mbox, BE, NEW)
    assert re.fullmatch(r"exported 6 messages in 9 folders of %s to the "
                        r"standard output\n" % re.escape(mbox), exp_err), \
        exp_err
    assert imp.returncode == 0, imp.stderr
    assert imp.stdout == "imported 6 messages in 9 folders\n"
    assert "removed mailbox Archive, which %s lacks" % mbox in imp.stderr
    # the last login goes with it (portico-admin accounts --inactive)
    assert "\nlast-login %s\n" % last_login in \
        admin(st, NEW, "show", mbox).stdout
    ldap_modify(st, dn, "replace: porticoMailboxServer",
                "porticoMailboxServer: s2b1")
    assert admin(st, FE, "enable", user, *creds).returncode == 0
    after = account_view(st, user, pw, site=2)
    assert after == before
    p = admin(st, NEW, "check", mbox)
    assert p.returncode == 0, p.stdout + p.stderr
    # the copy's own export is the same stream
    first, again = tmp_path / "old.account", tmp_path / "new.account"
    for ini, path in ((BE, first), (NEW, again)):
        p = admin(st, ini, "export", mbox, "--account", path)
        assert p.returncode == 0, p.stderr
    blob = first.read_bytes()
    assert account_stream_body(blob) == account_stream_body(
        again.read_bytes())
    assert admin(st, BE, "remove", mbox, "--yes").returncode == 0

    # a filled account is refused, and left as it was
    p = admin(st, NEW, "import", mbox, "--account", first)
    assert p.returncode == 1
    assert "%s has had mail (INBOX): --account fills an account that " \
        "never had any" % mbox in p.stderr
    assert account_view(st, user, pw, site=2) == before
    # cut short: what was stored goes again, the account not in the
    # store as before, and the next import needs nothing first
    other = "cut-%d" % os.getpid()
    cut = tmp_path / "cut.account"
    cut.write_bytes(blob[:len(blob) * 2 // 3])
    p = admin(st, NEW, "import", other, "--account", cut)
    assert p.returncode == 1, p.stdout
    assert re.search(r"cut short", p.stderr), p.stderr
    assert_taken_back(p.stderr, other, "not in this store")
    assert "no such mailbox id" in admin(st, NEW, "show", other).stderr
    p = admin(st, NEW, "import", other, "--account", first)
    assert p.returncode == 0, p.stderr
    assert "(exported as %s)" % mbox in p.stderr
    assert admin(st, NEW, "remove", other, "--yes").returncode == 0
    # one byte of a message changed: the digest tells
    at = blob.index(b"body 4\r\n")
    bad = tmp_path / "bad.account"
    bad.write_bytes(blob[:at] + b"B" + blob[at + 1:])
    p = admin(st, NEW, "import", other, "--account", bad)
    assert p.returncode == 1
    assert "damaged: its end record does not match what came before it" \
        in p.stderr, p.stderr
    assert_taken_back(p.stderr, other, "not in this store")
    assert "no such mailbox id" in admin(st, NEW, "show", other).stderr
    # not a stream at all
    mb = tmp_path / "mail.mbox"
    mb.write_bytes(b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nx\n")
    p = admin(st, NEW, "import", other, "--account", mb)
    assert p.returncode == 1
    assert "is not an account stream (export --account writes one)" \
        in p.stderr
    # export does not overwrite, nor export what is not there
    p = admin(st, NEW, "export", mbox, "--account", first)
    assert p.returncode == 1 and "File exists" in p.stderr
    assert first.read_bytes() == blob
    p = admin(st, NEW, "export", "nobody-%d" % os.getpid(), "--account",
              tmp_path / "none.account")
    assert p.returncode == 1
    assert "no such mailbox id in this store" in p.stderr
    assert not (tmp_path / "none.account").exists()


def assert_taken_back(stderr, mbox, before):
    """A failed import --account said it took back what it had stored
    (at least one message), and what the account is again."""
    m = re.search(r"portico-admin: import: nothing of it kept: the (\d+) "
                  r"messages in (\d+) folders stored are removed again, "
                  r"and %s is as it was before \(%s\)\n"
                  % (re.escape(mbox), re.escape(before)), stderr)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, stderr
    assert "is incomplete" not in stderr


def account_stream(st, tmp_path, src):
    """Account SRC on s1b1, provisioned with three messages in INBOX and
    Zeta, the last folder of the stream, holding most of its bytes; its
    export --account: (the file, its bytes)."""
    assert admin(st, BE, "provision", src).returncode == 0
    for i in range(3):
        p = admin(st, BE, "deliver", src, stdin=b"Subject: in %d\r\n\r\n"
                  b"inbox %d\r\n" % (i, i), text=False)
        assert p.returncode == 0, p.stderr
    box = tmp_path / "zeta.mbox"
    box.write_bytes(b"".join(
        b"From z@example.test Mon Jan  1 00:00:00 2024\nSubject: z %d\n\n"
        % i + (b"%05d zeta line\n" % i) * 2000 for i in range(3)))
    assert admin(st, BE, "import", src, box, "--mailbox",
                 "Zeta").returncode == 0
    stream = tmp_path / "src.account"
    assert admin(st, BE, "export", src, "--account", stream).returncode == 0
    return stream, stream.read_bytes()


def signals_default(ignore=()):
    """For a child: SIGINT, SIGTERM and SIGHUP as a shell's command gets
    them (whatever the test runner inherited: nohup ignores SIGHUP), but
    those of IGNORE ignored."""
    def preexec():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN if sig in ignore
                          else signal.SIG_DFL)
    return preexec


@contextlib.contextmanager
def import_waiting(st, tmp_path, ini, mbox, blob, ignore=()):
    """An import --account into MBOX with INI, reading from a FIFO that
    has been given the first two thirds of BLOB: yields the process and
    the FIFO's writer once the INBOX's three messages are stored, while the
    import waits for the rest (the writer is closed on leaving).  The
    import starts with the signals of IGNORE ignored."""
    fifo = tmp_path / ("fifo-%s" % mbox)
    os.mkfifo(fifo)
    imp = subprocess.Popen(
        [str(BUILD / "portico-admin"), "-c", str(st.dir / ini), "import",
         mbox, "--account", str(fifo)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=signals_default(ignore))
    with open(fifo, "wb") as w:
        w.write(blob[:len(blob) * 2 // 3])
        w.flush()
        deadline = time.monotonic() + 30
        while not re.search(r"^INBOX +3 ", admin(st, ini, "list",
                                                 mbox).stdout, re.M):
            assert time.monotonic() < deadline, "the INBOX never came"
            time.sleep(0.05)
        yield imp, w


def test_import_cut_short_takes_back_what_it_stored(st, tmp_path):
    """import --account that fails into an account provisioned with no
    mail leaves it provisioned and empty, as before, so that the next try
    needs nothing first; an account that had folders of its own, or that
    mail reached during the import, is left as it is and said to be
    incomplete: nothing but what the import stored is ever removed."""
    src = "src-%d" % os.getpid()
    stream, blob = account_stream(st, tmp_path, src)
    cut = tmp_path / "cut.account"
    cut.write_bytes(blob[:len(blob) * 2 // 3])
    assert blob.index(b"inbox 2") < len(blob) * 2 // 3 < \
        blob.index(b"Subject: z 2")
    NEW = "s2b1/backend.ini"

    # provisioned, no mail: provisioned, no mail again
    dst = "dst-%d" % os.getpid()
    assert admin(st, NEW, "provision", dst).returncode == 0
    listing = admin(st, NEW, "list", dst).stdout
    p = admin(st, NEW, "import", dst, "--account", cut)
    assert p.returncode == 1 and "cut short" in p.stderr, p.stderr
    assert_taken_back(p.stderr, dst, "provisioned, no mail")
    assert admin(st, NEW, "list", dst).stdout == listing
    p = admin(st, NEW, "import", dst, "--account", stream)
    assert p.returncode == 0, p.stderr
    assert admin(st, NEW, "list", dst).stdout == \
        admin(st, BE, "list", src).stdout

    # a folder of its own before: kept, and the account with it
    own = "own-%d" % os.getpid()
    assert admin(st, NEW, "provision", own).returncode == 0
    empty = tmp_path / "empty"
    for d in ("cur", "new", "tmp"):
        (empty / d).mkdir(parents=True)
    assert admin(st, NEW, "import", own, empty, "--mailbox",
                 "Mine").returncode == 0
    p = admin(st, NEW, "import", own, "--account", cut)
    assert p.returncode == 1
    assert "what was stored could not be taken back: it had folders " \
        "other than the standard ones before" in p.stderr, p.stderr
    assert "%s is incomplete; remove it" % own in p.stderr
    kept = admin(st, NEW, "list", own).stdout
    assert re.search(r"^Mine +0 ", kept, re.M), kept
    assert re.search(r"^INBOX +3 ", kept, re.M), kept

    # mail delivered while the import waits for the rest of its stream:
    # the account keeps it, and what the import stored
    late = "late-%d" % os.getpid()
    with import_waiting(st, tmp_path, NEW, late, blob) as (imp, _):
        p = admin(st, NEW, "deliver", late, stdin=b"Subject: late\r\n\r\n"
                  b"late\r\n", text=False)
        assert p.returncode == 0, p.stderr
    out, err = imp.communicate(timeout=CMD_TIMEOUT)
    assert imp.returncode == 1 and "cut short" in err, err
    assert "what was stored could not be taken back: it holds 4 messages, " \
        "the import stored 3: others came meanwhile" in err, err
    assert "%s is incomplete; remove it" % late in err
    kept = admin(st, NEW, "list", late).stdout
    assert re.search(r"^INBOX +4 ", kept, re.M), kept
    for mb in (dst, own, late):
        assert admin(st, NEW, "remove", mb, "--yes").returncode == 0
    assert admin(st, BE, "remove", src, "--yes").returncode == 0

def test_import_stopped_by_a_signal_takes_back_what_it_stored(st, tmp_path):
    """An import --account stopped by SIGTERM (a shutdown) or SIGHUP (the
    ssh session of a move gone) while it waits for the rest of its stream
    takes back what it stored, then dies of the signal: the account is
    absent, or provisioned and empty, as before, and the next import needs
    nothing first."""
    src = "sigsrc-%d" % os.getpid()
    stream, blob = account_stream(st, tmp_path, src)
    NEW = "s2b1/backend.ini"
    for sig, provisioned in ((signal.SIGTERM, False), (signal.SIGHUP, True)):
        dst = "sig%d-%d" % (sig, os.getpid())
        if provisioned:
            assert admin(st, NEW, "provision", dst).returncode == 0
        listing = admin(st, NEW, "list", dst)
        assert (listing.returncode == 0) == provisioned, listing.stderr
        with import_waiting(st, tmp_path, NEW, dst, blob) as (imp, _):
            imp.send_signal(sig)
            out, err = imp.communicate(timeout=CMD_TIMEOUT)
        assert imp.returncode == -sig, (imp.returncode, err)
        assert re.search(r"portico-admin: import: %s: stopped by %s at "
                         r"byte \d+\n" % (re.escape(str(imp.args[-1])),
                                           sig.name),
                         err), err
        assert_taken_back(err, dst, "provisioned, no mail" if provisioned
                          else "not in this store")
        again = admin(st, NEW, "list", dst)
        assert (again.returncode, again.stdout) == \
            (listing.returncode, listing.stdout), again
        p = admin(st, NEW, "import", dst, "--account", stream)
        assert p.returncode == 0, p.stderr
        assert admin(st, NEW, "list", dst).stdout == \
            admin(st, BE, "list", src).stdout
        assert admin(st, NEW, "remove", dst, "--yes").returncode == 0
    # started under nohup: SIGHUP stays ignored, and the import goes on
    dst = "sighup-ignored-%d" % os.getpid()
    with import_waiting(st, tmp_path, NEW, dst, blob,
                        ignore=(signal.SIGHUP,)) as (imp, w):
        imp.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        w.write(blob[len(blob) * 2 // 3:])
    out, err = imp.communicate(timeout=CMD_TIMEOUT)
    assert imp.returncode == 0 and "stopped by" not in err, err
    assert admin(st, NEW, "list", dst).stdout == \
        admin(st, BE, "list", src).stdout
    assert admin(st, NEW, "remove", dst, "--yes").returncode == 0
    assert admin(st, BE, "remove", src, "--yes").returncode == 0


def test_restore_from_a_hot_copy(st, tmp_path):
    """The restore docs/OPERATIONS.md describes: a hot copy of the running
    backend's store (mdb_copy -c), the user then loses mail, and the
    account as the copy has it goes back below a folder of its own
    (export --account from the copy, import --account --under into the
    live store): every folder, message, flag, keyword and internal date,
    with new UIDs, subscribed, while what the account has now stays as it
    is."""
    user, pw, mbox = new_user(st, "restore")
    c = st.imap(user, pw)
    assert c.create("Projects")[0] == "OK"
    for folder, flags, n in (("INBOX", "(\\Flagged $Important)", 0),
                             ("INBOX", "(\\Seen)", 1),
                             ("Projects", "(\\Answered)", 2)):
        typ, data = c.append(folder, flags, '"0%d-Feb-2024 10:00:00 +0000"'
                             % (n + 1), b"Message-ID: <r%d@restore>\r\n"
                             b"Subject: %d\r\n\r\nbody\r\n" % (n, n))
        assert typ == "OK", data
    c.logout()
    before = {f: folder_state(st, user, f) for f in ("INBOX", "Projects")}
    store = re.search(r"^store_dir = (.*)$", (st.dir / BE).read_text(),
                      re.M).group(1)
    copy = tmp_path / "copy"
    copy.mkdir()
    p = subprocess.run(["mdb_copy", "-c", store, str(copy)],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stderr
    # the mail is lost
    c = st.imap(user, pw)
    c.select("INBOX")
    c.store("1:*", "+FLAGS", "(\\Deleted)")
    assert c.expunge()[0] == "OK"
    assert c.delete("Projects")[0] == "OK"
    assert c.append("INBOX", None, None,
                    b"Message-ID: <new@restore>\r\n\r\nnew\r\n")[0] == "OK"
    c.logout()
    ini = tmp_path / "copy.ini"
    ini.write_text(re.sub(r"^store_dir = .*$", "store_dir = %s" % copy,
                          (st.dir / BE).read_text(), flags=re.M))
    under = "Restored/2026-12-07"
    exp = subprocess.Popen([str(BUILD / "portico-admin"), "-c", str(ini),
                            "export", mbox, "--account", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imp = subprocess.run([str(BUILD / "portico-admin"), "-c",
                          str(st.dir / BE), "import", mbox, "--account", "-",
                          "--under", under], stdin=exp.stdout,
                         capture_output=True, text=True, timeout=CMD_TIMEOUT)
    exp.stdout.close()
    assert exp.wait(timeout=CMD_TIMEOUT) == 0, exp.stderr.read()
    assert imp.returncode == 0, imp.stderr
    assert imp.stdout == "imported 3 messages in 7 folders below %s\n" % under
    # what the account has now is as it was; the restored folders hold
    # what it had, with new UIDs
    now = folder_state(st, user, "INBOX")
    assert list(k for k in now if k) == [b"<new@restore>"]
    for f in ("INBOX", "Projects"):
        got = folder_state(st, user, "%s/%s" % (under, f))
        got.pop(None)
        want = {k: v[:3] for k, v in before[f].items() if k}
        assert {k: v[:3] for k, v in got.items()} == want
    c = st.imap(user, pw)
    typ, data = c.lsub()
    assert b'"%s/Projects"' % under.encode() in b"\n".join(data) or \
        b" %s/Projects" % under.encode() in b"\n".join(data), data
    c.logout()
    p = admin(st, BE, "check", mbox)
    assert p.returncode == 0, p.stdout + p.stderr
    # INBOX itself is no place to restore into; an unknown account
    p = admin(st, BE, "import", mbox, "--account", tmp_path / "x",
              "--under", "INBOX")
    assert p.returncode == 1 and "not a name for a new folder" in p.stderr
    p = subprocess.run([str(BUILD / "portico-admin"), "-c", str(ini),
                        "export", mbox, "--account", str(tmp_path / "a")],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stderr
    p = admin(st, BE, "import", "nobody-%d" % os.getpid(), "--account",
              tmp_path / "a", "--under", "Restored")
    assert p.returncode == 1 and "no such mailbox id in this store" in \
        p.stderr


def test_whole_account_across_batches(st, tmp_path):
    """An account whose folder is more than one import batch (1000
    messages), with an expunged message and changed flags in the first
    batch's range: imported under another mailbox id, it exports as the
    same stream, and both copies pass check."""
    user, pw, mbox = new_user(st, "batchacct")
    mb = tmp_path / "big.mbox"
    mb.write_bytes(b"".join(
        b"From a@b Mon Jan  1 00:00:%02d 2024\nMessage-ID: <%d@big>\n"
        b"Subject: %d\n\n%d\n\n" % (i % 60, i, i, i)
        for i in range(1001)))
    p = admin(st, BE, "import", mbox, mb, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 1001\n", p.stderr
    c = st.imap(user, pw)
    c.select("Archive")
    assert c.uid("STORE", "500", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    assert c.uid("STORE", "1,999:1001", "+FLAGS", "(\\Seen big)")[0] == "OK"
    c.logout()
    first, again = tmp_path / "first.account", tmp_path / "again.account"
    p = admin(st, BE, "export", mbox, "--account", first)
    assert p.returncode == 0, p.stderr
    assert "exported 1000 messages in 6 folders" in p.stderr, p.stderr
    copy = "batchcopy-%d" % os.getpid()
    p = admin(st, BE, "import", copy, "--account", first)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "imported 1000 messages in 6 folders\n"
    p = admin(st, BE, "export", copy, "--account", again)
    assert p.returncode == 0, p.stderr
    assert account_stream_body(first.read_bytes()) == \
        account_stream_body(again.read_bytes())
    for mid in (mbox, copy):
        p = admin(st, BE, "check", mid)
        assert p.returncode == 0, p.stdout + p.stderr
    assert admin(st, BE, "remove", copy, "--yes").returncode == 0


def test_kept_uids_across_batches(st, tmp_path):
    """A folder of exactly one import batch (1000 messages): the UIDs go
    in with the full batch, UIDNEXT with the empty last one."""
    a_user, _, a_id = new_user(st, "batcha")
    b_user, _, b_id = new_user(st, "batchb")
    md = tmp_path / "src"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(1000):
        f = md / "cur" / ("%d.M%d.host:2,S" % (1700000000 + i, i))
        f.write_bytes(b"Subject: %d\n\n%d\n" % (i, i))
        os.utime(f, (1700000000 + i, 1700000000 + i))
    p = admin(st, BE, "import", a_id, md, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 1000\n", p.stderr
    out = tmp_path / "out"
    p = admin(st, BE, "export", a_id, "--mailbox", "Archive", "--maildir",
              out)
    assert p.returncode == 0, p.stderr
    p = admin(st, BE, "import", b_id, out, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 1000\n", p.stderr
    assert "kept UIDVALIDITY" in p.stderr
    states = []
    for user in (a_user, b_user):
        c = st.imap(user)
        c.select("Archive", readonly=True)
        uidnext = c.untagged_responses["UIDNEXT"][-1]
        uidvalidity = c.untagged_responses["UIDVALIDITY"][-1]
        typ, data = c.uid("SEARCH", "ALL")
        c.logout()
        states.append((uidvalidity, uidnext, data[0]))
    assert states[0] == states[1]
    assert states[1][1] == b"1001"

    # a Maildir whose UIDs cannot be trusted gets new ones, said so
    c_user, _, c_id = new_user(st, "batchc")
    extra = out / "cur" / "1700009999.M9.host:2,S"
    extra.write_bytes(b"Subject: no uid\n\nx\n")
    p = admin(st, BE, "import", c_id, out, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 1001\n", p.stderr
    assert "Archive: new UIDs (not every message names its UID)" in p.stderr
    extra.unlink()
    (out / "portico-mailbox").write_text("uidvalidity x\nnonsense\n")
    d_user, _, d_id = new_user(st, "batchd")
    p = admin(st, BE, "import", d_id, out, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 1000\n", p.stderr
    assert "kept UIDVALIDITY" not in p.stderr
    c = st.imap(d_user)
    c.select("Archive", readonly=True)
    assert c.untagged_responses["UIDVALIDITY"][-1] != states[0][0]
    c.logout()


def idle_until(c, want):
    """Lines of an IDLE response up to the one equal to want."""
    c.sock.settimeout(10)
    lines = []
    while not lines or lines[-1] != want:
        line = c.readline()
        assert line, lines
        lines.append(line)
    return lines


def test_import_and_deliver_wake_idle(st, tmp_path):
    """portico-admin writes to the store beside the running backend; a
    session in IDLE hears of it (backend.external_change_interval, 1 s)
    without a command of its own."""
    user, _, mid = new_user(st, "wake")
    c = st.imap(user)
    try:
        typ, data = c.select("INBOX")
        assert (typ, data) == ("OK", [b"0"])
        c.send(b"w1 IDLE\r\n")
        assert c.readline().startswith(b"+ ")
        f = tmp_path / "two.mbox"
        f.write_bytes(MBOX)
        p = admin(st, BE, "import", mid, f)
        assert p.returncode == 0 and p.stdout == "imported 2\n", p.stderr
        idle_until(c, b"* 2 EXISTS\r\n")
        p = admin(st, BE, "deliver", mid, text=False,
                  stdin=b"Subject: delivered\r\n\r\nby the admin tool\r\n")
        assert p.returncode == 0, p.stderr
        idle_until(c, b"* 3 EXISTS\r\n")
        c.send(b"DONE\r\n")
        assert idle_until(c, b"w1 OK IDLE terminated\r\n")
    finally:
        c.logout()
    log = (st.dir / "s1b1" / "s1b1.log").read_text()
    assert "store changed by another process" in log


def test_deliver_from_is_a_reverse_path(st):
    """deliver --from takes what MAIL FROM takes (RFC 5321 reverse-path,
    angle brackets optional, <> for the null sender) and refuses anything
    else before the message is read: exit 1, nothing delivered."""
    user, _, mid = new_user(st, "from")
    body = b"Subject: sender\r\n\r\nfrom the admin tool\r\n"
    good = (("a.b+c@example.org", b"<a.b+c@example.org>"),
            ("<a.b@Example.ORG>", b"<a.b@Example.ORG>"),
            ('"odd user"@example.org', b'<"odd user"@example.org>'),
            ("<@relay.example:c@example.org>", b"<c@example.org>"),
            ("d@[192.0.2.1]", b"<d@[192.0.2.1]>"),
            ("gr\u00fc\u00df@example.org",
             "<gr\u00fc\u00df@example.org>".encode()),
            ("<>", b"<>"),
            ("", b"<>"))
    for arg, _ in good:
        p = admin(st, BE, "deliver", "--from", arg, mid, stdin=body,
                  text=False)
        assert p.returncode == 0, (arg, p.stderr)
    for arg in ("not an address", "a@", "@example.org", "a@b c", "<a@b",
                "a@b>", "<a@b> SIZE=10", "a..b@example.org",
                "a@-b.example", "a@b\r\nX-Injected: 1", "<<>>",
                os.fsdecode(b"a@example.org\xff"),  # not UTF-8
                "x" * 250 + "@example.org", "\\x@example.org"):
        p = admin(st, BE, "deliver", "--from", arg, mid, stdin=body,
                  text=False)
        assert p.returncode == 1, (arg, p.stdout, p.stderr)
        assert b"--from: not a reverse-path" in p.stderr, (arg, p.stderr)
        assert p.stdout == b"", arg
    # --from needs a value and a mailbox after it
    assert admin(st, BE, "deliver", "--from", "a@example.org",
                 stdin=body, text=False).returncode == 2
    c = st.imap(user)
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1:*",
                            "(BODY.PEEK[HEADER.FIELDS (Return-Path)])")
        assert typ == "OK"
        got = [d[1] for d in data if isinstance(d, tuple)]
    finally:
        c.logout()
    assert got == [b"Return-Path: " + want + b"\r\n\r\n"
                   for _, want in good]


def test_maildir_import_with_flags(st, tmp_path):
    user, _, mid = new_user(st, "md")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    files = [  # (path, body, mtime): imported oldest first
        (md / "cur" / "1700000300.M3.host:2,RSa", b"Subject: replied\n\n3\n",
         1700000300),
        (md / "cur" / "1700000100.M1.host:2,FSbc",
         b"Subject: flagged\n\n1\n", 1700000100),
        (md / "cur" / "1700000200.M2.host:2,DTz", b"Subject: draft\n\n2\n",
         1700000200),
        (md / "new" / "1700000400.M4.host", b"Subject: new\n\n4\n",
         1700000400),
        (md / "tmp" / "1700000500.M5.host", b"Subject: tmp\n\n5\n",
         1700000500),
    ]
    for path, body, mtime in files:
        path.write_bytes(body)
        os.utime(path, (mtime, mtime))
    # Dovecot's keyword letters: b names no IMAP keyword, z nothing
    (md / "dovecot-keywords").write_text("0 $Junk\n1 bad keyword\n"
                                         "2 project-x\n")
    p = admin(st, BE, "import", mid, md, "--mailbox", "Archive")
    assert p.returncode == 0 and p.stdout == "imported 4\n", p.stderr
    got = fetch_all(st, user, "Archive")
    assert got == [
        ({"\\Flagged", "\\Seen", "project-x"}, "14-Nov-2023 22:15:00 +0000",
         b"Subject: flagged\r\n\r\n1\r\n"),
        ({"\\Draft", "\\Deleted"}, "14-Nov-2023 22:16:40 +0000",
         b"Subject: draft\r\n\r\n2\r\n"),
        ({"\\Answered", "\\Seen", "$Junk"}, "14-Nov-2023 22:18:20 +0000",
         b"Subject: replied\r\n\r\n3\r\n"),
        (set(), "14-Nov-2023 22:20:00 +0000", b"Subject: new\r\n\r\n4\r\n"),
    ]
    p = admin(st, BE, "show", mid)
    assert p.returncode == 0, p.stderr
    rows = {l.split()[0]: l.split()[1:] for l in p.stdout.splitlines()}
    assert rows["Archive"][:3] == ["4", "2", str(sum(len(m[2])
                                                    for m in got))]
    assert rows["INBOX"][:3] == ["0", "0", "0"]
    assert rows["total"] == ["4", "2", rows["Archive"][2]]
    assert "quota-messages  4 of %d (0.4%%)" % QUOTA_MESSAGES in p.stdout
    assert "quota-storage   %s bytes, no limit" % rows["Archive"][2] in \
        p.stdout
    # a directory that is no Maildir
    empty = tmp_path / "empty"
    empty.mkdir()
    p = admin(st, BE, "import", mid, empty)
    assert p.returncode == 1 and "not a Maildir" in p.stderr


# ---- quota -----------------------------------------------------------------

def quota_root(c):
    """GETQUOTAROOT INBOX's QUOTA line."""
    typ, data = c._simple_command("GETQUOTAROOT", "INBOX")
    assert typ == "OK", data
    return c.untagged_responses.pop("QUOTA")[-1].decode()


def test_quota_of_one_user(st):
    """portico-admin quota gives one user limits of its own over the
    backend's; every check (APPEND, delivery) and GETQUOTA uses them,
    open sessions included, until --default gives the backend's back."""
    user, _, mid = new_user(st, "quota")
    other, _, other_id = new_user(st, "quota-other")
    p = admin(st, BE, "quota", mid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "quota-storage   0 bytes, no limit",
        "quota-messages  0 of %d (0.0%%)" % QUOTA_MESSAGES,
        "quota-limits    the backend's (backend.quota_storage, "
        "backend.quota_messages)"]
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (MESSAGE 0 %d)' % \
            QUOTA_MESSAGES
        p = admin(st, BE, "quota", mid, "1K", "2")
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines()[1:] == [
            "quota-messages  0 of 2 (0.0%)",
            "quota-limits    the user's own (portico-admin quota)"]
        # the open session sees the new limits
        assert quota_root(c) == '"User quota" (STORAGE 0 1 MESSAGE 0 2)'
        msg = b"Subject: q\r\n\r\nsmall\r\n"
        assert c.append("INBOX", None, None, msg)[0] == "OK"
        assert c.append("INBOX", None, None, msg)[0] == "OK"
        typ, data = c.append("INBOX", None, None, msg)
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        # a delivery too; the other user keeps the backend's limits
        p = admin(st, BE, "deliver", mid, other_id, stdin=msg.decode())
        assert p.returncode == 75, p.stdout + p.stderr
        assert p.stdout.splitlines() == [
            "%s: 452 4.2.2 Mailbox is full (quota exceeded)" % mid,
            "%s: 250 2.0.0 Saved" % other_id]
        # storage alone, no message limit
        assert admin(st, BE, "quota", mid, "1K", "0").returncode == 0
        assert quota_root(c) == '"User quota" (STORAGE 1 1)'
        big = b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n"
        typ, data = c.append("INBOX", None, None, big)
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        assert c.append("INBOX", None, None, msg)[0] == "OK"
        # back to the backend's
        p = admin(st, BE, "quota", mid, "--default")
        assert p.returncode == 0, p.stderr
        assert "quota-limits    the backend's" in p.stdout
        assert quota_root(c) == '"User quota" (MESSAGE 3 %d)' % \
            QUOTA_MESSAGES
        assert c.append("INBOX", None, None, big)[0] == "OK"
    finally:
        c.logout()
    p = admin(st, BE, "show", mid)
    assert "quota-messages  4 of %d" % QUOTA_MESSAGES in p.stdout
    # wrong arguments change nothing
    assert admin(st, BE, "quota", mid, "1K", "2").returncode == 0
    for args, why in ((["1X", "2"], "storage '1X'"),
                      (["1K", "-2"], "messages '-2'"),
                      (["1K", "two"], "messages 'two'")):
        p = admin(st, BE, "quota", mid, *args)
        assert p.returncode == 1 and why in p.stderr, (args, p.stderr)
    assert admin(st, BE, "quota", mid, "1K").returncode == 2
    p = admin(st, BE, "quota", "0000000000000000", "1K", "2")
    assert p.returncode == 1 and "no such mailbox id" in p.stderr
    p = admin(st, BE, "quota", mid)
    assert "quota-messages  4 of 2 (200.0%)" in p.stdout
    # removing the user removes its limits with it (the "q" | user_num
    # record of the store's meta database; no other test sets one)
    assert len(quota_records(st)) == 1
    assert admin(st, BE, "remove", mid, "--yes").returncode == 0
    assert quota_records(st) == []
    assert admin(st, BE, "check", "--all").returncode == 0


def test_quota_storage_or_messages_alone(st):
    """"default" for one resource keeps the backend's for it."""
    user, _, mid = new_user(st, "quota-half")
    p = admin(st, BE, "quota", mid, "2G", "default")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "quota-storage   0 bytes of 2147483648 bytes (0.0%)",
        "quota-messages  0 of %d (0.0%%)" % QUOTA_MESSAGES,
        "quota-limits    the user's own (portico-admin quota); "
        "messages: the backend's"]
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (STORAGE 0 2097152 ' \
            'MESSAGE 0 %d)' % QUOTA_MESSAGES
    finally:
        c.logout()
    p = admin(st, BE, "quota", mid, "default", "default")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1].startswith(
        "quota-limits    the backend's")
    assert quota_records(st) == []


def pipe_account(st, mbox, src, dst):
    """export MBOX --account - on SRC piped into import on DST (ini paths
    under the stack): the export's stderr (it must exit 0) and the
    import's CompletedProcess."""
    exp = subprocess.Popen([str(BUILD / "portico-admin"), "-c",
                            str(st.dir / src), "export", mbox, "--account",
                            "-"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    imp = subprocess.run([str(BUILD / "portico-admin"), "-c",
                          str(st.dir / dst), "import", mbox, "--account",
                          "-"], stdin=exp.stdout, capture_output=True,
                         text=True, timeout=CMD_TIMEOUT)
    exp.stdout.close()
    exp_err = exp.stderr.read().decode()
    assert exp.wait(timeout=CMD_TIMEOUT) == 0, exp_err
    return exp_err, imp


def ldap_modify(st, dn, *changes):
    """ldapmodify as the directory's admin: changes are LDIF lines after
    "changetype: modify", groups separated by "-"."""
    ldif = "dn: %s\nchangetype: modify\n%s\n" % (dn, "\n".join(changes))
    subprocess.run(
        ["ldapmodify", "-x", "-H", st.LDAP_URI, "-D", st.LDAP_ADMIN_DN,
         "-w", st.LDAP_ADMIN_PASSWORD],
        input=ldif.encode(), check=True, capture_output=True,
        timeout=CMD_TIMEOUT)


def done_and_flags(idle):
    """Ends the IDLE of a moving_account() client; the untagged lines of
    its FETCH 1:* (UID FLAGS)."""
    idle.send(b"DONE\r\n")
    assert idle.f.readline() == b"i OK IDLE terminated\r\n"
    idle.send(b"f FETCH 1:* (UID FLAGS)\r\n")
    lines = []
    while not lines or not lines[-1].startswith(b"f "):
        lines.append(idle.f.readline())
    return lines[:-1]


def moving_account(st, prefix, first=b""):
    """A fresh account with three messages (the second \\Seen) and a
    client in IDLE on its INBOX after FIRST: (login, password, mailbox
    id, the client)."""
    user, pw, mbox = new_user(st, prefix)
    c = st.imap(user, pw)
    for i in range(3):
        assert c.append("INBOX", "(\\Seen)" if i == 1 else None, None,
                        b"Subject: before %d\r\n\r\nx\r\n" % i)[0] == "OK"
    c.logout()
    idle = Raw(st, "imap", user, pw)
    idle.send(first + b"s SELECT INBOX\r\n")
    assert idle.until(b"s ").startswith(b"s OK")
    idle.send(b"i IDLE\r\n")
    assert idle.f.readline() == b"+ idling\r\n"
    return user, pw, mbox, idle


def test_move_keeps_the_sessions(st):
    """A mailbox moves to the other site's backend with its IMAP clients
    in IDLE and between commands still connected: `kick --park` parks
    them at their frontends (a session in the middle of a command ends,
    as with kick), the frontends read the entry until the move is done
    and watch the mailbox on the new backend, by name and UIDVALIDITY; a
    message delivered there reaches the client in IDLE that had selected
    the INBOX, the one between commands sees it at its next command, and
    all three go on there (docs/OPERATIONS.md, "Moving a mailbox to
    another backend")."""
    user, pw, mbox, idle = moving_account(st, "movepark",
                                          b"e ENABLE CONDSTORE\r\n")
    other = Raw(st, "imap", user, pw, site=2)  # IDLE, nothing selected
    other.send(b"j IDLE\r\n")
    assert other.f.readline() == b"+ idling\r\n"
    quiet = Raw(st, "imap", user, pw, site=2)  # between commands
    quiet.send(b"q SELECT INBOX\r\n")
    assert quiet.until(b"q ").startswith(b"q OK")
    busy = Raw(st, "imap", user, pw)  # in the middle of an APPEND
    busy.send(b"a APPEND INBOX {20}\r\n")
    assert busy.f.readline() == b"+ OK\r\n"
    busy.send(b"Subject: ")
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st)]
    assert admin(st, FE, "disable", user, *creds, "--state",
                 "moving").returncode == 0
    p = admin(st, BE, "kick", mbox, "--park")
    assert p.returncode == 0, p.stderr
    assert "4 sessions ended or parked" in p.stdout, p.stdout
    assert busy.f.readline() == \
        b"* BYE Session ended by an administrator\r\n"
    NEW = "s2b1/backend.ini"
    _, imp = pipe_account(st, mbox, BE, NEW)
    assert imp.returncode == 0, imp.stderr
    # the entry names the new backend and is active again in one modify;
    # a backend the directory does not know is refused, the entry as it was
    p = admin(st, FE, "enable", user, *creds, "--server", "s9b9")
    assert p.returncode == 1 and "no backend s9b9 under " in p.stderr, \
        p.stderr
    p = admin(st, FE, "enable", user, *creds, "--server", "s2b1;x")
    assert p.returncode == 2, p.stderr
    p = admin(st, FE, "user", user)
    assert "moving" in p.stdout and "s1b1" in p.stdout, p.stdout
    p = admin(st, FE, "enable", user, *creds, "--server", "s2b1")
    assert p.returncode == 0, p.stderr
    assert "%s: porticoMailboxServer s1b1 -> s2b1\n" % user in p.stdout, \
        p.stdout
    assert admin(st, BE, "remove", mbox, "--yes").returncode == 0
    # the three clients are watched on the new backend
    wait_for(lambda: sorted(
        r.split()[1] for r in admin(st, NEW, "sessions", mbox)
        .stdout.splitlines()[1:-1]) == ["imap-parked"] * 3,
        timeout=20, what="the sessions to be watched on s2b1")
    # the old backend, restarted, names the kick it remembers to every
    # frontend link that comes up: it is not the concern of sessions
    # that moved away
    st.stop("s1b1")
    st.start("s1b1")
    bystander, bpw, _ = new_user(st, "moveby")
    for site in (1, 2):
        st.wait_for_login(bystander, bpw, timeout=30, site=site)
    p = admin(st, NEW, "deliver", mbox,
              stdin="Subject: after the move\r\n\r\nnew\r\n")
    assert p.returncode == 0, p.stdout + p.stderr
    idle.s.settimeout(20)
    assert idle.f.readline() == b"* 4 EXISTS\r\n"
    lines = done_and_flags(idle)
    assert [re.sub(rb" MODSEQ \(\d+\)", b"", x) for x in lines] == [
        b"* 1 FETCH (UID 1 FLAGS ())\r\n",
        b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
        b"* 3 FETCH (UID 3 FLAGS ())\r\n",
        b"* 4 FETCH (UID 4 FLAGS ())\r\n"], lines
    other.send(b"DONE\r\n")
    assert other.f.readline() == b"j OK IDLE terminated\r\n"
    other.send(b"s EXAMINE INBOX\r\n")
    assert b"* 4 EXISTS\r\n" in [other.f.readline() for _ in range(3)]
    # the session between commands heard nothing meanwhile (no IDLE
    # keepalive either): its next command shows the new message
    quiet.s.settimeout(20)
    quiet.send(b"n NOOP\r\n")
    assert quiet.f.readline() == b"* 4 EXISTS\r\n"
    assert quiet.f.readline().startswith(b"n OK")
    quiet.send(b"f UID FETCH 4 (FLAGS)\r\n")
    assert quiet.f.readline() == b"* 4 FETCH (UID 4 FLAGS ())\r\n"
    assert quiet.f.readline().startswith(b"f OK")
    rows = admin(st, NEW, "sessions", mbox).stdout.splitlines()[1:-1]
    assert sorted(r.split()[1] for r in rows) == ["imap"] * 3, rows
    for r in (idle, other, quiet, busy):
        r.s.close()


def test_move_in_one_command(st):
    """portico-admin move does the steps of a move with the account's
    backend's configuration: moving, kick --park, the stream into the
    command given with --via, the new backend named and active in one
    modify, the copy here removed.  A copy that fails puts the entry back
    as it was (the parked client comes back to the old backend and goes
    on there); refusals leave everything as it was."""
    user, pw, mbox, idle = moving_account(st, "movecmd")
    idle.s.settimeout(20)
    NEW = "s2b1/backend.ini"
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st), "--directory", st.dir / FE]
    via = "%s -c %s" % (BUILD / "portico-admin", st.dir / NEW)

    def hears_a_delivery(ini, exists):
        """The parked client watches the mailbox on INI's backend and
        hears of a message delivered there."""
        wait_for(lambda: [r.split()[1] for r in admin(st, ini, "sessions",
                                                      mbox)
                          .stdout.splitlines()[1:-1]] == ["imap-parked"],
                 timeout=20, what="the parked client to watch " + ini)
        p = admin(st, ini, "deliver", mbox,
                  stdin="Subject: delivered\r\n\r\nx\r\n")
        assert p.returncode == 0, p.stderr
        assert idle.f.readline() == b"* %d EXISTS\r\n" % exists

    def entry():
        out = admin(st, FE, "user", user).stdout
        return (re.search(r"^backend +(\S+)", out, re.M).group(1),
                re.search(r"^state +(\S+)", out, re.M).group(1))

    # refusals: nothing changes
    p = admin(st, BE, "move", user, "--to", "s9b9", "--via", via, *creds)
    assert p.returncode == 1 and "no backend s9b9 under " in p.stderr, \
        p.stderr
    p = admin(st, BE, "move", user, "--to", "s1b1", "--via", via, *creds)
    assert p.returncode == 1 and "is on s1b1 already" in p.stderr, p.stderr
    p = admin(st, NEW, "move", user, "--to", "s2b1", "--via", via, *creds)
    assert p.returncode == 1 and \
        "is on backend s1b1, not on this one (s2b1)" in p.stderr, p.stderr
    p = admin(st, BE, "move", user, "--to", "s2b1;x", "--via", via, *creds)
    assert p.returncode == 2, p.stderr
    p = admin(st, BE, "move", user, "--to", "s2b1", *creds)
    assert p.returncode == 2 and "usage:" in p.stderr, p.stderr
    assert entry() == ("s1b1", "active")
    # a copy that fails (the stream cut short by its last 40 bytes: the
    # import on s2b1 takes back what it stored, so the next move needs
    # nothing first): the entry is put back, the client parked by the kick
    # comes back to s1b1 and hears of the next message there
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via",
              "sh -c 'head -c -40 | %s \"$@\"' --" % via, *creds)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "porticoAccountState active -> moving" in p.stdout, \
        p.stdout
    assert "kicked %s: 1 session ended or parked" % mbox in p.stdout, \
        p.stdout
    assert "exit status 1" in p.stderr and "cut short" in p.stderr, p.stderr
    assert re.search(r"nothing of it kept: .* %s is as it was before \(not "
                     r"in this store\)" % re.escape(mbox), p.stderr), p.stderr
    assert "the copy failed; %s stays on s1b1 (porticoAccountState " \
        "active again)" % user in p.stderr, p.stderr
    assert entry() == ("s1b1", "active")
    hears_a_delivery(BE, 4)
    # the move
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via", via, *creds)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-4:] == [
        "imported 4 messages in %s folders" % p.stdout.split(
            "imported 4 messages in ")[1].split(" folders")[0],
        "%s: porticoAccountState moving -> active, porticoMailboxServer "
        "s1b1 -> s2b1" % user,
        "removed %s: %s" % (mbox, p.stdout.split("removed %s: " % mbox)[1]
                            .splitlines()[0]),
        "moved %s (%s) from s1b1 to s2b1" % (user, mbox)], p.stdout
    assert "exported 4 messages in " in p.stderr, p.stderr
    assert entry() == ("s2b1", "active")
    assert admin(st, BE, "show", mbox).returncode != 0
    hears_a_delivery(NEW, 5)
    lines = done_and_flags(idle)
    assert lines == [
        b"* 1 FETCH (UID 1 FLAGS ())\r\n",
        b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
        b"* 3 FETCH (UID 3 FLAGS ())\r\n",
        b"* 4 FETCH (UID 4 FLAGS ())\r\n",
        b"* 5 FETCH (UID 5 FLAGS ())\r\n"], lines
    idle.s.close()
    # moved already: refused where it was
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via", via, *creds)
    assert p.returncode == 1 and "is on backend s2b1, not on this one" \
        in p.stderr, p.stderr


def test_move_meets_another_change(st, tmp_path):
    """The entry's state is changed with a test-and-set: a move starts
    only from the state it read, and neither puts the entry back nor
    finishes over a state another has set meanwhile (here an operator
    disabling the account during the copy); then nothing is removed and
    the message says what holds the account."""
    user, pw, mbox = new_user(st, "moverace")
    c = st.imap(user, pw)
    assert c.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n")[0] \
        == "OK"
    c.logout()
    NEW = "s2b1/backend.ini"
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st), "--directory", st.dir / FE]
    ldif = tmp_path / "disable.ldif"
    ldif.write_text("dn: uid=%s,ou=people,dc=example,dc=test\n"
                    "changetype: modify\nreplace: porticoAccountState\n"
                    "porticoAccountState: disabled\n" % user)
    disable = "ldapmodify -x -H %s -D %s -w %s -f %s >/dev/null" % (
        st.LDAP_URI, st.LDAP_ADMIN_DN, st.LDAP_ADMIN_PASSWORD, ldif)

    def state():
        return re.search(r"^state +(\S+)", admin(st, FE, "user", user)
                         .stdout, re.M).group(1)

    # disabled during a copy that fails: left disabled, not made active
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via",
              "sh -c '%s; cat >/dev/null; exit 3' --" % disable, *creds)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "porticoAccountState of uid=%s,ou=people,dc=example,dc=test " \
        "is no longer moving: changed by another meanwhile" % user \
        in p.stderr, p.stderr
    assert "the copy failed; %s stays on s1b1, its entry as the other " \
        "change left it" % user in p.stderr, p.stderr
    assert state() == "disabled"
    # a move does not start from a state other than active
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via", "true",
              *creds)
    assert p.returncode == 1 and "is disabled: enable it first" in p.stderr
    set_account_state(st, "enable", user)
    # disabled during a copy that succeeds: not finished, nothing removed
    via = "sh -c '%s; exec %s -c %s \"$@\"' --" % (
        disable, BUILD / "portico-admin", st.dir / NEW)
    p = admin(st, BE, "move", user, "--to", "s2b1", "--via", via, *creds)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "imported 1 messages in " in p.stdout, p.stdout
    assert "the entry was changed during the copy: it still names s1b1, " \
        "which keeps the account; s2b1 holds a copy" in p.stderr, p.stderr
    assert "removed" not in p.stdout, p.stdout
    assert state() == "disabled"
    assert admin(st, BE, "show", mbox).returncode == 0
    assert admin(st, NEW, "remove", mbox, "--yes").returncode == 0
    set_account_state(st, "enable", user)
    c = st.imap(user, pw)
    assert c.select("INBOX") == ("OK", [b"1"])
    c.logout()


def test_move_offline(st):
    """portico-admin move --offline moves an account off a stopped backend
    (no kick: nothing to end); it is refused while a backend has the store
    (its owner lock), since the store could change behind the copy, and
    while something answers on backend.http_listen."""
    user, pw, mbox = new_user(st, "moveoff")
    c = st.imap(user, pw)
    for i in range(2):
        assert c.append("INBOX", None, None,
                        b"Subject: off %d\r\n\r\nx\r\n" % i)[0] == "OK"
    c.logout()
    NEW = "s2b1/backend.ini"
    args = ["move", user, "--to", "s2b1", "--via",
            "%s -c %s" % (BUILD / "portico-admin", st.dir / NEW),
            "--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
            password_file(st), "--directory", st.dir / FE, "--offline"]
    p = admin(st, BE, *args)
    assert p.returncode == 1, p.stdout + p.stderr
    pid = int((st.dir / "s1b1" / "pid").read_text())
    assert "--offline, but a backend (pid %d) has %s: it runs (leave " \
        "--offline out)" % (pid, st.dir / "s1b1" / "store") in p.stderr, \
        p.stderr
    assert "moving" not in p.stdout
    st.stop("s1b1")
    try:
        # something else answers where the backend would
        http = re.search(r"^http_listen\s*=\s*(\S+):(\d+)$",
                         (st.dir / BE).read_text(), re.M)
        holder = socket.create_server((http.group(1), int(http.group(2))))
        try:
            p = admin(st, BE, *args)
        finally:
            holder.close()
        assert p.returncode == 1, p.stdout + p.stderr
        assert "--offline, but the backend answers on " in p.stderr, \
            p.stderr
        p = admin(st, BE, *args)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "%s: the backend is stopped: no sessions to end " \
            "(--offline)" % user in p.stdout, p.stdout
        assert p.stdout.endswith("moved %s (%s) from s1b1 to s2b1\n"
                                 % (user, mbox)), p.stdout
    finally:
        st.start("s1b1")
    c = st.imap(user, pw)
    assert c.select("INBOX") == ("OK", [b"2"])
    c.logout()
    assert admin(st, BE, "show", mbox).returncode != 0
    bystander, bpw, _ = new_user(st, "moveoffby")
    st.wait_for_login(bystander, bpw, timeout=30)


def test_quota_from_the_directory(st):
    """porticoQuotaStorage and porticoQuotaMessages become the user's own
    limits at each login (IMAP or POP3, through any frontend), over the
    backend's and over one set with portico-admin quota; when the entry
    loses them, the backend's apply again, while a quota set with
    portico-admin on an entry without them stays."""
    user, _, mid = new_user(st, "dirquota")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    msg = b"Subject: q\r\n\r\nsmall\r\n"
    ldap_modify(st, dn, "add: porticoQuotaMessages",
                "porticoQuotaMessages: 1")
    c = st.imap(user)
    try:
        # the first command after the login sees them
        assert quota_root(c) == '"User quota" (MESSAGE 0 1)'
        assert c.append("INBOX", None, None, msg)[0] == "OK"
        typ, data = c.append("INBOX", None, None, msg)
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    finally:
        c.logout()
    p = admin(st, BE, "quota", mid)
    assert p.stdout.splitlines()[1:] == [
        "quota-messages  1 of 1 (100.0%)",
        "quota-limits    the directory's (porticoQuotaStorage, "
        "porticoQuotaMessages); storage: the backend's"]
    log = (st.dir / "s1b1" / "s1b1.log").read_text()
    assert "mailbox=%s quota from the directory storage=backend " \
        "messages=1" % mid in log

    # changed in the directory: the next login (POP3, site 2) takes it
    ldap_modify(st, dn, "replace: porticoQuotaMessages",
                "porticoQuotaMessages: 5", "-",
                "add: porticoQuotaStorage", "porticoQuotaStorage: 4096")
    p3 = st.pop3(user, site=2)
    p3.quit()
    p = admin(st, BE, "quota", mid)
    lines = p.stdout.splitlines()
    assert re.fullmatch(r"quota-storage   \d+ bytes of 4096 bytes "
                        r"\([0-9.]+%\)", lines[0]), lines
    assert lines[1:] == [
        "quota-messages  1 of 5 (20.0%)",
        "quota-limits    the directory's (porticoQuotaStorage, "
        "porticoQuotaMessages)"]

    # portico-admin quota now, the directory's again at the next login
    assert admin(st, BE, "quota", mid, "0", "0").returncode == 0
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (STORAGE 1 4 MESSAGE 1 5)'
    finally:
        c.logout()

    # the entry loses them: the backend's apply again
    ldap_modify(st, dn, "delete: porticoQuotaMessages", "-",
                "delete: porticoQuotaStorage")
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (MESSAGE 1 %d)' % \
            QUOTA_MESSAGES
    finally:
        c.logout()
    assert "the backend's" in admin(st, BE, "quota", mid).stdout

    # without them in the entry, portico-admin's stays through logins
    assert admin(st, BE, "quota", mid, "0", "7").returncode == 0
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (MESSAGE 1 7)'
    finally:
        c.logout()
    assert "the user's own" in admin(st, BE, "quota", mid).stdout

    # a value that is not a count (the schema's INTEGER allows -5): the
    # frontend logs it and ignores it; the login works, the limits stay
    ldap_modify(st, dn, "add: porticoQuotaMessages",
                "porticoQuotaMessages: -5")
    c = st.imap(user)
    try:
        assert quota_root(c) == '"User quota" (MESSAGE 1 7)'
        assert c.append("INBOX", None, None, msg)[0] == "OK"
    finally:
        c.logout()
    assert 'porticoQuotaMessages="-5": not a count, ignored' in \
        (st.dir / "s1f1" / "s1f1.log").read_text()
    assert admin(st, BE, "remove", mid, "--yes").returncode == 0


def quota_records(st):
    """Keys of users' own limits in the store (mdb_dump, lmdb-utils; a
    read transaction beside the running backend)."""
    out = subprocess.run(["mdb_dump", "-s", "meta",
                          str(st.dir / "s1b1" / "store")],
                         capture_output=True, text=True, timeout=30,
                         check=True).stdout
    data = out.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    keys = [bytes.fromhex(k.strip()) for k in data.splitlines()[0::2]]
    return [k for k in keys if len(k) == 9 and k[:1] == b"q"]


# ---- remove ----------------------------------------------------------------

def test_imap_capabilities_off_from_the_directory(st):
    """porticoImapCapabilityOff switches IMAP capabilities off for one
    account, to work around its client: the LOGIN's OK and CAPABILITY no
    longer name them (THREAD both its variants, CONDSTORE QRESYNC with
    it), ENABLE does not enable them, their commands are unknown, and the
    rest works; other accounts keep everything; a value that is no
    capability name is ignored with a warning; without the attribute the
    next login has them all again."""
    user, pw, _ = new_user(st, "capoff")
    other, opw, _ = new_user(st, "capon")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    ldap_modify(st, dn, "add: porticoImapCapabilityOff",
                "porticoImapCapabilityOff: condstore",
                "porticoImapCapabilityOff: COMPRESS",
                "porticoImapCapabilityOff: IDLE",
                "porticoImapCapabilityOff: THREAD",
                "porticoImapCapabilityOff: UIDPLUS",
                "porticoImapCapabilityOff: ESEARCH",
                "porticoImapCapabilityOff: no such(thing)")

    def caps(c):
        typ, data = c.capability()
        assert typ == "OK", data
        return data[0].decode().split()

    full = caps(st.imap(other, opw))
    for cap in ("CONDSTORE", "QRESYNC", "COMPRESS=DEFLATE", "IDLE",
                "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "UIDPLUS",
                "SORT", "ESEARCH", "ESORT"):
        assert cap in full, full
    c = st.imap()
    typ, data = c.login(user, pw)
    assert typ == "OK", data
    login_caps = re.search(rb"\[CAPABILITY ([^\]]*)\]", data[0]).group(1)
    have = caps(c)
    assert login_caps.decode().split() == have
    gone = {"CONDSTORE", "QRESYNC", "COMPRESS=DEFLATE", "IDLE",
            "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "UIDPLUS",
            "ESEARCH", "ESORT"}
    assert set(have) == set(full) - gone, have
    assert have[0] == "IMAP4rev1"
    typ, data = c._simple_command("ENABLE", "CONDSTORE", "QRESYNC",
                                  "UTF8=ACCEPT")
    assert typ == "OK", data
    assert c.untagged_responses.pop("ENABLED") == [b"UTF8=ACCEPT"]
    c.select("INBOX")
    for cmd, args in (("IDLE", ()), ("COMPRESS", ("DEFLATE",)),
                      ("THREAD", ("REFERENCES", "UTF-8", "ALL"))):
        tag = c._new_tag()
        c.send(tag + b" " + " ".join((cmd,) + args).encode() + b"\r\n")
        line = c.readline()
        assert line == tag + b" BAD Unknown command\r\n", line
    tag = c._new_tag()
    c.send(tag + b" UID EXPUNGE 1\r\n")
    assert c.readline() == tag + b" BAD Unknown command\r\n"
    typ, data = c.sort("(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK", data
    # ESORT went with ESEARCH: SORT takes no RETURN
    tag = c._new_tag()
    c.send(tag + b" SORT RETURN (ALL) (SUBJECT) UTF-8 ALL\r\n")
    assert c.readline().startswith(tag + b" BAD ")
    # SEARCH's RETURN went with ESEARCH, but for SAVE, which is SEARCHRES's
    for ret in (b"(ALL)", b"(MIN COUNT)", b"()", b"(SAVE MIN)"):
        tag = c._new_tag()
        c.send(tag + b" SEARCH RETURN " + ret + b" ALL\r\n")
        assert c.readline() == tag + b" BAD SEARCH expects [CHARSET " \
            b"charset] search-criteria\r\n", ret
    tag = c._new_tag()
    c.send(tag + b" SEARCH RETURN (SAVE) ALL\r\n")
    assert c.readline().startswith(tag + b" OK ")
    c.logout()
    log = st.log("s1b1")
    assert "capabilities off: CONDSTORE COMPRESS IDLE THREAD UIDPLUS " \
        "ESEARCH" in log
    assert ('dn="%s" porticoImapCapabilityOff: not a capability name, '
            "ignored" % dn) in st.log("s1f1")
    # the attribute gone: everything again
    ldap_modify(st, dn, "delete: porticoImapCapabilityOff")
    assert caps(st.imap(user, pw)) == full


def test_searchres_off_from_the_directory(st):
    """SEARCHRES switched off for an account: RETURN (SAVE) is refused by
    SEARCH and SORT alike, while ESEARCH's and ESORT's other options
    stay."""
    user, pw, _ = new_user(st, "resoff")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    ldap_modify(st, dn, "add: porticoImapCapabilityOff",
                "porticoImapCapabilityOff: SEARCHRES")
    c = st.imap(user, pw)
    typ, data = c.capability()
    have = data[0].decode().split()
    assert "SEARCHRES" not in have and "ESEARCH" in have, have
    c.append("INBOX", None, None, b"Subject: one\r\n\r\nbody\r\n")
    c.select("INBOX")
    for cmd in (b"SEARCH RETURN (SAVE) ALL", b"SEARCH RETURN (MIN SAVE) ALL",
                b"SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL"):
        tag = c._new_tag()
        c.send(tag + b" " + cmd + b"\r\n")
        line = c.readline()
        assert line.startswith(tag + b" BAD "), (cmd, line)
    for cmd in (b"SEARCH RETURN (MIN) ALL",
                b"SORT RETURN (COUNT) (SUBJECT) UTF-8 ALL"):
        tag = c._new_tag()
        c.send(tag + b" " + cmd + b"\r\n")
        assert c.readline().startswith(b"* ESEARCH"), cmd
        assert c.readline().startswith(tag + b" OK "), cmd
    c.logout()

def test_expunge_by_age(st):
    """portico-admin expunge: a folder's messages older than an age by
    their internal date (--before) or by when they reached it
    (--saved-before), or all of them; a session in IDLE on the folder sees
    them go; errors are said."""
    user, pw, mbox = new_user(st, "expage")
    c = st.imap(user, pw)
    for n, date in enumerate(('"03-Jan-2024 10:00:00 +0000"',
                              '"04-Jan-2024 10:00:00 +0000"', None)):
        typ, data = c.append("INBOX", None, date,
                             b"Subject: old %d\r\n\r\nx\r\n" % n)
        assert typ == "OK", data
    for n in range(2):
        assert c.append("Junk", None, None, b"Subject: junk\r\n\r\nx\r\n")[
            0] == "OK"
    c.select("INBOX")
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")
    p = admin(st, BE, "expunge", mbox, "--mailbox", "INBOX",
              "--saved-before", "1h")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "expunged 0 messages of %s INBOX\n" % mbox
    p = admin(st, BE, "expunge", mbox, "--mailbox", "INBOX", "--before",
              "30d")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "expunged 2 messages of %s INBOX\n" % mbox
    c.sock.settimeout(10)
    assert [c.readline(), c.readline()] == [b"* 1 EXPUNGE\r\n"] * 2
    c.send(b"DONE\r\n")
    assert c.readline().startswith(tag + b" OK")
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [d[1].strip() for d in data if isinstance(d, tuple)] == \
        [b"Subject: old 2"]
    c.logout()
    p = admin(st, BE, "expunge", mbox, "--mailbox", "Junk", "--all")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "expunged 2 messages of %s Junk\n" % mbox
    p = admin(st, BE, "expunge", mbox, "--mailbox", "Nope", "--all")
    assert p.returncode == 1
    assert "no such mailbox id in this store, or no such mailbox" in p.stderr
    p = admin(st, BE, "expunge", mbox, "--mailbox", "INBOX", "--before",
              "soon")
    assert p.returncode == 1
    assert "'soon': a time such as 30d, 12h or 90m" in p.stderr
    assert admin(st, BE, "expunge", mbox, "--mailbox",
                 "INBOX").returncode == 2
    p = admin(st, BE, "check", mbox)
    assert p.returncode == 0, p.stdout + p.stderr


def test_expunge_a_message_from_every_account(st):
    """portico-admin expunge --every-account --mailbox '*' --message-id ID
    takes a message sent to many (a phishing mail) back from every folder
    of every account of the backend, and nothing else: not a message that
    only names it (References, X-Message-ID), nor one whose Message-ID
    merely contains it; a session in IDLE sees it go.  One account, one
    folder, works the same."""
    phish = "phish-%d@bad.example" % os.getpid()
    a_user, a_pw, a = new_user(st, "phisha")
    b_user, b_pw, b = new_user(st, "phishb")
    bad = b"From: x@bad.example\r\nMessage-ID: <%s>\r\nSubject: " \
        b"win\r\n\r\nclick\r\n" % phish.encode()
    p = admin(st, BE, "deliver", a, b, stdin=bad, text=False)
    assert p.returncode == 0, p.stderr
    c = st.imap(b_user, b_pw)
    # a folded field, in another folder
    assert c.append("Archive", None, None,
                    b"Message-ID:\r\n <%s>\r\nSubject: filed\r\n\r\n"
                    b"x\r\n" % phish.encode())[0] == "OK"
    c.logout()
    c = st.imap(a_user, a_pw)
    for keep in (b"References: <%s>\r\nMessage-ID: <re@ok.example>\r\n"
                 % phish.encode(),
                 b"X-Message-ID: <%s>\r\n" % phish.encode(),
                 b"Message-ID: <x%s>\r\n" % phish.encode()):
        assert c.append("INBOX", None, None, keep +
                        b"Subject: keep\r\n\r\nx\r\n")[0] == "OK"
    c.select("INBOX")
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")

    p = admin(st, BE, "expunge", "--every-account", "--mailbox", "*",
              "--message-id", phish)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert sorted(lines[:-1]) == sorted([
        "expunged 1 messages of %s INBOX" % a,
        "expunged 1 messages of %s INBOX" % b,
        "expunged 1 messages of %s Archive" % b]), p.stdout
    assert re.fullmatch(r"expunged 3 messages in \d+ folders of \d+ "
                        r"accounts", lines[-1]), p.stdout
    c.sock.settimeout(10)
    assert c.readline() == b"* 1 EXPUNGE\r\n"
    c.send(b"DONE\r\n")
    assert c.readline().startswith(tag + b" OK")
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [d[1].strip() for d in data if isinstance(d, tuple)] == \
        [b"Subject: keep"] * 3
    c.logout()
    c = st.imap(b_user, b_pw)
    for folder in ("INBOX", "Archive"):
        assert c.select(folder, readonly=True) == ("OK", [b"0"]), folder
    c.logout()

    # one account, one folder: as before, with the brackets given
    p = admin(st, BE, "deliver", a, stdin=bad, text=False)
    assert p.returncode == 0, p.stderr
    p = admin(st, BE, "expunge", a, "--mailbox", "INBOX", "--message-id",
              "<%s>" % phish)
    assert (p.returncode, p.stdout) == (
        0, "expunged 1 messages of %s INBOX\n" % a), p.stderr
    p = admin(st, BE, "expunge", a, "--mailbox", "*", "--message-id", phish)
    assert (p.returncode, p.stdout) == (
        0, "expunged 0 messages in 6 folders of 1 account\n"), p.stderr
    p = admin(st, BE, "expunge", a, "--mailbox", "INBOX", "--message-id",
              "two words")
    assert p.returncode == 1 and "a Message-ID such as" in p.stderr
    assert admin(st, BE, "expunge", "--every-account", "--mailbox", "INBOX",
                 "--all", "--message-id", phish).returncode == 2
    for mb in (a, b):
        p = admin(st, BE, "check", mb)
        assert p.returncode == 0, p.stdout + p.stderr


def test_accounts_lists_usage_against_limits(st):
    """portico-admin accounts: every account of the store with its
    messages, bytes and limits (its own, else the backend's) and the use
    of the nearer limit; --over PERCENT keeps those at or above it (to
    warn before they are full); a total line."""
    full, full_pw, full_id = new_user(st, "accfull")
    empty, _, empty_id = new_user(st, "accempty")
    msg = b"Subject: a\r\n\r\n" + b"x" * 1000 + b"\r\n"
    for _ in range(3):
        p = admin(st, BE, "deliver", full_id, stdin=msg, text=False)
        assert p.returncode == 0, p.stderr
    assert admin(st, BE, "quota", full_id, "0", "4").returncode == 0

    def rows(*args):
        p = admin(st, BE, "accounts", *args)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0].split() == ["mailbox-id", "messages", "bytes",
                                    "storage-limit", "msg-limit", "use",
                                    "last-login"]
        got = {l.split()[0]: l.split()[1:] for l in lines[1:-1]}
        m = re.fullmatch(r"(\d+) accounts?, (\d+) messages, (\d+) bytes",
                         lines[-1])
        assert m and int(m.group(1)) == len(got), p.stdout
        assert int(m.group(2)) == sum(int(r[0]) for r in got.values())
        assert int(m.group(3)) == sum(int(r[1]) for r in got.values())
        return got

    got = rows()
    size = len(msg)
    # what deliver stored: the message and the header fields it adds
    assert got[full_id][0] == "3" and got[full_id][2:4] == ["0", "4"] and \
        3 * size < int(got[full_id][1]) < 3 * (size + 1000), got[full_id]
    assert got[full_id][4] == "75.0%"
    assert got[empty_id][:2] == ["0", "0"], got[empty_id]
    over = rows("--over", "70")
    assert full_id in over and empty_id not in over
    assert all(float(r[4].rstrip("%")) >= 70 for r in over.values()), over
    assert full_id not in rows("--over", "80")
    p = admin(st, BE, "accounts", "--over", "lots")
    assert p.returncode == 1 and "a percentage such as 90" in p.stderr
    assert admin(st, BE, "accounts", "extra").returncode == 2

    # the last login: recorded at an IMAP or POP3 login, at most once
    # per backend.last_login_interval (an hour)
    assert got[full_id][5] == "-" and got[empty_id][5] == "-"
    st.imap(full, full_pw).logout()
    last = wait_for(lambda: rows()[full_id][5] != "-" and
                    rows()[full_id][5], what="the last login recorded")
    t = time.mktime(time.strptime(last, "%Y-%m-%dT%H:%M:%SZ")) - \
        time.timezone
    assert abs(t - time.time()) < 60, last
    time.sleep(1.1)
    st.pop3(full, full_pw).quit()
    time.sleep(0.5)
    assert rows()[full_id][5] == last
    shown = admin(st, BE, "show", full_id).stdout
    assert "\nlast-login %s UTC\n" % last.replace("T", " ").rstrip("Z") \
        in shown, shown
    assert "\nlast-login -\n" in admin(st, BE, "show", empty_id).stdout
    # an account that only sends mail (a device, an application) is in
    # use too: its submission is recorded
    sender, sender_pw, sender_id = new_user(st, "accsender")
    assert rows()[sender_id][5] == "-"
    send_one(submission(st, sender, sender_pw), sender, full, "sent only")
    wait_for(lambda: rows()[sender_id][5] != "-",
             what="the submission recorded")
    inactive = rows("--inactive", "1d")
    assert empty_id in inactive and full_id not in inactive
    assert sender_id not in inactive
    assert rows("--inactive", "1d", "--over", "70").get(full_id) is None
    assert admin(st, BE, "check", "--all").returncode == 0
    # removed with the account
    assert admin(st, BE, "remove", full_id, "--yes").returncode == 0
    assert admin(st, BE, "check", "--all").returncode == 0


def test_user_shows_the_account(st):
    """portico-admin user ADDRESS: the entry a login of ADDRESS finds
    (with the frontend's own search account), the backend it routes to,
    its settings, and whether the directory lets it log in."""
    user, pw, mbox = new_user(st, "whois")
    dn = "uid=%s,ou=people,dc=example,dc=test" % user

    def show():
        p = admin(st, FE, "user", user)
        assert p.returncode == 0, p.stderr
        return dict(re.split(r"\s+", line, maxsplit=1)
                    for line in p.stdout.splitlines())

    got = show()
    assert got["dn"] == dn and got["uid"] == user
    assert got["mailbox-id"] == mbox
    assert re.fullmatch(r"s1b1 \(site 1, link 127\.0\.0\.1:\d+\)",
                        got["backend"]), got
    assert (got["state"], got["imap"], got["pop3"], got["smtp"]) == \
        ("active", "yes", "yes", "yes")
    assert got["quota-storage"] == "the backend's"
    assert got["imap-off"] == "-"
    assert got["login"] == "allowed by the directory"
    ldap_modify(st, dn, "add: porticoQuotaStorage",
                "porticoQuotaStorage: 1048576", "-",
                "add: porticoImapCapabilityOff",
                "porticoImapCapabilityOff: IDLE", "-",
                "replace: porticoPop3Enabled", "porticoPop3Enabled: FALSE")
    set_account_state(st, "disable", user)
    got = show()
    assert (got["quota-storage"], got["imap-off"], got["pop3"]) == \
        ("1048576", "IDLE", "no")
    assert got["state"] == "disabled"
    assert got["login"] == "refused: porticoAccountState disabled (mail " \
        "for it refused)"
    set_account_state(st, "enable", user)
    ldap_modify(st, dn, "replace: porticoMailboxServer",
                "porticoMailboxServer: nowhere")
    assert show()["backend"] == "nowhere (no such backend under " \
        "ldap.backends_dn: logins fail)"
    ldap_modify(st, dn, "replace: porticoMailboxServer",
                "porticoMailboxServer: s1b1")
    p = admin(st, FE, "user", "nobody-%d@example.test" % os.getpid())
    assert p.returncode == 1 and "matches 0 users" in p.stderr
    # a name of frontend.refused_accounts, whatever the directory says
    root = "root@example-%d.test" % os.getpid()
    run_stack("adduser", st.dir, root, "pw-root")
    p = admin(st, FE, "user", root)
    assert p.returncode == 0, p.stderr
    assert "login         refused: %s is in frontend.refused_accounts\n" \
        % root in p.stdout, p.stdout


def test_remove_then_list_and_check(st, tmp_path):
    gone, _, gone_id = new_user(st, "rm")
    kept, _, kept_id = new_user(st, "keep")
    # one message to both (one body), one to the removed user alone
    shared = b"Subject: shared\r\n\r\nfor both\r\n"
    p = admin(st, BE, "deliver", gone_id, kept_id, stdin=shared.decode())
    assert p.returncode == 0, p.stdout + p.stderr
    own = tmp_path / "own.eml"
    own.write_bytes(b"Subject: own\n\nonly mine\n")
    assert admin(st, BE, "import", gone_id, own, "--mailbox",
                 "Sent").returncode == 0
    kept_before = fetch_all(st, kept)
    session = st.imap(gone)
    session.select("INBOX")

    p = admin(st, BE, "remove", gone_id)
    assert p.returncode == 1 and "add --yes" in p.stderr
    assert admin(st, BE, "list", gone_id).returncode == 0
    p = admin(st, BE, "remove", gone_id, "--yes")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("removed %s: 6 folders, 2 messages, 1 bodies "
                        "freed\n" % gone_id)
    p = admin(st, BE, "list", gone_id)
    assert p.returncode == 1
    assert "no such mailbox id in this store" in p.stderr
    p = admin(st, BE, "check", "--all")
    assert p.returncode == 0, p.stdout
    assert p.stdout.endswith(": consistent\n")
    assert admin(st, BE, "check", kept_id).returncode == 0
    assert fetch_all(st, kept) == kept_before
    # the open session learns at its next command; a new login is refused
    with pytest.raises(imaplib.IMAP4.abort) as e:
        session.noop()
    assert "NONEXISTENT" in str(e.value)
    with pytest.raises(imaplib.IMAP4.error) as e:
        st.imap(gone)
    assert "UNAVAILABLE" in str(e.value)
    p = admin(st, BE, "remove", gone_id, "--yes")
    assert p.returncode == 1 and "no such mailbox id" in p.stderr
