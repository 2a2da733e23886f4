"""Faults: crashes, a cut link, a lost directory and a full store, with
nothing acknowledged lost (issue 9, faults).

Each test runs on a stack of its own (`stack_factory`), kills or stops a
daemon at a bad moment, restarts it, and then checks what clients were told
against what the store holds: every acknowledged message there exactly
once and byte for byte, nothing half-written visible, and `portico-admin
check --all` (the store's invariants) passing.

`kill -9` is the pid from the service's pid file; `stack.start()` brings the
service back on its ports.
"""

import imaplib
import os
import poplib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, wait_for

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD", REPO / "build"))

# What a client sees when its connection or session dies under it.
CONN_ERRORS = (imaplib.IMAP4.abort, OSError, EOFError, ssl.SSLError,
               poplib.error_proto)


# ---- helpers ---------------------------------------------------------------

def admin(st, *args, backend="s1b1", timeout=60):
    ini = st.dir / backend / "backend.ini"
    return subprocess.run([str(BUILD / "portico-admin"), "-c", str(ini)]
                          + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def assert_store_consistent(st, backend="s1b1"):
    """`portico-admin check --all` must pass (it reads a snapshot, so the
    backend may run)."""
    p = admin(st, "check", "--all", backend=backend)
    assert p.returncode == 0, (
        "portico-admin check --all exited %d:\n%s%s\n--- backend log:\n%s"
        % (p.returncode, p.stdout, p.stderr, st.log(backend)[-4000:]))
    assert "consistent" in p.stdout, p.stdout
    return p.stdout


def pid_of(st, service):
    return int((st.dir / service / "pid").read_text().strip())


def alive(pid):
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


def kill9(st, service):
    """SIGKILL SERVICE (no goodbye, no flush) and wait until it is gone."""
    pid = pid_of(st, service)
    assert alive(pid), "%s (pid %d) is not running" % (service, pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), timeout=10, what="%s to die" % service)
    return pid


def wait_until_served(st, users, timeout=30, in_a_row=8):
    """After a restart: wait until logins of USERS succeed IN_A_ROW times
    in a row.  One success is not enough: each frontend worker has links
    of its own and finds the backend again on its own schedule, so until
    all have, a login may still get NO [UNAVAILABLE] (a clean temporary
    answer)."""
    deadline = time.monotonic() + timeout
    ok = 0
    last = None
    while ok < in_a_row:
        u, p = users[ok % len(users)]
        try:
            c = st.imap(u, p, timeout=10)
            typ, last = c.select("INBOX", readonly=True)
            c.logout()
            ok = ok + 1 if typ == "OK" else 0
        except (imaplib.IMAP4.error,) + CONN_ERRORS as e:
            last = e
            ok = 0
            time.sleep(0.1)
        assert time.monotonic() < deadline, (
            "no steady service %gs after the restart: %r" % (timeout, last))


def message(mid, filler=0):
    """A message whose Message-ID, subject and body all carry MID."""
    body = "Body of %s.\r\n" % mid
    if filler:
        # Not compressible into a shared body: every line names the id.
        line = ("%s " % mid) * 4
        body += "".join("%06d %s\r\n" % (i, line)
                        for i in range(filler // (len(line) + 9) + 1))
    return ("From: Fault Injector <faults@example.test>\r\n"
            "To: Victim <victim@example.test>\r\n"
            "Subject: %s\r\n"
            "Message-ID: <%s>\r\n"
            "Date: Mon, 23 Nov 2026 08:00:00 +0000\r\n"
            "\r\n%s" % (mid, mid, body)).encode()


MID_RE = re.compile(rb"^Message-ID:\s*<([^>]*)>", re.I | re.M)


def mailbox_contents(st, user, password, mailbox="INBOX"):
    """{message-id: [full bytes, ...]} of MAILBOX, read over IMAP."""
    c = st.imap(user, password, timeout=30)
    try:
        typ, data = c.select(mailbox, readonly=True)
        assert typ == "OK", data
        out = {}
        if int(data[0]) == 0:
            return out
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            raw = item[1]
            m = MID_RE.search(raw)
            assert m, "a message without a Message-ID: %r" % raw[:300]
            out.setdefault(m.group(1).decode(), []).append(raw)
        return out
    finally:
        try:
            c.logout()
        except CONN_ERRORS:
            pass


def append_one(c, mid, filler=0, mailbox="INBOX"):
    """APPEND one message; (typ, data) of the tagged response."""
    return c.append(mailbox, None, None, message(mid, filler))


# ---- portico-admin check ------------------------------------------------------

def mdb_records(store_dir, db):
    """[(key, value)] of database DB, read with mdb_dump (lmdb-utils)."""
    out = subprocess.run(["mdb_dump", "-s", db, str(store_dir)],
                         capture_output=True, text=True, timeout=30,
                         check=True).stdout
    lines = out.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    items = [bytes.fromhex(x.strip()) for x in lines.splitlines()]
    return list(zip(items[0::2], items[1::2]))


def mdb_put_raw(store_dir, db, records):
    """Writes raw (key, value) records into DB with mdb_load: what a bug
    in the store could leave behind."""
    text = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
    for k, v in records:
        text += " %s\n %s\n" % (k.hex(), v.hex())
    text += "DATA=END\n"
    subprocess.run(["mdb_load", "-s", db, str(store_dir)], input=text,
                   text=True, capture_output=True, timeout=30, check=True)


@pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v mdb_load"],
                                   capture_output=True).returncode != 0,
                    reason="mdb_load (lmdb-utils) is not installed")
