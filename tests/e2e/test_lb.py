"""Two sites behind HAProxy: `scripts/stack up --sites 2
--frontends-per-site 2 --lb` (issue #7 point 9; docs/DEPLOYMENT.md).

One stack for the module: site 1's slapd (service ldap) is the provider,
site 2's (ldap2) a syncrepl replica of it; each site has a backend and two
frontends, site 2's asking ldap2 first; HAProxy (lb) balances every client
port over the four frontends with PROXY v2 from 127.0.0.2.  Everything is
real: slapd, HAProxy, the daemons, imaplib/poplib/smtplib/urllib.

Tests that break something (the provider stopped, a frontend killed) come
last and put it back.
"""

import base64
import email
import email.policy
import imaplib
import os
import poplib
import re
import shlex
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (CMD_TIMEOUT, REPO, UP_TIMEOUT, Stack, run_stack,
                      stop_and_check, wait_for)

pytestmark = pytest.mark.daemons

LB_PROTOCOLS = ("IMAP", "IMAPS", "POP3", "POP3S", "SUBMISSION",
                "SUBMISSIONS", "HTTP", "HTTPS")
FRONTENDS = ("s1f1", "s1f2", "s2f1", "s2f2")
# the address the tests connect to HAProxy from, to be found in the
# frontends' logs (any 127/8 address is local)
CLIENT_ADDR = "127.0.0.3"


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lb")
    try:
        run_stack("up", directory, "--sites", 2, "--frontends-per-site", 2,
                  "--lb", timeout=UP_TIMEOUT)
        yield Stack(directory)
    finally:
        stop_and_check(directory)


@pytest.fixture(scope="module")
def users(st):
    """A user with a mailbox in each site, added after startup."""
    return {1: st.new_user("site1u", site=1), 2: st.new_user("site2u", site=2)}


def log(st, name):
    path = st.dir / (name + "/slapd.log" if name.startswith("ldap")
                     else "%s/%s.log" % (name, name))
    return path.read_text(errors="replace")


def binds(st, ldap, user):
    """Successful-or-not simple binds as USER's DN in slapd LDAP's log."""
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    return log(st, ldap).count('BIND dn="%s" mech=SIMPLE' % dn)


def haproxy_servers(st):
    """{(listener, frontend): status} from HAProxy's stats socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(st.dir / "lb" / "admin.sock"))
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("svname") in FRONTENDS:
            out[(row["pxname"], row["svname"])] = row["status"]
    return out


def refuses(port):
    """True if nothing listens on 127.0.0.1:PORT any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def ctx(st):
    return st.ssl_context()


def lb(st, proto):
    return st["LB_%s_PORT" % proto.upper()]


def imap_login(st, user, password, proto="imaps", source=None):
    """Log in through HAProxy (IMAPS, or IMAP with STARTTLS), SELECT INBOX
    read-only; returns the number of messages."""
    if proto == "imaps":
        c = imaplib.IMAP4_SSL(st.LB_HOST, lb(st, "imaps"),
                              ssl_context=ctx(st), timeout=10)
    else:
        c = imaplib.IMAP4(st.LB_HOST, lb(st, "imap"), timeout=10)
        assert c.starttls(ssl_context=ctx(st))[0] == "OK"
    try:
        typ, data = c.login(user, password)
        assert typ == "OK", data
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        return int(data[0])
    finally:
        c.logout()


def pop3_login(st, user, password, proto="pop3s"):
    """Log in through HAProxy (POP3S, or POP3 with STLS); returns STAT."""
    if proto == "pop3s":
        p = poplib.POP3_SSL(st.LB_HOST, lb(st, "pop3s"), context=ctx(st),
                            timeout=10)
    else:
        p = poplib.POP3(st.LB_HOST, lb(st, "pop3"), timeout=10)
        assert p.stls(context=ctx(st)).startswith(b"+OK")
    try:
        p.user(user)
        assert p.pass_(password).startswith(b"+OK")
        return p.stat()
    finally:
        p.quit()


