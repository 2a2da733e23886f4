"""The backend transport: local delivery (Deliver, portico-admin deliver),
the submission queue and its runner (LMTP, smarthost, retries, DSNs)."""

import email
import email.policy
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import ALICE, CMD_TIMEOUT, wait_for

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))


def mailbox_id(st, user):
    """porticoMailboxId of USER, from LDAP."""
    out = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", st["LDAP_URI"], "-D",
         st["LDAP_ADMIN_DN"], "-w", st["LDAP_ADMIN_PASSWORD"], "-b",
         st["LDAP_PEOPLE_DN"], "(mail=%s)" % user, "porticoMailboxId"],
        capture_output=True, text=True, check=True, timeout=CMD_TIMEOUT)
    m = re.search(r"^porticoMailboxId: (\S+)$", out.stdout, re.M)
    assert m, out.stdout
    return m.group(1)


def admin(st, backend, *args, stdin=None):
    ini = st.dir / backend / "backend.ini"
    return subprocess.run([str(BUILD / "portico-admin"), "-c", str(ini)] +
                          [str(a) for a in args], input=stdin,
                          capture_output=True, timeout=CMD_TIMEOUT)


def fetch_inbox(st, user):
    """[(RFC822.SIZE, bytes)] of USER's INBOX, in UID order."""
    c = st.imap(user)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(data[0]) == 0:
            return []
        typ, data = c.uid("FETCH", "1:*", "(RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK", data
        out = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            size = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
            out.append((size, item[1]))
        return out
    finally:
        c.logout()


MSG = (b"From: Sender <sender@example.test>\r\n"
       b"To: someone@example.test\r\n"
       b"Subject: transport test\r\n"
       b"Message-ID: <t1@example.test>\r\n"
       b"\r\n"
       b"Hello over the transport.\r\n")


def mdb_bodies(st):
    """Keys of the backend's "bodies" database (mdb_dump, lmdb-utils;
    a read transaction beside the running backend)."""
    out = subprocess.run(["mdb_dump", "-s", "bodies",
                          str(st.dir / "s1b1" / "store")],
                         capture_output=True, text=True, timeout=30,
                         check=True).stdout
    data = out.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    return data.splitlines()[0::2]


def test_admin_deliver_two_recipients(stack):
    """portico-admin deliver: Return-Path and Received on top, the message
    byte for byte below, RFC822.SIZE exact, one body for both."""
    u1, _ = stack.new_user("dl")
    u2, _ = stack.new_user("dl")
    ids = [mailbox_id(stack, u1), mailbox_id(stack, u2)]
    bodies = len(mdb_bodies(stack))
    p = admin(stack, "s1b1", "deliver", "--from", "sender@example.test",
              *ids, stdin=MSG)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        "%s: 250 2.0.0 Saved" % ids[0], "%s: 250 2.0.0 Saved" % ids[1]]
    got = [fetch_inbox(stack, u) for u in (u1, u2)]
    assert got[0] == got[1]
    [(size, data)] = got[0]
    assert size == len(data)
    assert data.startswith(b"Return-Path: <sender@example.test>\r\n"
                           b"Received: from localhost ([127.0.0.1])\r\n"
                           b"\tby ")
    assert data.endswith(b"\r\n" + MSG)
    assert b"\tfor <" not in data  # two recipients: no "for"
    # single-instance store: one body more on the backend, for both
    assert len(mdb_bodies(stack)) == bodies + 1
    p = admin(stack, "s1b1", "check", "--all")
    assert p.returncode == 0, p.stdout


def test_admin_deliver_over_quota(stack_factory):
    """A recipient over quota gets 452 4.2.2 (or 552 5.2.2 with
    transport.quota_failure = permanent), the others their message."""
    st = stack_factory("quota", settings=["backend.quota_messages=1"])
    full, _ = st.new_user("full")
    ok, _ = st.new_user("ok")
    fid, oid = mailbox_id(st, full), mailbox_id(st, ok)
    p = admin(st, "s1b1", "deliver", fid, stdin=MSG)
    assert p.returncode == 0, p.stdout
    p = admin(st, "s1b1", "deliver", "--from", "", fid, oid, stdin=MSG)
    assert p.returncode == 75
    assert p.stdout.decode().splitlines() == [
        "%s: 452 4.2.2 Mailbox is full (quota exceeded)" % fid,
        "%s: 250 2.0.0 Saved" % oid]
    ini = st.dir / "s1b1" / "backend.ini"
    ini.write_text(ini.read_text() +
                   "\n[transport]\nquota_failure = permanent\n")
    p = admin(st, "s1b1", "deliver", fid, stdin=MSG)
    assert p.returncode == 1
    assert p.stdout.decode() == \
        "%s: 552 5.2.2 Mailbox is full (quota exceeded)\n" % fid
    assert len(fetch_inbox(st, full)) == 1
    assert len(fetch_inbox(st, ok)) == 1


# ---- submission through the queue -------------------------------------------

def need(st, key):
    if key not in st:
        pytest.skip("the frontends of this stack have no %s" % key)