def test_check_finds_crafted_violations(stack_factory):
    st = stack_factory(name="faults-check")
    u, p = st.new_user("checked")
    c = st.imap(u, p)
    for i in range(2):
        typ, data = append_one(c, "checked-%d@faults.test" % i)
        assert typ == "OK", data
    # a third with bare LF line ends (the literal as is: imaplib's
    # append() would turn them into CRLF)
    c.literal = b"Subject: bare\nMessage-ID: <bare@faults.test>\n\nbody\n"
    typ, data = c._simple_command("APPEND", "INBOX")
    assert typ == "OK", data
    c.logout()
    assert_store_consistent(st)
    store = st.dir / "s1b1" / "store"
    refs = mdb_records(store, "bodyrefs")
    assert len(refs) == 3 and refs[0][1] == (1).to_bytes(4, "little")
    # A reference count off by one, an orphan body, and an INBOX whose
    # message counter disagrees with its messages.
    body_id = refs[0][0]
    mdb_put_raw(store, "bodyrefs", [(body_id, (2).to_bytes(4, "little"))])
    mdb_put_raw(store, "bodies", [((999).to_bytes(8, "big"), b"orphan")])
    inbox = [(k, v) for k, v in mdb_records(store, "mailboxes")
             if k.endswith(b"INBOX")]
    assert len(inbox) == 1
    k, v = inbox[0]
    # struct store_mailbox_rec: messages is the u32 at offset 24.
    v = v[:24] + (7).to_bytes(4, "little") + v[28:]
    mdb_put_raw(store, "mailboxes", [(k, v)])
    # struct store_msg_rec: flags is the u32 at offset 48.  The message
    # with bare LFs marked as having none (STORE_F_CRLF, bit 31), and the
    # first one with a flag bit nothing defines.
    mbox_id = int.from_bytes(inbox[0][1][:8], "little")
    msgs = [(k, v) for k, v in mdb_records(store, "messages")
            if k[:8] == mbox_id.to_bytes(8, "big")]
    assert len(msgs) == 3
    flags = [int.from_bytes(v[48:52], "little") for _, v in msgs]
    assert flags[0] & (1 << 31) and not flags[2] & (1 << 31), flags
    crafted = []
    for i, bit in ((2, 1 << 31), (0, 1 << 20)):
        k, v = msgs[i]
        crafted.append((k, v[:48] + (flags[i] | bit).to_bytes(4, "little")
                        + v[52:]))
    mdb_put_raw(store, "messages", crafted)
    # Quota records: one of a user number that does not exist, and the
    # user's own cut short.
    users = mdb_records(store, "users")
    assert len(users) == 1
    # struct store_user_rec: user_num is the u64 at offset 8.
    user_num = int.from_bytes(users[0][1][8:16], "little")
    mdb_put_raw(store, "meta", [
        (b"q" + (999999).to_bytes(8, "big"), bytes(24)[:16] +
         (1).to_bytes(8, "big")),
        (b"q" + user_num.to_bytes(8, "big"), bytes(16)),
        # last login records: of no user, and one cut short
        (b"l" + (999998).to_bytes(8, "big"), bytes(8)),
        (b"l" + user_num.to_bytes(8, "big"), bytes(4)),
        # quota warning levels: of no user, and one too long
        (b"w" + (999997).to_bytes(8, "big"), (50).to_bytes(4, "big")),
        (b"w" + user_num.to_bytes(8, "big"), bytes(8)),
        # senders an automatic reply answered: of no user, and one entry
        # cut short
        (b"r" + (999996).to_bytes(8, "big"), bytes(16)),
        (b"r" + user_num.to_bytes(8, "big"), bytes(24))])

    r = admin(st, "check", "--all")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "body=%d: reference count 2, 1 messages point at it" % \
        int.from_bytes(body_id, "big") in out, out
    assert "mailbox=INBOX: messages counter 7, the mailbox holds 3" in out, \
        out
    uid1 = int.from_bytes(msgs[0][0][8:12], "big")
    uid3 = int.from_bytes(msgs[2][0][8:12], "big")
    assert "uid %d: marked as having no bare LF, but body %d has some" % (
        uid3, int.from_bytes(msgs[2][1][:8], "little")) in out, out
    assert "uid %d has unknown flag bits %#x" % (
        uid1, flags[0] | (1 << 20)) in out, out
    # The orphan is found from every side.
    for what in ("no reference count", "orphan body: no message points at "
                 "it", "body id is not below the next id",
                 "no bodyhash entry"):
        assert "body=999: " + what in out, out
    assert "quota record of user number 999999, which does not exist" \
        in out, out
    assert "user=%s: quota record: " % users[0][0].decode() in out, out
    assert "last login record of user number 999998, which does not " \
        "exist" in out, out
    assert "last login record of user number %d of 4 bytes" % user_num \
        in out, out
    assert "quota warning record of user number 999997, which does " \
        "not exist" in out, out
    assert "quota warning record of user number %d of 8 bytes" % user_num \
        in out, out
    assert "automatic reply record of user number 999996, which does " \
        "not exist" in out, out
    assert "automatic reply record of user number %d of 24 bytes" % \
        user_num in out, out
    assert out.count("VIOLATION") == 16, out
    assert out.rstrip().endswith(": 16 violations"), out