def submit(st, user, password, to, subject, body, proto="submissions"):
    """Submit a message through HAProxy; returns its Message-ID."""
    mid = "<%s.%d@example.test>" % (subject.replace(" ", "-"),
                                    time.monotonic_ns())
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n%s\r\n"
           % (user, to, subject, mid, body)).encode()
    if proto == "submissions":
        s = smtplib.SMTP_SSL(st.LB_HOST, lb(st, "submissions"),
                             context=ctx(st), timeout=30)
    else:
        s = smtplib.SMTP(st.LB_HOST, lb(st, "submission"), timeout=30)
        s.starttls(context=ctx(st))
    try:
        s.login(user, password)
        refused = s.sendmail(user, [to], msg)
        assert refused == {}
    finally:
        s.quit()
    return mid


def imap_messages(st, user, password):
    """{Message-ID: parsed message} of USER's INBOX, read over IMAPS
    through HAProxy."""
    c = imaplib.IMAP4_SSL(st.LB_HOST, lb(st, "imaps"), ssl_context=ctx(st),
                          timeout=10)
    try:
        c.login(user, password)
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(data[0]) == 0:
            return {}
        typ, data = c.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if isinstance(item, tuple):
                m = email.message_from_bytes(item[1],
                                             policy=email.policy.default)
                out[m["Message-ID"]] = m
        return out
    finally:
        c.logout()


# ---------------------------------------------------------------------------