def submit(st, user, password, rcpts, msg, mail_from=None, site=1,
           frontend=1, mail_options=(), rcpt_options=()):
    """Submission over implicit TLS (465-style); returns the 250 text."""
    need(st, "SITE%d_FE%d_SUBMISSIONS_PORT" % (site, frontend))
    ctx = st.ssl_context()
    port = st["SITE%d_FE%d_SUBMISSIONS_PORT" % (site, frontend)]
    with smtplib.SMTP_SSL(st.host, port, context=ctx, timeout=30) as s:
        s.login(user, password)
        s.mail(mail_from or user, list(mail_options))
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
        return text.decode()


def queue_listing(st, backend="s1b1"):
    p = admin(st, backend, "queue")
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def queue_empty(st, backend="s1b1"):
    return queue_listing(st, backend).endswith("\n0 queued\n") or \
        queue_listing(st, backend) == "0 queued\n"


def inbox_when(st, user, count, timeout=30, site=1):
    """USER's INBOX once it holds COUNT messages."""
    def have():
        got = fetch_inbox(st, user)
        return got if len(got) >= count else None
    got = wait_for(have, timeout=timeout, interval=0.2,
                   what="%d message(s) for %s" % (count, user))
    assert len(got) == count, got
    return got


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


def test_submission_to_same_backend(stack):
    """Submitted, queued (250 with a queue id), delivered through the
    frontend's LMTP into the INBOX of a user of the same backend."""
    user, pw = stack.new_user("rcpt")
    text = submit(stack, *ALICE, [user], MSG)
    assert re.fullmatch(r"2\.0\.0 Ok: queued as [0-9A-F]{16}", text), text
    [(size, data)] = inbox_when(stack, user, 1)
    assert size == len(data)
    assert data.startswith(b"Return-Path: <alice@example.test>\r\n"
                           b"Received: from ")
    assert data.endswith(b"\r\n" + MSG)
    wait_for(lambda: queue_empty(stack), what="the queue to empty")
    assert admin(stack, "s1b1", "check", "--all").returncode == 0


@pytest.fixture(scope="module")
def two_sites(stack_factory):
    """Two sites of two backends each, users on three of them."""
    st = stack_factory("sites", sites=2, backends_per_site=2)
    st.add_user("s1@example.test", "pw-s1", site=1, backend=1)
    st.add_user("b2@example.test", "pw-b2", site=1, backend=2)
    st.add_user("s2@example.test", "pw-s2", site=2, backend=1)
    return st


def test_submission_to_other_backend_and_site(two_sites):
    """One submission to a user of the same backend, one of another
    backend of the site, one of another site: each gets it once."""
    st = two_sites
    msg = MSG.replace(b"<t1@", b"<sites@")
    submit(st, "s1@example.test", "pw-s1",
           ["s1@example.test", "b2@example.test", "s2@example.test"], msg)
    for user, site in (("s1@example.test", 1), ("b2@example.test", 1),
                       ("s2@example.test", 2)):
        [(size, data)] = inbox_when(st, user, 1, site=site)
        assert data.endswith(b"\r\n" + msg), user
        assert data.startswith(b"Return-Path: <s1@example.test>\r\n")
    wait_for(lambda: queue_empty(st), what="the queue to empty")
    # Each went with the queue's delivery id (s1b1's id, the queue id,
    # the arrival time), which each recipient's backend recorded.
    qid = re.findall(r"queue=([0-9A-F]{16}) attempt=1 local=3 remote=0",
                     st.log("s1b1"))[-1]
    for b, user in (("s1b1", "s1@"), ("s1b2", "b2@"), ("s2b1", "s2@")):
        assert re.search(r"deliver to=<%sexample\.test> .* status=250 "
                         r"2\.0\.0 delivery=s1b1\.%s\.\d+\n"
                         % (user, qid), st.log(b)), (b, st.log(b)[-2000:])
        m = backend_metrics(st, b)
        assert m["portico_backend_delivery_records"] >= 1, (b, m)
        assert 0 < m["portico_backend_store_used_bytes"] <= \
            m["portico_backend_store_map_bytes"], (b, m)
    for b in ("s1b1", "s1b2", "s2b1"):
        p = admin(st, b, "check", "--all")
        assert p.returncode == 0, (b, p.stdout)


# ---- the smarthost -----------------------------------------------------------

class Sink:
    """An SMTP server (aiosmtpd) on a fixed port that can be started and
    stopped; RCPT to an address starting with 'bad' gets 550 5.1.1."""

    def __init__(self, port, cert=None, key=None, utf8=True):
        from aiosmtpd.controller import Controller
        self.hold = port if isinstance(port, PortHold) else None
        port = self.hold.port if self.hold else port
        self.port = port
        self.messages = []
        self.tls_seen = []
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address,
                                  rcpt_options):
                if address.startswith("bad"):
                    return "550 5.1.1 No such user here"
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 Ok"

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from,
                                      list(envelope.rcpt_tos),
                                      envelope.original_content))
                sink.tls_seen.append(session.ssl is not None)
                return "250 2.0.0 Ok: queued"

        ctx = None
        if cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
        self.controller = Controller(Handler(), hostname="127.0.0.1",
                                     port=port, tls_context=ctx,
                                     require_starttls=False,
                                     enable_SMTPUTF8=utf8)
        self.running = False

    def start(self):
        if self.hold is not None:
            self.hold.release()
        self.controller.start()
        self.running = True

    def stop(self):
        if self.hold is not None:
            self.hold.release()
        if self.running:
            self.controller.stop()
            self.running = False