def test_check_after_multi_message_operations(stack_factory):
    """Operations that touch several messages at once (an mbox import, a
    STORE on a range) leave the store consistent.

    Fails today: messages changed in one operation share a modseq, and the
    modseqs index (key mbox_id | modseq, one uid) keeps only the last of
    them, so QRESYNC's SELECT reports only that one (store_ops.c
    msg_put)."""
    st = stack_factory(name="faults-multi")
    u, p = st.new_user("multi")
    mbox = b"".join(b"From faults@example.test Mon Nov 23 08:00:00 2026\n"
                    + message("multi-%d@faults.test" % i).replace(
                        b"\r\n", b"\n") + b"\n" for i in range(3))
    st.import_message(u, mbox)
    c = st.imap(u, p)
    assert c.select("INBOX")[0] == "OK"
    typ, data = c.store("1:2", "+FLAGS.SILENT", r"(\Flagged)")
    assert typ == "OK", data
    c.logout()
    assert_store_consistent(st)


# ---- kill -9 of a backend during APPENDs ------------------------------------

class Appender(threading.Thread):
    """One client APPENDing a stream of messages until told to stop or its
    connection dies; records what the server answered to each."""

    def __init__(self, st, user, password, prefix):
        super().__init__(daemon=True)
        self.st, self.user, self.password = st, user, password
        self.prefix = prefix
        self.acked = []      # tagged OK
        self.refused = []    # (mid, tagged NO/BAD text)
        self.in_flight = []  # sent, no tagged answer: the link died
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            c = self.st.imap(self.user, self.password, timeout=30)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = "login: %r" % e
            return
        i = 0
        while not self.stop.is_set():
            mid = "%s-%d@faults.test" % (self.prefix, i)
            i += 1
            try:
                typ, data = append_one(c, mid)
            except CONN_ERRORS as e:
                self.in_flight.append((mid, repr(e)))
                return
            except imaplib.IMAP4.error as e:  # BAD
                self.refused.append((mid, repr(e)))
                continue
            if typ == "OK":
                self.acked.append(mid)
            else:
                self.refused.append((mid, repr(data)))
        try:
            c.logout()
        except CONN_ERRORS:
            pass