def test_topology(st):
    for proto in LB_PROTOCOLS:
        assert isinstance(st["LB_%s_PORT" % proto], int), proto
    assert st.SITE2_LDAP_URI != st.LDAP_URI
    assert st.SITE2_LDAP_URI == "ldap://127.0.0.1:%d/" % st.SITE2_LDAP_PORT
    # each site's frontends ask their own slapd first, the other one next
    for fe, uris in (("s1f1", (st.LDAP_URI, st.SITE2_LDAP_URI)),
                     ("s2f2", (st.SITE2_LDAP_URI, st.LDAP_URI))):
        ini = (st.dir / fe / "frontend.ini").read_text()
        assert "\nuris = %s %s\n" % uris in ini, fe
        assert "\nproxy_networks = 127.0.0.2/32\n" in ini, fe
    status = st.status()
    for name in ("ldap", "ldap2", "lb") + FRONTENDS:
        assert re.search(r"^%s +\S+ +pid \d+" % name, status, re.M), status
    # HAProxy balances every listener over the four frontends, all up
    servers = wait_for(
        lambda: (lambda s: s if set(s.values()) == {"UP"} else None)(
            haproxy_servers(st)), timeout=30, what="every server UP")
    assert sorted(servers) == sorted(
        (p.lower(), fe) for p in LB_PROTOCOLS for fe in FRONTENDS)
    # writes to the replica are referred to the provider
    res = subprocess.run(
        ["ldapmodify", "-x", "-H", st.SITE2_LDAP_URI, "-D",
         st.LDAP_ADMIN_DN, "-w", st.LDAP_ADMIN_PASSWORD],
        input="dn: ou=people,dc=example,dc=test\nchangetype: modify\n"
        "replace: description\ndescription: written on the replica\n",
        capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert res.returncode == 10, res.stderr          # LDAP referral
    assert "%sou=people,dc=example,dc=test" % st.LDAP_URI in res.stderr


def test_each_site_user_logs_in_through_the_lb(st, users):
    for site in (1, 2):
        user, pw = users[site]
        for _ in range(4):       # leastconn spreads these over the four
            assert imap_login(st, user, pw, "imaps") == 0
        assert imap_login(st, user, pw, "imap") == 0
        assert pop3_login(st, user, pw, "pop3s") == (0, 0)
        assert pop3_login(st, user, pw, "pop3") == (0, 0)
        for proto in ("submission", "submissions"):
            if proto == "submissions":
                s = smtplib.SMTP_SSL(st.LB_HOST, lb(st, proto),
                                     context=ctx(st), timeout=30)
            else:
                s = smtplib.SMTP(st.LB_HOST, lb(st, proto), timeout=30)
                s.starttls(context=ctx(st))
            code, _ = s.login(user, pw)
            assert code == 235
            s.quit()
    # every frontend served some of these, each through a PROXY v2 header
    for fe in FRONTENDS:
        assert re.search(r"client=127\.0\.0\.1:\d+ proxy=127\.0\.0\.2:\d+ "
                         r"proxy_protocol=v2 protocol=imaps ", log(st, fe)), fe


def test_mail_from_site1_to_site2_through_the_lb(st, users):
    (u1, p1), (u2, p2) = users[1], users[2]
    mid = submit(st, u1, p1, u2, "across sites", "From site 1 to site 2.",
                 "submissions")
    got = wait_for(lambda: imap_messages(st, u2, p2).get(mid), timeout=30,
                   what="the message in site 2's INBOX")
    assert got["From"] == u1 and got["Subject"] == "across sites"
    assert got.get_content() == "From site 1 to site 2.\r\n"
    # and back, over submission with STARTTLS, read over POP3S
    mid = submit(st, u2, p2, u1, "and back", "From site 2 to site 1.",
                 "submission")
    got = wait_for(lambda: imap_messages(st, u1, p1).get(mid), timeout=30,
                   what="the reply in site 1's INBOX")
    assert got.get_content() == "From site 2 to site 1.\r\n"
    count, _ = pop3_login(st, u1, p1, "pop3s")
    assert count == 1


def test_frontends_log_the_real_client_address(st, users):
    user, pw = users[2]
    raw = socket.create_connection((st.LB_HOST, lb(st, "imaps")), timeout=10,
                                   source_address=(CLIENT_ADDR, 0))
    sport = raw.getsockname()[1]
    s = ctx(st).wrap_socket(raw, server_hostname=st.LB_HOST)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(b"a1 "):
            break
    assert line.startswith(b"a1 OK"), line
    s.sendall(b"a2 LOGOUT\r\n")
    s.close()
    want = ("client=%s:%d proxy=127.0.0.2:" % (CLIENT_ADDR, sport),
            "client=%s:%d user=%s authenticated" % (CLIENT_ADDR, sport, user))
    served = wait_for(lambda: [fe for fe in FRONTENDS
                               if all(w in log(st, fe) for w in want)],
                      timeout=10, what="the login in a frontend's log")
    assert len(served) == 1, served
    # HTTP through the balancer too: the page's request is logged with the
    # client's address, and autoconfig sends clients to the balancer
    raw = socket.create_connection((st.LB_HOST, lb(st, "http")), timeout=10,
                                   source_address=(CLIENT_ADDR, 0))
    sport = raw.getsockname()[1]
    raw.sendall(b"GET /mail/config-v1.1.xml?emailaddress=%s HTTP/1.1\r\n"
                b"Host: localhost\r\nConnection: close\r\n\r\n"
                % user.encode())
    reply = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            break
        reply += chunk
    raw.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
    assert b"<port>%d</port>" % lb(st, "imaps") in reply
    assert b"<port>%d</port>" % lb(st, "pop3s") in reply
    wait_for(lambda: any(
        "http client=%s:%d method=GET path=\"/mail/config-v1.1.xml\"" %
        (CLIENT_ADDR, sport) in log(st, fe) for fe in FRONTENDS),
        timeout=10, what="the HTTP request in a frontend's log")
    with urllib.request.urlopen("https://%s:%d/health" % (
            st.LB_HOST, lb(st, "https")), context=ctx(st), timeout=10) as r:
        assert r.status == 200
        assert r.read().decode().startswith("status ok\n")


def test_user_added_later_logs_in_at_site2(st):
    user, pw = st.new_user("late", site=2)
    # adduser returned once the replica had the entry: it is there, as the
    # frontends' service account sees it
    out = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", st.SITE2_LDAP_URI, "-D",
         st.LDAP_SERVICE_DN, "-w", st.LDAP_SERVICE_PASSWORD, "-b",
         st.LDAP_PEOPLE_DN, "(mail=%s)" % user, "porticoMailboxServer"],
        capture_output=True, text=True, check=True, timeout=CMD_TIMEOUT)
    assert "porticoMailboxServer: s2b1" in out.stdout
    for k in (1, 2):
        c = st.imap(user, pw, site=2, frontend=k)
        assert c.select("INBOX", readonly=True) == ("OK", [b"0"])
        c.logout()
    # the binds went to site 2's replica, none to the provider
    assert binds(st, "ldap2", user) == 2
    assert binds(st, "ldap", user) == 0