class PortHold:
    """A loopback port bound, not listening, until released: connections
    to it are refused, and no daemon of a stack started meanwhile can
    take it (a port only looked up and let go could become the stack's
    own, and a relay to it would wait on a server that never says 220)."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def release(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture
def relay_stack(stack_factory):
    """A stack whose backend relays remote mail to a smarthost (not yet
    running) on SINK_PORT, with STARTTLS, retrying every second or two."""
    port = PortHold()
    st = stack_factory("relay", settings=[
        "transport.smarthost=127.0.0.1:%d" % port.port,
        "transport.retry_first=1s", "transport.retry_max=2s"])
    st.sink = Sink(port, str(st.dir / "certs" / "mail.pem"),
                   str(st.dir / "certs" / "mail.key"))
    st.add_user("sender@example.test", "pw-sender")
    try:
        yield st
    finally:
        st.sink.stop()


def backend_metrics(st, backend="s1b1"):
    """The unlabelled samples of a backend's /metrics, by name."""
    import urllib.request
    site, index = re.fullmatch(r"s(\d+)b(\d+)", backend).groups()
    port = st["SITE%s_BE%s_HTTP_PORT" % (site, index)]
    with urllib.request.urlopen("http://%s:%s/metrics" % (
            st.host, port), timeout=10) as r:
        body = r.read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def test_relay_smarthost_down_then_up(relay_stack):
    """The smarthost is down: the message waits in the queue, retried;
    once it is up the message arrives once, over STARTTLS, and the queue
    is empty."""
    st = relay_stack
    msg = MSG.replace(b"<t1@", b"<relay@")
    submit(st, "sender@example.test", "pw-sender", ["far@remote.test"], msg)
    wait_for(lambda: re.search(r"attempts=[2-9].*\n  <far@remote\.test> "
                               r"pending 451 4\.4\.1 ",
                               queue_listing(st)),
             timeout=30, what="two failed attempts")
    # the backend's metrics show the waiting message and its age
    m = backend_metrics(st)
    assert m["portico_backend_queue_messages"] == 1, m
    assert m["portico_backend_queue_oldest_seconds"] >= 1, m
    st.sink.start()
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    m = backend_metrics(st)
    assert m["portico_backend_queue_messages"] == 0, m
    assert m["portico_backend_queue_oldest_seconds"] == 0, m
    assert len(st.sink.messages) == 1
    mail_from, rcpts, data = st.sink.messages[0]
    assert (mail_from, rcpts) == ("sender@example.test", ["far@remote.test"])
    assert data.replace(b"\r\n", b"\n").endswith(
        msg.replace(b"\r\n", b"\n"))
    assert st.sink.tls_seen == [True]
    assert "to=<far@remote.test> relayed" in st.log("s1b1")