def test_backend_kill9_during_appends(stack_factory):
    st = stack_factory(name="faults-append")
    users = [st.new_user("appender"), st.new_user("appender")]
    clients = [Appender(st, u, p, "c%d" % i)
               for i, (u, p) in enumerate(users * 2)]
    for a in clients:
        a.start()
    # Let a stream build up, then pull the plug in the middle of it.
    wait_for(lambda: sum(len(a.acked) for a in clients) >= 40, timeout=60,
             what="40 acknowledged APPENDs")
    kill9(st, "s1b1")
    for a in clients:
        a.stop.set()
    for a in clients:
        a.join(timeout=40)
        assert not a.is_alive(), (
            "a client still waits for an answer 40 s after the backend "
            "died")
        assert a.error is None, a.error
    st.start("s1b1")
    wait_until_served(st, users)

    total_acked = sum(len(a.acked) for a in clients)
    print("APPENDs around kill -9: %d acknowledged, in flight: %s" % (
        total_acked, [x for a in clients for x in a.in_flight]))
    for user, password in users:
        mine = [a for a in clients if a.user == user]
        acked = [m for a in mine for m in a.acked]
        in_flight = {m for a in mine for m, _ in a.in_flight}
        refused = {m for a in mine for m, _ in a.refused}
        have = mailbox_contents(st, user, password)
        for mid in acked:
            assert mid in have, (
                "acknowledged APPEND %s lost after kill -9 (%d acked in "
                "all)\n--- backend log:\n%s"
                % (mid, total_acked, st.log("s1b1")[-3000:]))
        for mid, copies in have.items():
            assert len(copies) == 1, "%s stored %d times" % (mid,
                                                              len(copies))
            assert copies[0] == message(mid), (
                "%s is not what was sent (half-written?)" % mid)
            assert mid in acked or mid in in_flight, (
                "%s is in the mailbox but was %s" % (
                    mid, "refused" if mid in refused else "never sent"))
        for mid in refused:
            assert mid not in have, (
                "%s was refused with NO but is stored" % mid)
        print("%s: %d stored, of them in flight at the kill: %s" % (
            user, len(have), sorted(in_flight & set(have))))
    assert_store_consistent(st)
    # And the restarted backend takes mail again.
    u, p = users[0]
    c = st.imap(u, p)
    typ, data = append_one(c, "after-restart@faults.test")
    assert typ == "OK", data
    c.logout()
    assert_store_consistent(st)


# ---- kill -9 of a backend during POP3 QUITs ---------------------------------

POP3_MESSAGES = 5
POP3_MARKED = 3      # DELE 1..3 in every session