def test_provider_down_binds_go_to_the_replica(st, users):
    counts = {site: imap_login(st, *users[site]) for site in (1, 2)}
    st.stop("ldap")
    try:
        for site in (1, 2):
            user, pw = users[site]
            before = binds(st, "ldap2", user)
            for _ in range(4):
                assert imap_login(st, user, pw, "imaps") == counts[site]
            assert pop3_login(st, user, pw, "pop3s")[0] == counts[site]
            # every one of them checked by the replica
            assert binds(st, "ldap2", user) == before + 5
        # new users cannot be added meanwhile (the provider takes writes)
        res = st.run("adduser", st.dir, "nobody@example.test", "pw",
                     check=False)
        assert res.returncode == 1
        assert "does not answer" in res.stderr
    finally:
        st.start("ldap")
    # the replica catches up with what the provider gets from now on
    user, pw = st.new_user("afterwards", site=2)
    assert imap_login(st, user, pw, "imaps") == 0


def test_killed_frontend_logins_keep_working(st, users):
    user, pw = users[2]
    count = imap_login(st, user, pw)
    pid = int((st.dir / "s1f1" / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        # once its sockets are closed (a connection the dying process
        # still accepted would just close: its threads go one by one),
        # connections to s1f1 are refused and HAProxy retries them on
        # another frontend at once, before any health check has noticed
        wait_for(lambda: all(refuses(st.port(p, 1, 1)) for p in
                             ("imaps", "imap", "pop3s", "submissions")),
                 timeout=10, what="s1f1's listeners to close")
        for _ in range(8):
            assert imap_login(st, user, pw, "imaps") == count
        for _ in range(4):
            assert pop3_login(st, user, pw, "pop3s")[0] == count
        s = smtplib.SMTP_SSL(st.LB_HOST, lb(st, "submissions"),
                             context=ctx(st), timeout=30)
        assert s.login(user, pw)[0] == 235
        s.quit()
        # and the health checks take s1f1 out of every listener
        wait_for(lambda: all(v == "DOWN" for (px, fe), v in
                             haproxy_servers(st).items() if fe == "s1f1"),
                 timeout=30, what="s1f1 DOWN in HAProxy")
        servers = haproxy_servers(st)
        assert {v for (px, fe), v in servers.items() if fe != "s1f1"} == \
            {"UP"}
        for _ in range(4):
            assert imap_login(st, user, pw, "imap") == count
    finally:
        st.start("s1f1")
    wait_for(lambda: set(haproxy_servers(st).values()) == {"UP"},
             timeout=30, what="s1f1 UP again")


# ---------------------------------------------------------------------------
# docs/DEPLOYMENT.md and config/: the same configuration as the stack's

def haproxy_sections(text):
    """{section header: [lines]} of the defaults and listen sections, with
    what differs between loopback and real hosts made abstract: listen and
    server addresses, the check port, the loopback source address."""
    sections, cur = {}, None
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not line.startswith(" "):
            cur = line if line.split()[0] in ("defaults", "listen") else None
            if cur:
                sections[cur] = []
            continue
        if cur is None:
            continue
        words = line.split()
        if words[0] == "bind":
            words[1:] = ["ADDRESS"]
        elif words[0] == "server":
            words[2] = "ADDRESS"
        elif words[0] == "default-server" and "source" in words:
            i = words.index("source")
            del words[i:i + 2]
        line = re.sub(r"check port \d+", "check port PORT", " ".join(words))
        sections[cur].append(line)
    return sections


def test_haproxy_example_matches_the_stack(st):
    example = REPO / "config" / "haproxy" / "portico.cfg"
    mine = haproxy_sections((st.dir / "lb" / "haproxy.cfg").read_text())
    theirs = haproxy_sections(example.read_text())
    assert list(theirs) == list(mine)
    for section in mine:
        assert theirs[section] == mine[section], section
    res = subprocess.run(["haproxy", "-c", "-f", str(example)],
                         capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    # the guide shows this very file
    guide = (REPO / "docs" / "DEPLOYMENT.md").read_text()
    body = example.read_text().split("\nglobal\n", 1)[1]
    assert body in guide


def ldif_records(path):
    """[{attribute: [values]}] of the LDIF file PATH (folded lines joined,
    base64 decoded, comments dropped)."""
    lines = []
    for raw in Path(path).read_text().splitlines():
        if raw.startswith("#"):
            continue
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    out, cur = [], {}
    for line in lines + [""]:
        if not line.strip() or line == "-":
            if not line.strip() and cur:
                out.append(cur)
                cur = {}
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode()
        cur.setdefault(name, []).append(value.strip())
    return out


def cn_config(conf, workdir):
    """Convert slapd.conf CONF (its database moved to an empty directory)
    into a cn=config directory under WORKDIR; returns that directory."""
    workdir.mkdir()
    (workdir / "data").mkdir()
    (workdir / "cfg").mkdir()
    text = re.sub(r'^directory ".*"$', 'directory "%s"' % (workdir / "data"),
                  conf, flags=re.M)
    text = re.sub(r'^argsfile ".*"$', 'argsfile "%s"' % (workdir / "args"),
                  text, flags=re.M)
    (workdir / "slapd.conf").write_text(text)
    for argv in (["slapadd", "-f", workdir / "slapd.conf", "-l", "/dev/null"],
                 ["slaptest", "-Q", "-f", workdir / "slapd.conf", "-F",
                  workdir / "cfg"]):
        subprocess.run([str(a) for a in argv], check=True,
                       capture_output=True, timeout=CMD_TIMEOUT)
    return workdir / "cfg"


SYNCREPL_DEFAULTS = ("timeout=0", "network-timeout=0", "keepalive=0:0:0",
                     "tcp-user-timeout=0", "starttls=no",
                     "filter=(objectclass=*)")


def limits(value):
    """An olcLimits value as (who, {limit: value}): slapd writes out
    `size=X` as size.soft and size.hard, and leaves out a soft size limit
    equal to the global one (`sizelimit unlimited` in the stack's)."""
    who, *words = value.split()
    lims = {"size.soft": "unlimited"}
    for w in words:
        key, val = w.split("=", 1)
        for k in ((key + ".soft", key + ".hard") if "." not in key
                  else (key,)):
            lims[k] = val
    return who, lims


def replication_config(cfg):
    """What replication is made of in the cn=config directory CFG:
    modules, the database's indexes, limits, ACLs, syncrepl (as a set of
    keyword=value), updateref, and the syncprov overlay's settings."""
    d = cfg / "cn=config"
    db = ldif_records(d / "olcDatabase={1}mdb.ldif")[0]
    strip = lambda vals: [re.sub(r"^\{\d+\}", "", " ".join(v.split()))
                          for v in vals]
    out = {
        "modules": sorted(strip(ldif_records(
            d / "cn=module{0}.ldif")[0]["olcModuleLoad"])),
        "index": sorted(db.get("olcDbIndex", [])),
        "limits": [limits(v) for v in strip(db.get("olcLimits", []))],
        "access": strip(db.get("olcAccess", [])),
        "updateref": db.get("olcUpdateRef", []),
        # slapd writes out the keywords left at their defaults too
        "syncrepl": [sorted(kv for kv in shlex.split(v)
                            if kv not in SYNCREPL_DEFAULTS)
                     for v in strip(db.get("olcSyncrepl", []))],
        "overlay": None,
    }
    ov = d / "olcDatabase={1}mdb" / "olcOverlay={0}syncprov.ldif"
    if ov.exists():
        rec = ldif_records(ov)[0]
        out["overlay"] = (rec["olcSpCheckpoint"], rec["olcSpSessionlog"])
    return out


def apply_ldif(cfg, path, replace=()):
    """Apply the change records of PATH to the cn=config directory CFG
    offline (slapmodify, one record per run so that a module loaded by one
    record is there for the next), after the textual REPLACEments."""
    text = Path(path).read_text()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    records = [r for r in re.split(r"\n\s*\n", text)
               if any(line.startswith("dn:") for line in r.splitlines())]
    for i, rec in enumerate(records):
        one = cfg.parent / ("change%d.ldif" % i)
        one.write_text(rec.strip() + "\n")
        res = subprocess.run(["slapmodify", "-F", str(cfg), "-n0", "-l",
                              str(one)], capture_output=True, text=True,
                             timeout=CMD_TIMEOUT)
        assert res.returncode == 0, (rec, res.stderr)


def without_replication(conf):
    """The stack's slapd.conf as a slapd without replicas has it."""
    conf = conf.split("\n# Provider of the replicas")[0]
    conf = conf.split("\n# Replica of ")[0]
    return "".join(line + "\n" for line in conf.splitlines()
                   if "cn=replicator" not in line
                   and line != "moduleload syncprov")


@pytest.mark.parametrize("name,ldif", [
    ("ldap", "replication-provider.ldif"),
    ("ldap2", "replication-consumer.ldif")])
def test_replication_ldif_matches_the_stack(st, tmp_path, name, ldif):
    """config/ldap/replication-*.ldif, applied to the cn=config form of a
    slapd without replication, give what the stack's replicating slapd.conf
    gives."""
    conf = (st.dir / name / "slapd.conf").read_text()
    want = replication_config(cn_config(conf, tmp_path / "stack"))
    assert want["access"] and want["index"]
    cfg = cn_config(without_replication(conf), tmp_path / "doc")
    assert replication_config(cfg) != want
    password = re.search(r"^\s+credentials=(\S+)$", conf, re.M)
    apply_ldif(cfg, REPO / "config" / "ldap" / ldif, replace=[
        ("ldap://ldap1.site1.example.com/", st.LDAP_URI),
        ("REPLICATOR-PASSWORD", password.group(1) if password else "")]
        if name != "ldap" else [])
    assert replication_config(cfg) == want
    # the guide shows these very records
    guide = (REPO / "docs" / "DEPLOYMENT.md").read_text()
    text = (REPO / "config" / "ldap" / ldif).read_text()
    for rec in re.split(r"\n\s*\n", text):
        rec = "\n".join(line for line in rec.splitlines()
                        if not line.startswith("#"))
        assert rec.strip() in guide, rec


def test_auto_reply_page_on_a_replica_site(st, users):
    """The settings page's automatic reply is a write.  A site-2
    frontend, whose directory is the replica, sends it to the provider
    (ldap.write_uris, as scripts/stack sets it for a replica's site): the
    page saves it, and the replica has it at once.  The same frontend
    with ldap.write_uris emptied at a reload sends it to the replica,
    which refuses it (a referral, which a frontend does not follow): the
    page says so, and nothing changes."""
    import html
    import http.client
    import urllib.parse
    user, pw = users[2]
    ini = st.dir / "s2f2" / "frontend.ini"
    text = ini.read_text()
    assert "\nwrite_uris = %s\n" % st.LDAP_URI in text, text

    def post(on):
        form = urllib.parse.urlencode({
            "action": "auto-reply", "user": user, "password": pw,
            "auto_reply": "on" if on else "", "subject": "",
            "text": "Away.", "start": "", "end": ""})
        c = http.client.HTTPSConnection(
            st.host, int(st["SITE2_FE2_HTTPS_PORT"]),
            context=st.ssl_context(), timeout=10)
        c.request("POST", "/settings", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        return r.status, html.unescape(r.read().decode())

    def has_text(uri):
        out = subprocess.run(
            ["ldapsearch", "-LLL", "-x", "-H", uri, "-D", st.LDAP_ADMIN_DN,
             "-w", st.LDAP_ADMIN_PASSWORD, "-b", st["LDAP_PEOPLE_DN"],
             "(mail=%s)" % user, "porticoAutoReplyText"],
            capture_output=True, check=True, timeout=30).stdout.decode()
        return "porticoAutoReplyText: Away." in out

    status, page = post(True)
    assert status == 200, page
    assert "Your automatic reply is saved." in page, page
    # shown as set, whether or not the replica has it yet
    assert 'data-state="on"' in page, page
    assert has_text(st.LDAP_URI)
    wait_for(lambda: has_text(st["SITE2_LDAP_URI"]), timeout=30,
             what="the replica to have the automatic reply")

    # without ldap.write_uris (a live reload), the replica refers the
    # change away
    pid = int((st.dir / "s2f2" / "pid").read_text())

    def reload():
        """SIGHUP, then wait until every event loop has the new
        configuration."""
        def applied():
            return st.log("s2f2").count("applied by")
        before = applied()
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: applied() > before, timeout=30,
                 what="s2f2's reload applied by every loop")

    ini.write_text(text.replace("\nwrite_uris = %s\n" % st.LDAP_URI, "\n"))
    try:
        reload()
        status, page = post(False)
        assert status == 200, page
        assert "Your automatic reply was not changed: the directory " \
            "server here takes no changes (a read-only replica)." in page, \
            page
        assert has_text(st.LDAP_URI)
    finally:
        ini.write_text(text)
        reload()
    status, page = post(False)
    assert "Your automatic reply is off." in page, page
    assert not has_text(st.LDAP_URI)


# ---------------------------------------------------------------------------
# start/stop of the replica and of HAProxy, then down: last, they leave the
# stack stopped

def test_replica_stopped_and_started_again(st):
    st.stop("ldap2")
    try:
        # site 2's frontends fall back on the provider
        user, pw = st.new_user("whilereplicadown", site=2)
        before = binds(st, "ldap", user)
        c = st.imap(user, pw, site=2, frontend=1)
        assert c.select("INBOX", readonly=True) == ("OK", [b"0"])
        c.logout()
        assert binds(st, "ldap", user) == before + 1
    finally:
        st.start("ldap2")
    # the replica catches up with what it missed
    def on_replica():
        out = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", st.SITE2_LDAP_URI, "-D",
             st.LDAP_SERVICE_DN, "-w", st.LDAP_SERVICE_PASSWORD, "-b",
             st.LDAP_PEOPLE_DN, "(uid=%s)" % user, "uid"],
            capture_output=True, text=True, timeout=CMD_TIMEOUT)
        return "uid: %s" % user in out.stdout
    wait_for(on_replica, timeout=30, what="the user on the restarted replica")


def test_lb_stopped_and_started_again(st, users):
    user, pw = users[1]
    count = imap_login(st, user, pw)
    st.stop("lb")
    for proto in LB_PROTOCOLS:
        assert refuses(lb(st, proto)), proto
    st.start("lb")
    assert imap_login(st, user, pw) == count


def test_down_stops_everything(st):
    pids = {name: int((st.dir / name / "pid").read_text())
            for name in ("ldap", "ldap2", "lb") + FRONTENDS}
    st.down()
    for name, pid in pids.items():
        assert not Path("/proc/%d" % pid).exists() or \
            open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] \
            in ("Z", "X"), name
    res = st.run("status", st.dir, check=False)
    assert res.returncode == 3
    for name in ("ldap", "ldap2", "lb"):
        assert re.search(r"^%s +\S+ +stopped " % name, res.stdout, re.M), \
            res.stdout