def test_queue_flush_and_delete(stack_factory):
    """portico-admin queue flush attempts waiting messages now (all, or
    those named), instead of at their next retry an hour away; queue
    delete drops a message and its entry without a report, through the
    running backend (an attempt under way on it goes on, then writes
    nothing back), or in
    the store itself when no backend has it (flush then has nothing to
    do).  The queue stays consistent (check --all)."""
    port = PortHold()
    st = stack_factory("queueops", settings=[
        "transport.smarthost=127.0.0.1:%d" % port.port,
        "transport.smarthost_tls=may",
        "transport.retry_first=1h", "transport.retry_max=1h"])
    st.add_user("sender@example.test", "pw-sender")

    def listing():
        return dict(re.findall(r"^([0-9A-F]{16}) age=\S+ attempts=(\d+) ",
                               queue_listing(st), re.M))
    for i in (1, 2):
        submit(st, "sender@example.test", "pw-sender", ["far@remote.test"],
               MSG.replace(b"<t1@", b"<q%d@" % i))
    wait_for(lambda: sorted(listing().values()) == ["1", "1"],
             what="a first attempt of each")
    q1, q2 = sorted(listing())

    p = admin(st, "s1b1", "queue", "flush", q1.lower().lstrip("0"))
    assert (p.returncode, p.stdout) == (0, b"flushed 1\n"), p.stderr
    wait_for(lambda: listing() == {q1: "2", q2: "1"},
             what="a second attempt of the message flushed only")

    p = admin(st, "s1b1", "queue", "delete", q2)
    assert (p.returncode, p.stdout) == (0, b"deleted %s\n" % q2.encode()), \
        p.stderr
    assert listing() == {q1: "2"}
    assert "queue=%s deleted by portico-admin" % q2 in st.log("s1b1")
    assert backend_metrics(st)["portico_backend_queue_messages"] == 1
    p = admin(st, "s1b1", "queue", "delete", q2)
    assert p.returncode == 1 and \
        b"%s: not in the queue" % q2.encode() in p.stderr, p.stderr
    p = admin(st, "s1b1", "queue", "delete", "not-an-id")
    assert p.returncode == 1 and b"not a queue id" in p.stderr, p.stderr
    # the backend's endpoints themselves, asked wrongly: a clear answer,
    # and the queue as it was
    import http.client
    for method, path, headers, want in (
            ("POST", "/queue/delete", {}, 400),
            ("POST", "/queue/delete?id=", {}, 400),
            ("POST", "/queue/delete?id=zz", {}, 400),
            ("POST", "/queue/flush?id=12345678901234567", {}, 400),
            ("GET", "/queue/flush", {}, 405),
            ("POST", "/queue/delete?id=%s" % q1,
             {"Origin": "https://evil.example"}, 403),
            ("POST", "/queue/delete?id=%s" % q2, {}, 404)):
        c = http.client.HTTPConnection(st.host, st["SITE1_BE1_HTTP_PORT"],
                                       timeout=10)
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == want, (method, path, r.status, body)
    assert listing() == {q1: "2"}

    # a smarthost that takes the connection and greets only when told,
    # then refuses the recipient for good: the attempt is under way; it
    # cannot be flushed, and a delete takes the entry from the store at
    # once while the attempt goes on, which then writes nothing back and
    # sends the sender no report of the failure
    port.release()
    slow = socket.create_server(("127.0.0.1", port.port))
    greet = threading.Event()
    said = []

    def smarthost():
        conn, _ = slow.accept()
        with conn, conn.makefile("rb") as f:
            greet.wait(60)
            conn.sendall(b"220 slow.remote.test ESMTP\r\n")
            for line in f:
                said.append(line)
                verb = line[:4].upper()
                if verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                conn.sendall(b"550 5.1.1 No such user here\r\n"
                             if verb == b"RCPT" else b"250 ok\r\n")
    server = threading.Thread(target=smarthost, daemon=True)
    server.start()
    try:
        p = admin(st, "s1b1", "queue", "flush")
        assert (p.returncode, p.stdout) == (0, b"flushed 1\n"), p.stderr
        wait_for(lambda: "queue=%s attempt=3" % q1 in st.log("s1b1"),
                 what="the third attempt")
        p = admin(st, "s1b1", "queue", "flush", q1)
        assert p.returncode == 1 and b"an attempt is under way" in \
            p.stderr, p.stderr
        p = admin(st, "s1b1", "queue", "delete", q1)
        assert (p.returncode, p.stdout) == (
            0, b"deleted %s (the attempt under way ends first)\n"
            % q1.encode()), p.stderr
        assert listing() == {}
        # deleted already: not in the queue, whether asked to delete or
        # to flush
        for verb in ("delete", "flush"):
            p = admin(st, "s1b1", "queue", verb, q1)
            assert p.returncode == 1 and \
                b"%s: not in the queue" % q1.encode() in p.stderr, \
                (verb, p.stderr)
        assert admin(st, "s1b1", "check", "--all").returncode == 0
        assert backend_metrics(st)["portico_backend_queue_messages"] == 1
        greet.set()
        wait_for(lambda: "queue=%s attempt ended: deleted by "
                 "portico-admin" % q1 in st.log("s1b1"),
                 what="the attempt's end")
        server.join(30)
    finally:
        greet.set()
        slow.close()
    assert [l[:9].upper() for l in said[1:3]] == [b"MAIL FROM",
                                                   b"RCPT TO:<"], said
    assert "queue=%s to=<far@remote.test> failed" % q1 in st.log("s1b1")
    assert listing() == {}
    assert backend_metrics(st)["portico_backend_queue_messages"] == 0
    assert admin(st, "s1b1", "check", "--all").returncode == 0
    assert fetch_inbox(st, "sender@example.test") == []

    # then up: a message waiting for its retry, flushed, is relayed at
    # once
    submit(st, "sender@example.test", "pw-sender", ["far@remote.test"],
           MSG.replace(b"<t1@", b"<q4@"))
    wait_for(lambda: list(listing().values()) == ["1"],
             what="a first attempt, refused")
    sink = Sink(port.port)
    sink.start()
    try:
        p = admin(st, "s1b1", "queue", "flush")
        assert (p.returncode, p.stdout) == (0, b"flushed 1\n"), p.stderr
        wait_for(lambda: queue_empty(st), what="the queue to empty")
        assert [m[1] for m in sink.messages] == [["far@remote.test"]]
        assert b"<q4@" in sink.messages[0][2]
    finally:
        sink.stop()

    # every message of one account (a compromised one), and no other's
    st.add_user("other@example.test", "pw-other")
    for i, who in enumerate(("sender", "sender", "other")):
        submit(st, "%s@example.test" % who, "pw-" + who,
               ["far@remote.test"], MSG.replace(b"<t1@", b"<u%d@" % i),
               mail_from="%s@example.test" % who)
    wait_for(lambda: sorted(listing().values()) == ["1", "1", "1"],
             what="a first attempt of each")
    theirs = sorted(re.findall(r"^([0-9A-F]{16}) .* user=other@example\.test$",
                               queue_listing(st), re.M))
    assert len(theirs) == 1, queue_listing(st)
    p = admin(st, "s1b1", "queue", "delete", "--user", "SENDER@example.test")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode().splitlines()
    assert len(out) == 3 and all(re.fullmatch(r"deleted [0-9A-F]{16}", l)
                                 for l in out[:2]), out
    assert out[2] == "2 queued messages of SENDER@example.test", out
    assert sorted(listing()) == theirs
    assert admin(st, "s1b1", "queue", "delete", "--user",
                 "nobody@example.test").stdout == \
        b"0 queued messages of nobody@example.test\n"
    assert admin(st, "s1b1", "queue", "delete", theirs[0]).returncode == 0

    # the backend stopped: delete works on the store, flush has nothing
    # to do
    submit(st, "sender@example.test", "pw-sender", ["far@remote.test"],
           MSG.replace(b"<t1@", b"<q3@"))
    wait_for(lambda: list(listing().values()) == ["1"],
             what="a first attempt")
    (q3,) = listing()
    st.stop("s1b1")
    try:
        p = admin(st, "s1b1", "queue", "flush")
        assert p.returncode == 1 and b"no backend has " in p.stderr, \
            p.stderr
        p = admin(st, "s1b1", "queue", "delete", q3)
        assert (p.returncode, p.stdout) == (0, b"deleted %s\n" %
                                            q3.encode()), p.stderr
        assert admin(st, "s1b1", "check", "--all").returncode == 0
    finally:
        st.start("s1b1")
    assert listing() == {}
    assert "queue entries=0 " in st.log("s1b1").rsplit(" ready", 1)[0][-2000:]