def test_backend_kill9_during_pop3_quits(stack_factory):
    st = stack_factory(name="faults-pop3")
    users = [st.new_user("popper") for _ in range(10)]
    for u, p in users:
        c = st.imap(u, p)
        for i in range(1, POP3_MESSAGES + 1):
            # One APPEND per message: each has a modseq of its own.
            typ, data = append_one(c, "%s-m%d" % (u.split("@")[0], i))
            assert typ == "OK", data
        c.logout()
    assert_store_consistent(st)

    sessions = []
    for u, p in users:
        c = st.pop3(u, p, timeout=30)
        for i in range(1, POP3_MARKED + 1):
            assert c.dele(i).startswith(b"+OK")
        sessions.append(c)

    outcome = [None] * len(sessions)
    start = threading.Barrier(len(sessions) + 1)

    def quit_later(i, c):
        start.wait()
        time.sleep(0.03 * i)     # QUITs spread over 300 ms
        try:
            resp = c.quit()
            outcome[i] = ("ok", resp) if resp.startswith(b"+OK") \
                else ("err", resp)
        except CONN_ERRORS as e:
            outcome[i] = ("lost", repr(e))

    threads = [threading.Thread(target=quit_later, args=(i, c), daemon=True)
               for i, c in enumerate(sessions)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(0.13)             # in the middle of the QUITs
    kill9(st, "s1b1")
    for t in threads:
        t.join(timeout=40)
        assert not t.is_alive(), "a POP3 client hangs after the backend died"
    st.start("s1b1")
    wait_until_served(st, users)

    kept = ["m%d" % i for i in range(POP3_MARKED + 1, POP3_MESSAGES + 1)]
    marked = ["m%d" % i for i in range(1, POP3_MARKED + 1)]
    seen = {"ok": 0, "not ok, updated": 0, "not ok, untouched": 0}
    for (u, p), (what, detail) in zip(users, outcome):
        local = u.split("@")[0]
        have = {mid[len(local) + 1:] for mid in mailbox_contents(st, u, p)}
        for mid in kept:
            assert mid in have, "%s: unmarked %s lost (%s %r)" % (
                u, mid, what, detail)
        if what == "ok":
            seen["ok"] += 1
            assert not have & set(marked), (
                "%s: QUIT answered +OK but %s are still there" % (
                    u, sorted(have & set(marked))))
        else:
            # No +OK: the update did not happen.  It may have committed
            # just before the backend died and the +OK been lost with it
            # (no server can rule that out); then it happened whole.
            gone = set(marked) - have
            assert not gone or gone == set(marked), (
                "%s: QUIT without +OK (%s %r) and a partial update: %s "
                "gone" % (u, what, detail, sorted(gone)))
            seen["not ok, updated" if gone else "not ok, untouched"] += 1
    print("POP3 QUIT outcomes around kill -9:", seen)
    assert seen["ok"] + seen["not ok, updated"] + \
        seen["not ok, untouched"] == len(users)
    assert_store_consistent(st)


# ---- kill -9 of a backend during SMTP submissions ----------------------------

SMTP_CONN_ERRORS = (smtplib.SMTPServerDisconnected, OSError, ssl.SSLError)
QUEUED_RE = re.compile(r"queued as ([0-9A-F]{16})")


class Submitter(threading.Thread):
    """One client submitting a stream of messages (MAIL FROM, RCPT TO each
    recipient, DATA) in one authenticated session, over STARTTLS on the
    submission port or implicit TLS on the submissions port, until told to
    stop or its connection dies; records what the server answered to
    each."""

    def __init__(self, st, user, password, rcpts, prefix, implicit_tls):
        super().__init__(daemon=True)
        self.st, self.user, self.password = st, user, password
        self.rcpts, self.prefix = rcpts, prefix
        self.implicit_tls = implicit_tls
        self.acked = []      # (mid, queue id): 250 after the content
        self.unacked = []    # (mid, reply or error): the content was sent,
        #                      no 250 (a 4xx, or the connection died)
        self.not_sent = []   # (mid, reply or error): refused before DATA
        self.error = None
        self.stop = threading.Event()

    def connect(self):
        ctx = self.st.ssl_context()
        if self.implicit_tls:
            s = smtplib.SMTP_SSL(self.st.host, self.st["SUBMISSIONS_PORT"],
                                 context=ctx, timeout=30)
        else:
            s = smtplib.SMTP(self.st.host, self.st["SUBMISSION_PORT"],
                             timeout=30)
            s.starttls(context=ctx)
        s.login(self.user, self.password)
        return s

    def run(self):
        try:
            s = self.connect()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = "login: %r" % e
            return
        i = 0
        while not self.stop.is_set():
            mid = "%s-%d@faults.test" % (self.prefix, i)
            i += 1
            data_sent = False
            try:
                code, text = s.mail(self.user)
                for r in self.rcpts:
                    if code != 250:
                        break
                    code, text = s.rcpt(r)
                if code != 250:
                    self.not_sent.append((mid, (code, text)))
                    s.rset()
                    continue
                data_sent = True
                code, text = s.data(message(mid))
            except smtplib.SMTPDataError as e:   # DATA itself refused
                self.not_sent.append((mid, (e.smtp_code, e.smtp_error)))
                try:
                    s.rset()
                except SMTP_CONN_ERRORS:
                    return
                continue
            except SMTP_CONN_ERRORS as e:
                (self.unacked if data_sent else self.not_sent).append(
                    (mid, repr(e)))
                return
            if code == 250:
                m = QUEUED_RE.search(text.decode(errors="replace"))
                assert m, text
                self.acked.append((mid, m.group(1)))
            else:
                self.unacked.append((mid, (code, text)))
                try:
                    s.rset()
                except SMTP_CONN_ERRORS:
                    return
        try:
            s.quit()
        except SMTP_CONN_ERRORS + (smtplib.SMTPException,):
            pass


def queue_length(st, backend):
    p = admin(st, "queue", backend=backend)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"^(\d+) queued$", p.stdout, re.M)
    assert m, p.stdout
    return int(m.group(1))


def test_backend_kill9_during_submissions(stack_factory):
    """kill -9 of the senders' backend (which holds the queue, and the
    mailbox of one recipient) in the middle of a stream of submissions to
    a recipient on it and one on another backend.  After the restart and
    once the queue has drained, every message that got 250 is in both
    INBOXes, whole; one that got no 250 is there at most once; one refused
    before its content was sent is nowhere; no failure report; `check
    --all` passes on both backends.

    The 250 comes after the queue entry's commit, so the kill can lose no
    acknowledged message (a backend that answered before its commit fails
    here: the last messages acknowledged before the kill are missing).

    Exactly once: a recipient whose LMTP 250 came before the kill, and
    whose new state was not yet committed, is sent again after the
    restart - with a stream under way that window is not milliseconds,
    up to transport.concurrency attempts are in it at once - but under the
    same delivery id (XDELIVERYID), which the recipient's backend recorded
    with the message: it answers 250 without storing a second copy.  Any
    message found twice fails (before delivery ids, 1 to 8 per run did).
    """
    st = stack_factory(name="faults-submit", backends_per_site=2,
                       settings=["transport.retry_first=1s",
                                 "transport.retry_max=2s"])
    senders = [st.new_user("submitter"), st.new_user("submitter")]
    near = st.new_user("near")                      # on s1b1, with the queue
    far = st.new_user("far", backend=2)             # on s1b2
    rcpts = [near[0], far[0]]
    clients = [Submitter(st, u, p, rcpts, "s%d" % i, implicit_tls=i % 2)
               for i, (u, p) in enumerate(senders * 2)]
    for c in clients:
        c.start()
    wait_for(lambda: sum(len(c.acked) for c in clients) >= 40, timeout=60,
             interval=0.01, what="40 acknowledged submissions")
    kill9(st, "s1b1")
    log_at_kill = st.log("s1b1")
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(timeout=40)
        assert not c.is_alive(), (
            "a client still waits for an answer 40 s after the backend "
            "died")
        assert c.error is None, c.error
    st.start("s1b1")
    wait_until_served(st, senders + [near])
    wait_for(lambda: queue_length(st, "s1b1") == 0, timeout=60,
             interval=0.5, what="the queue to drain after the restart")

    acked = dict(m for c in clients for m in c.acked)
    unacked = {m for c in clients for m, _ in c.unacked}
    not_sent = {m for c in clients for m, _ in c.not_sent}
    # Queue ids whose delivery was under way at the kill: an attempt
    # logged, the entry not removed.
    started = set(re.findall(r"queue=([0-9A-F]{16}) attempt=", log_at_kill))
    removed = set(re.findall(r"queue=([0-9A-F]{16}) removed", log_at_kill))
    under_way = started - removed
    print("submissions around kill -9: %d acknowledged, %d without 250, "
          "%d refused before DATA; deliveries under way at the kill: %d"
          % (len(acked), len(unacked), len(not_sent), len(under_way)))
    for user, password in (near, far):
        have = mailbox_contents(st, user, password)
        for mid, qid in acked.items():
            assert mid in have, (
                "%s: acknowledged submission %s (queue id %s) lost after "
                "kill -9 (%d acked in all)\n--- backend log:\n%s"
                % (user, mid, qid, len(acked), st.log("s1b1")[-3000:]))
        for mid, copies in have.items():
            assert mid in acked or mid in unacked, (
                "%s: %s delivered but %s" % (
                    user, mid, "refused before DATA" if mid in not_sent
                    else "never sent"))
            for raw in copies:
                assert raw.endswith(b"\r\n" + message(mid)), (
                    "%s: %s is not what was sent (half-written?): %r"
                    % (user, mid, raw[-300:]))
            assert len(copies) == 1, (
                "%s: %s delivered %d times (queue id %s; under way at the "
                "kill: %s)" % (user, mid, len(copies), acked.get(mid),
                               sorted(under_way)))
        print("%s: %d delivered, of them without 250: %s" % (
            user, len(have), sorted(unacked & set(have))))
    # Retries the recipients' backends recognised (their second LMTP
    # reply said so instead of storing a copy).
    print("retries answered as already delivered:",
          sum(len(re.findall(r"delivery=\S+ duplicate", st.log(b)))
              for b in ("s1b1", "s1b2")))
    # Nothing failed, so the senders got no report.
    for user, password in senders:
        assert mailbox_contents(st, user, password) == {}, (
            "%s got a delivery report" % user)
    for backend in ("s1b1", "s1b2"):
        assert_store_consistent(st, backend=backend)
    # And the restarted backend takes submissions again.
    s = smtplib.SMTP_SSL(st.host, st["SUBMISSIONS_PORT"],
                         context=st.ssl_context(), timeout=30)
    s.login(*senders[0])
    assert s.sendmail(senders[0][0], rcpts,
                      message("submit-after@faults.test")) == {}
    s.quit()
    for user, password in (near, far):
        wait_for(lambda: "submit-after@faults.test" in mailbox_contents(
            st, user, password), timeout=30, interval=0.3,
            what="the submission after the restart")


# ---- the link cut: kill -9 of the frontend ----------------------------------