def test_relay_tls_settings_apply_at_a_reload(relay_stack):
    """transport.smarthost_tls and smarthost_ca_file apply at a reload to
    the relays that start after it; a CA file that does not load keeps
    the TLS as it was, and a mode that is none of the four refuses the
    reload."""
    from test_ops import ConfigEdit, reload
    st = relay_stack
    st.sink.start()

    def relay(n):
        msg = MSG.replace(b"<t1@", b"<tls%d@" % n)
        submit(st, "sender@example.test", "pw-sender", ["far@remote.test"],
               msg)
        wait_for(lambda: len(st.sink.messages) == n, timeout=30,
                 what="relayed message %d" % n)
        return st.sink.tls_seen[-1]

    assert relay(1) is True
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[transport]\nsmarthost_tls = none\n")
        new = reload(st, "s1b1")
        assert "setting=transport.smarthost_tls changed" in new, new
        assert 'reload: transport smarthost_tls=none ca_file=""' in new, new
        assert relay(2) is False
        edit.append("smarthost_tls = verify\n"
                    "smarthost_ca_file = /nonexistent/ca.pem\n")
        new = reload(st, "s1b1")
        assert "reload: transport.smarthost_ca_file: cannot load " \
            "/nonexistent/ca.pem; relays keep their TLS as it was" in new, new
        assert relay(3) is False
        edit.append("smarthost_tls = sometimes\n")
        new = reload(st, "s1b1")
        assert "configuration kept" in new and "transport.smarthost_tls: " \
            "invalid value 'sometimes'" in new, new
    finally:
        edit.restore()
    assert relay(4) is True
    assert queue_empty(st)