def test_frontend_kill9_cuts_sessions_cleanly(stack_factory):
    st = stack_factory(name="faults-link")
    u, p = st.new_user("linkcut")
    c = st.imap(u, p)
    for i in range(3):
        typ, data = append_one(c, "linkcut-%d@faults.test" % i)
        assert typ == "OK", data
    c.logout()

    imaps = []
    for _ in range(4):
        c = st.imap(u, p, timeout=10)
        assert c.select("INBOX")[0] == "OK"
        imaps.append(c)
    pop = st.pop3(u, p, timeout=10)
    assert pop.dele(1).startswith(b"+OK")     # marked, never QUIT
    backend_pid = pid_of(st, "s1b1")

    kill9(st, "s1f1")
    # Every client sees its connection end at once, not a hang.
    for c in imaps:
        t0 = time.monotonic()
        with pytest.raises(CONN_ERRORS):
            c.noop()
        assert time.monotonic() - t0 < 5
    t0 = time.monotonic()
    with pytest.raises(CONN_ERRORS):
        pop.stat()
    assert time.monotonic() - t0 < 5

    st.start("s1f1")
    wait_until_served(st, [(u, p)])
    assert alive(backend_pid) and pid_of(st, "s1b1") == backend_pid, (
        "the backend died with the link:\n" + st.log("s1b1")[-3000:])
    # The backend dropped the orphaned sessions: the POP3 DELE without
    # QUIT is forgotten, the mailbox is whole and takes new sessions.
    have = mailbox_contents(st, u, p)
    assert sorted(have) == ["linkcut-%d@faults.test" % i for i in range(3)]
    pop = st.pop3(u, p)
    count, _ = pop.stat()
    assert count == 3
    pop.quit()
    c = st.imap(u, p)
    typ, data = append_one(c, "linkcut-after@faults.test")
    assert typ == "OK", data
    c.logout()
    assert_store_consistent(st)


# ---- the link reset under live sessions --------------------------------------

def reset_links(st, backend="s1b1"):
    """Destroy every TCP connection to BACKEND's link port (ss -K: the
    kernel aborts the sockets and resets the peer), as a firewall or a
    network fault would; both daemons keep running.  Returns how many
    sockets were destroyed."""
    port = int(st["SITE1_BE1_LINK_PORT"])
    p = subprocess.run(["ss", "-K", "-t", "state", "established", "dst",
                        "127.0.0.1", "dport", "=", str(port)],
                       capture_output=True, text=True, timeout=10)
    return sum(1 for line in p.stdout.splitlines()
               if ":%d" % port in line)


def test_link_reset_amid_sessions(stack_factory):
    st = stack_factory(name="faults-reset")
    u, p = st.new_user("reset")
    watcher_u, watcher_p = st.new_user("reset")
    appenders = [Appender(st, u, p, "r%d" % i) for i in range(2)]
    for a in appenders:
        a.start()
    watcher = st.imap(watcher_u, watcher_p, timeout=10)
    assert watcher.select("INBOX")[0] == "OK"
    wait_for(lambda: sum(len(a.acked) for a in appenders) >= 20,
             timeout=60, what="20 acknowledged APPENDs")
    frontend_pid, backend_pid = pid_of(st, "s1f1"), pid_of(st, "s1b1")

    assert reset_links(st) >= 1
    # Clients on the cut link are told at once, with BYE [UNAVAILABLE],
    # not left hanging.
    t0 = time.monotonic()
    with pytest.raises(CONN_ERRORS):
        watcher.noop()
    assert time.monotonic() - t0 < 5
    assert b"UNAVAILABLE" in b" ".join(
        watcher.untagged_responses.get("BYE", [b""])), \
        watcher.untagged_responses
    for a in appenders:
        a.stop.set()
    for a in appenders:
        a.join(timeout=30)
        assert not a.is_alive() and a.error is None, a.error

    # Neither daemon died; the link comes back by itself.
    assert alive(frontend_pid) and alive(backend_pid)
    wait_until_served(st, [(u, p), (watcher_u, watcher_p)])
    assert pid_of(st, "s1f1") == frontend_pid
    assert pid_of(st, "s1b1") == backend_pid

    acked = [m for a in appenders for m in a.acked]
    in_flight = {m for a in appenders for m, _ in a.in_flight}
    have = mailbox_contents(st, u, p)
    for mid in acked:
        assert mid in have, "acknowledged APPEND %s lost" % mid
    for mid, copies in have.items():
        assert len(copies) == 1 and copies[0] == message(mid), mid
        assert mid in acked or mid in in_flight, mid
    assert_store_consistent(st)
    c = st.imap(u, p)
    typ, data = append_one(c, "reset-after@faults.test")
    assert typ == "OK", data
    c.logout()


# ---- slapd stopped and restarted during logins ------------------------------

def login_result(st, user, password):
    """'ok', or the text of the refusal, of one fresh IMAP login."""
    try:
        c = st.imap(timeout=20)
    except CONN_ERRORS as e:
        return "connect: %r" % e
    try:
        c.login(user, password)
        return "ok"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        try:
            c.logout()
        except CONN_ERRORS + (imaplib.IMAP4.error,):
            pass


def test_slapd_restart_during_logins(stack_factory):
    st = stack_factory(name="faults-ldap")
    warm = st.new_user("ldapwarm")
    fresh = [st.new_user("ldapfresh") for _ in range(3)]
    never = st.new_user("ldapnever")   # first login during the outage
    # A session that is already in needs no directory.
    c = st.imap(*warm)
    assert c.select("INBOX")[0] == "OK"

    results = []
    stop = threading.Event()

    def login_loop():
        i = 0
        while not stop.is_set():
            u, p = fresh[i % len(fresh)]
            i += 1
            t0 = time.monotonic()
            r = login_result(st, u, p)
            results.append((r, time.monotonic() - t0))
            time.sleep(0.05)

    t = threading.Thread(target=login_loop, daemon=True)
    t.start()
    time.sleep(0.5)
    st.stop("ldap")
    time.sleep(1.0)
    # While the directory is gone: a login the frontend cannot have cached
    # is refused as temporary (not as bad credentials); the open session
    # goes on.
    during = login_result(st, *never)
    assert "[UNAVAILABLE]" in during, during
    assert c.noop()[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    st.start("ldap")
    # The frontend finds the directory again by itself.
    wait_for(lambda: results and results[-1][0] == "ok", timeout=30,
             what="logins to work again after slapd came back")
    stop.set()
    t.join(timeout=30)
    c.logout()

    bad = [(r, d) for r, d in results
           if r != "ok" and "[UNAVAILABLE]" not in r]
    assert not bad, "logins around the outage got other than OK or " \
        "NO [UNAVAILABLE]: %r" % bad[:5]
    assert max(d for _, d in results) < 20, "a login hung"
    # The temporary failure was not remembered as a bad password.
    st.wait_for_login(*never, timeout=10)
    for u, p in fresh:
        st.wait_for_login(u, p, timeout=10)
    # The frontend's log names the failure as the socket saw it (libuv
    # reports a refused connect as EBADF).
    errors = re.findall(r'ldap uri=\S+ error="([^"]*)"', st.log("s1f1"))
    assert errors, st.log("s1f1")[-3000:]
    assert not [e for e in errors if "descriptor" in e], errors
    assert any("refused" in e.lower() for e in errors), errors


# ---- the LMDB map fills up ---------------------------------------------------

FILLER = 100 * 1024


def test_store_map_full(stack_factory):
    st = stack_factory(name="faults-full",
                       settings=["backend.store_map_size=2M"])
    u, p = st.new_user("filler")
    c = st.imap(u, p, timeout=30)
    stored = []
    answer = None
    for i in range(100):
        mid = "fill-%d@faults.test" % i
        typ, data = append_one(c, mid, filler=FILLER)
        if typ != "OK":
            answer = (typ, data)
            break
        stored.append(mid)
    assert answer is not None, "100 x 100 kB fit in a 2 MB map?"
    assert stored, "not even one message fits"
    typ, data = answer
    text = data[0].decode(errors="replace")
    assert typ == "NO" and "[LIMIT]" in text and "full" in text, answer
    # The session and the store are fine; what was stored is intact.
    assert c.noop()[0] == "OK"
    have = mailbox_contents(st, u, p)
    assert sorted(have) == sorted(stored)
    for mid in stored:
        assert have[mid] == [message(mid, FILLER)], mid
    assert_store_consistent(st)

    # Expunge half: appends work again.
    assert c.select("INBOX")[0] == "OK"
    half = len(stored) // 2 or 1
    typ, data = c.store("1:%d" % half, "+FLAGS.SILENT", r"(\Deleted)")
    assert typ == "OK", data
    typ, data = c.expunge()
    assert typ == "OK", (typ, data)
    gone, stored = stored[:half], stored[half:]
    typ, data = append_one(c, "after-expunge@faults.test", filler=FILLER)
    assert typ == "OK", (typ, data)
    stored.append("after-expunge@faults.test")
    c.logout()
    have = mailbox_contents(st, u, p)
    assert sorted(have) == sorted(stored)
    assert_store_consistent(st)