def dsn_parts(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    assert [p.get_content_type() for p in parts[:2]] == [
        "text/plain", "message/delivery-status"]
    return m, parts


def test_permanent_failure_dsn(relay_stack):
    """A 550 from the smarthost: the sender gets one DSN (RFC 3464) in
    the INBOX for the recipients that asked for one - NOTIFY=NEVER gets
    none - with ENVID and only the headers under RET=HDRS; the good
    recipient's copy is relayed."""
    st = relay_stack
    st.sink.start()
    msg = MSG.replace(b"<t1@", b"<dsn@")
    submit(st, "sender@example.test", "pw-sender",
           ["bad1@remote.test", "good@remote.test"], msg,
           mail_options=["RET=HDRS", "ENVID=env-42"])
    submit(st, "sender@example.test", "pw-sender", ["bad2@remote.test"],
           msg, rcpt_options=["NOTIFY=NEVER"])
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    [(size, raw)] = inbox_when(st, "sender@example.test", 1)
    # stored with the null reverse path of a report (RFC 3461 6.2)
    assert raw.startswith(b"Return-Path: <>\r\nFrom: Mail Delivery "
                          b"System <MAILER-DAEMON@"), raw[:200]
    m, parts = dsn_parts(raw)
    assert m["To"] == "<sender@example.test>"
    assert m["Subject"] == "Undelivered Mail Returned to Sender"
    assert m["Auto-Submitted"] == "auto-replied"
    status = parts[1].get_payload()
    fields = [dict(b.items()) for b in status]
    assert fields[0]["Original-Envelope-Id"] == "env-42"
    assert fields[0]["Reporting-MTA"] == "dns; s1b1.example.test"
    [r] = fields[1:]
    assert r["Final-Recipient"] == "rfc822; bad1@remote.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user here"
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"Message-ID: <dsn@example.test>" in raw
    assert b"Hello over the transport." not in raw
    assert [m[1] for m in st.sink.messages] == [["good@remote.test"]]
    assert admin(st, "s1b1", "check", "--all").returncode == 0


def test_success_dsn_returns_headers_only(stack):
    """NOTIFY=SUCCESS without RET: the report of a delivery returns the
    message's header only (RFC 3461 4.3), and it reaches the sender's
    INBOX with Return-Path: <> on top (RFC 3461 6.2, RFC 5321 4.4)."""
    sender, pw = stack.new_user("dsnok")
    rcpt, _ = stack.new_user("dsnrcpt")
    msg = MSG.replace(b"<t1@", b"<dsnok@")
    submit(stack, sender, pw, [rcpt], msg, rcpt_options=["NOTIFY=SUCCESS"])
    inbox_when(stack, rcpt, 1)
    [(size, raw)] = inbox_when(stack, sender, 1)
    assert raw.startswith(b"Return-Path: <>\r\nFrom: Mail Delivery "
                          b"System <MAILER-DAEMON@"), raw[:200]
    assert raw.count(b"Return-Path:") == 1
    m, parts = dsn_parts(raw)
    assert m["Subject"] == "Successful Mail Delivery Report"
    [r] = [dict(b.items()) for b in parts[1].get_payload()][1:]
    assert (r["Action"], r["Status"]) == ("delivered", "2.0.0")
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"Message-ID: <dsnok@example.test>" in raw
    assert b"Hello over the transport." not in raw


def header_fields(raw, name):
    """The values of every NAME: field of the message's header section
    (up to the first empty line), matched in any case."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [v.strip() for v in re.findall(
        rb"(?im)^" + re.escape(name) + rb"[ \t]*:(.*(?:\r\n[ \t].*)*)",
        head)]


def test_submission_gets_date_and_message_id(relay_stack):
    """RFC 6409 8.2, 8.3: a submission without Date: and Message-ID:
    gets both, once, before it is queued: the local copy and the relayed
    one carry the same.  Fields already there (in any case) are kept as
    they are and not added twice; LMTP deliveries get none."""
    import email.utils
    import time
    st = relay_stack
    st.sink.start()
    local, _ = st.new_user("msgid")
    bare = (b"From: sender@example.test\r\nTo: far@remote.test\r\n"
            b"Subject: neither date nor id\r\n\r\nbody\r\n")
    submit(st, "sender@example.test", "pw-sender",
           [local, "far@remote.test"], bare)
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    [(size, stored)] = inbox_when(st, local, 1)
    [(_, _, relayed)] = st.sink.messages
    relayed = relayed.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    seen = []
    for copy in (stored, relayed):
        # after the trace fields, then the message as sent
        assert copy.endswith(b"\r\n" + bare), copy
        [date] = header_fields(copy, b"Date")
        [mid] = header_fields(copy, b"Message-ID")
        when = email.utils.parsedate_to_datetime(date.decode())
        assert when.utcoffset() is not None
        assert abs(when.timestamp() - time.time()) < 600, date
        assert re.fullmatch(rb"<[0-9]{14}\.[0-9a-f]{24}@s1b1\.example\.test>",
                            mid), mid
        assert re.search(rb"\r\n\tby s1f1 \(Portico\) with ESMTPSA id "
                         rb"[^\r]*\r\n\t[^\r]*\r\nDate: .*\r\n"
                         rb"Message-ID: .*\r\nFrom: ", copy), copy
        seen.append((date, mid))
    assert seen[0] == seen[1]
    # Both there, in other cases: the message unchanged.
    full = (b"from: sender@example.test\r\nDATE: Mon, 23 Nov 2026 "
            b"08:00:00 +0000\r\nmessage-id: <keep@example.test>\r\n"
            b"Subject: both\r\n\r\nDate: in the body\r\n")
    submit(st, "sender@example.test", "pw-sender", [local], full)
    stored = inbox_when(st, local, 2)[1][1]
    assert stored.endswith(b"\r\n" + full)
    assert header_fields(stored, b"Date") == [b"Mon, 23 Nov 2026 "
                                              b"08:00:00 +0000"]
    assert header_fields(stored, b"Message-ID") == [b"<keep@example.test>"]
    # Only the Message-ID there: a Date added, nothing else.
    submit(st, "sender@example.test", "pw-sender", [local], MSG)
    stored = inbox_when(st, local, 3)[2][1]
    assert stored.endswith(b"\r\n" + MSG)
    assert len(header_fields(stored, b"Date")) == 1
    assert header_fields(stored, b"Message-ID") == [b"<t1@example.test>"]
    # LMTP (inbound mail) is delivered as it came.
    got = lmtp(st, [local], bare, mail_from="far@remote.test")
    assert got[local][0] == 250, got
    stored = inbox_when(st, local, 4)[3][1]
    assert header_fields(stored, b"Date") == []
    assert header_fields(stored, b"Message-ID") == []


def kill9(st, service):
    pid = int((st.dir / service / "pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_for(gone, timeout=10, what="%s to die" % service)


def test_restart_between_acceptance_and_delivery(relay_stack):
    """kill -9 of the backend with a message accepted (its local
    recipient already delivered, the remote one waiting for the
    smarthost): after the restart the remote copy goes out once and the
    local one is not delivered again."""
    st = relay_stack
    local, _ = st.new_user("local")
    msg = MSG.replace(b"<t1@", b"<restart@")
    submit(st, "sender@example.test", "pw-sender",
           [local, "far@remote.test"], msg)
    inbox_when(st, local, 1)
    wait_for(lambda: re.search(r"<%s> delivered" % re.escape(local),
                               queue_listing(st)),
             timeout=30, what="the local recipient marked delivered")
    kill9(st, "s1b1")
    st.start("s1b1")
    st.sink.start()
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    assert [m[1] for m in st.sink.messages] == [["far@remote.test"]]
    assert len(fetch_inbox(st, local)) == 1
    assert admin(st, "s1b1", "check", "--all").returncode == 0


# ---- quota through LMTP -----------------------------------------------------

def lmtp(st, rcpts, msg, mail_from="someone@remote.test"):
    """One LMTP transaction on the frontend; {rcpt: (code, text)}."""
    need(st, "SITE1_FE1_LMTP_PORT")
    with smtplib.LMTP(st.host, st["SITE1_FE1_LMTP_PORT"], timeout=30) as c:
        c.ehlo_or_helo_if_needed()
        code, text = c.mail(mail_from)
        assert code == 250, text
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, text)
        c.putcmd("data")
        code, text = c.getreply()
        assert code == 354, text
        q = smtplib.quotedata(msg.decode()).encode()
        if not q.endswith(b"\r\n"):
            q += b"\r\n"
        c.send(q + b".\r\n")
        out = {}
        for r in rcpts:
            out[r] = c.getreply()
        return out


@pytest.mark.parametrize("mode,code,status", [
    ("temporary", 452, b"4.2.2"), ("permanent", 552, b"5.2.2")])
def test_over_quota_through_lmtp(stack_factory, mode, code, status):
    """A recipient over quota gets 452 4.2.2 or 552 5.2.2 as
    transport.quota_failure says; the other recipient gets the message."""
    st = stack_factory("quota-" + mode, settings=[
        "backend.quota_messages=1", "transport.quota_failure=" + mode])
    full, _ = st.new_user("full")
    ok, _ = st.new_user("ok")
    assert lmtp(st, [full], MSG)[full][0] == 250
    got = lmtp(st, [full, ok], MSG)
    assert got[ok][0] == 250
    assert got[full][0] == code
    assert got[full][1].startswith(status + b" ")
    assert len(fetch_inbox(st, full)) == 1
    assert len(fetch_inbox(st, ok)) == 1


def test_lmtp_delivery_wakes_idle(stack):
    """A session in IDLE on the recipient's INBOX hears of the message
    delivered through LMTP at once (EXISTS), and fetches it whole."""
    need(stack, "SITE1_FE1_LMTP_PORT")
    user, _ = stack.new_user("idle")
    c = stack.imap(user)
    try:
        typ, data = c.select("INBOX")
        assert (typ, data) == ("OK", [b"0"])
        c.send(b"i1 IDLE\r\n")
        assert c.readline().startswith(b"+ ")
        got = lmtp(stack, [user], MSG, mail_from="far@remote.test")
        assert got[user][0] == 250, got
        assert c.readline() == b"* 1 EXISTS\r\n"
        c.send(b"DONE\r\n")
        line = c.readline()
        while not line.startswith(b"i1 "):
            line = c.readline()
        assert line.startswith(b"i1 OK"), line
    finally:
        c.logout()
    [(size, data)] = fetch_inbox(stack, user)
    assert data.startswith(b"Return-Path: <far@remote.test>\r\n"
                           b"Received: from ")
    assert b"\tfor <%s>;" % user.encode() in data
    assert data.endswith(b"\r\n" + MSG)


def mdb_put_raw(store_dir, db, records):
    text = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
    for k, v in records:
        text += " %s\n %s\n" % (k.hex(), v.hex())
    text += "DATA=END\n"
    subprocess.run(["mdb_load", "-s", db, str(store_dir)], input=text,
                   text=True, capture_output=True, timeout=30, check=True)


def test_check_queue_invariants(relay_stack):
    """portico-admin check --all: a queued message is consistent; a queue
    entry that does not parse and a message without an entry are
    violations."""
    st = relay_stack
    submit(st, "sender@example.test", "pw-sender", ["far@remote.test"], MSG)
    # retried every second or two: a listing may come after the second
    wait_for(lambda: re.search(r"attempts=[1-9]", queue_listing(st)),
             timeout=30, what="a first attempt")
    p = admin(st, "s1b1", "check", "--all")
    assert p.returncode == 0, p.stdout
    store = st.dir / "s1b1" / "store"
    mdb_put_raw(store, "queue", [((998).to_bytes(8, "big"), b"\xff\xff")])
    mdb_put_raw(store, "queuemsg", [((999).to_bytes(8, "big"), b"x")])
    p = admin(st, "s1b1", "check", "--all")
    out = p.stdout.decode()
    assert p.returncode == 1, out
    assert "VIOLATION queue 00000000000003E6: the entry does not parse" \
        in out, out
    assert "VIOLATION queuemsg 00000000000003E7: no queue entry" in out, out
    assert out.rstrip().endswith(": 2 violations"), out


def test_submission_to_full_mailbox(stack_factory):
    """Submitted mail for a recipient over quota: with quota_failure =
    temporary it stays queued (452 4.2.2 from LMTP, retried); with
    permanent the sender gets a DSN saying 5.2.2."""
    st = stack_factory("quota-submit", settings=[
        "backend.quota_messages=1", "transport.retry_first=1s",
        "transport.retry_max=1s"])
    full, _ = st.new_user("full")
    st.add_user("qsender@example.test", "pw-q")
    assert lmtp(st, [full], MSG)[full][0] == 250
    submit(st, "qsender@example.test", "pw-q", [full], MSG)
    wait_for(lambda: re.search(r"attempts=[2-9].*\n  <%s> pending 452 "
                               r"4\.2\.2 " % re.escape(full),
                               queue_listing(st)),
             timeout=30, what="two attempts answered 452 4.2.2")
    assert fetch_inbox(st, "qsender@example.test") == []
    # The same backend told to fail for good: the next attempt bounces.
    ini = st.dir / "s1b1" / "backend.ini"
    ini.write_text(ini.read_text() +
                   "\n[transport]\nquota_failure = permanent\n")
    st.stop("s1b1")
    st.start("s1b1")
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    [(size, raw)] = inbox_when(st, "qsender@example.test", 1)
    m, parts = dsn_parts(raw)
    [r] = [dict(b.items()) for b in parts[1].get_payload()][1:]
    assert r["Final-Recipient"] == "rfc822; " + full
    assert (r["Action"], r["Status"]) == ("failed", "5.2.2")
    assert r["Diagnostic-Code"].startswith("smtp; 552 5.2.2 ")
    assert len(fetch_inbox(st, full)) == 1


def test_delay_warning_once(stack_factory):
    """Still queued after transport.delay_warning: the sender is told
    once (Action: delayed, Will-Retry-Until), the queue keeps retrying,
    and the message goes out when the smarthost returns."""
    port = PortHold()
    st = stack_factory("delay", settings=[
        "transport.smarthost=127.0.0.1:%d" % port.port,
        "transport.smarthost_tls=none", "transport.retry_first=1s",
        "transport.retry_max=1s", "transport.delay_warning=2s"])
    sink = Sink(port)
    st.add_user("late@example.test", "pw-late")
    try:
        submit(st, "late@example.test", "pw-late", ["far@remote.test"],
               MSG, rcpt_options=["NOTIFY=DELAY,FAILURE"])
        [(size, raw)] = inbox_when(st, "late@example.test", 1)
        m, parts = dsn_parts(raw)
        assert m["Subject"] == "Delayed Mail (still being retried)"
        [r] = [dict(b.items()) for b in parts[1].get_payload()][1:]
        assert (r["Action"], r["Status"]) == ("delayed", "4.4.1")
        assert "Will-Retry-Until" in r
        assert parts[2].get_content_type() == "text/rfc822-headers"
        wait_for(lambda: re.search(r"attempts=[4-9]", queue_listing(st)),
                 timeout=30, what="more attempts")
        sink.start()
        wait_for(lambda: queue_empty(st), timeout=30,
                 what="the queue to empty")
        assert [x[1] for x in sink.messages] == [["far@remote.test"]]
        assert len(fetch_inbox(st, "late@example.test")) == 1
    finally:
        sink.stop()


def test_mail_loop_refused(stack):
    """A message that already carries more Received: fields than
    transport.max_hops is refused, not delivered."""
    user, _ = stack.new_user("loop")
    looped = b"".join(b"Received: from hop%d by hop%d; Mon, 23 Nov 2026 "
                      b"12:00:00 +0000\r\n" % (i, i + 1)
                      for i in range(51)) + MSG
    got = lmtp(stack, [user], looped)
    assert got[user][0] == 554 and got[user][1].startswith(b"5.4.6 "), got
    assert fetch_inbox(stack, user) == []


def test_smtputf8_not_sent_to_a_smarthost_without_it(relay_stack):
    """A smarthost that does not offer SMTPUTF8 does not get a message
    submitted with SMTPUTF8; the sender gets a 5.6.7 report."""
    st = relay_stack
    st.sink.stop()                  # lets its port go for this one
    st.sink = Sink(st.sink.port, str(st.dir / "certs" / "mail.pem"),
                   str(st.dir / "certs" / "mail.key"), utf8=False)
    st.sink.start()
    submit(st, "sender@example.test", "pw-sender", ["far@remote.test"], MSG,
           mail_options=["SMTPUTF8"])
    wait_for(lambda: queue_empty(st), timeout=30, what="the queue to empty")
    assert st.sink.messages == []
    [(size, raw)] = inbox_when(st, "sender@example.test", 1)
    m, parts = dsn_parts(raw)
    [r] = [dict(b.items()) for b in parts[1].get_payload()][1:]
    assert (r["Action"], r["Status"]) == ("failed", "5.6.7")
