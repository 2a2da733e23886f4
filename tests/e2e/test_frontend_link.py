"""The frontend-backend link: per-session flow control (a client that
stops reading in the middle of a 50 MB FETCH does not slow another on
the same link), and a backend that goes away and comes back.

A stack of its own: the 50 MB message and the backend restarts stay out
of the shared one.
"""

import imaplib
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (backend_metric, metric, raw_client, read_until_tagged,
                      sigstop, wait_for)

pytestmark = pytest.mark.daemons

BIG = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def st(stack_factory):
    # One event loop, so that both clients are on the same link.
    return stack_factory(name="link", settings=["frontend.workers=1"])


def big_message():
    line = b"x" * 98 + b"\r\n"
    head = b"From: big@example.test\r\nSubject: fifty megabytes\r\n\r\n"
    body = line * ((BIG - len(head)) // len(line))
    return head + body


def test_stalled_reader_does_not_slow_the_link(st):
    big_user, big_pw = st.new_user("big")
    msg = big_message()
    st.import_message(big_user, msg)
    small_user, small_pw = st.new_user("small")
    for i in range(3):
        st.import_message(small_user, b"Subject: small %d\r\n\r\nhi\r\n" % i)

    # Client A: asks for the whole 50 MB and reads nothing.
    # (Default socket buffers: far smaller than 50 MB.  A tiny receive
    # buffer would make the final read crawl through delayed ACKs.)
    s = socket.create_connection((st.host, st.IMAPS_PORT), timeout=30)
    a = st.ssl_context().wrap_socket(s, server_hostname=st.host)
    af = a.makefile("rb")
    assert af.readline().startswith(b"* OK")
    a.sendall(b"a1 LOGIN %s %s\r\na2 EXAMINE INBOX\r\n"
              % (big_user.encode(), big_pw.encode()))
    read_until_tagged(af, b"a2")
    a.sendall(b"a3 FETCH 1 BODY.PEEK[]\r\n")
    time.sleep(1)  # let the backend fill what the link lets through

    # Client B, same frontend and backend, so the same link: business as
    # usual, within a generous bound.
    t0 = time.monotonic()
    for _ in range(5):
        c = st.imap(small_user, small_pw)
        assert c.select("INBOX", readonly=True) == ("OK", [b"3"])
        for n in (1, 2, 3):
            typ, data = c.fetch(str(n), "(BODY.PEEK[])")
            assert typ == "OK" and b"small %d" % (n - 1) in data[0][1]
        c.logout()
    assert time.monotonic() - t0 < 30

    # A was only held back: it still gets every byte.
    a.settimeout(120)
    first = af.readline()
    assert first.startswith(b"* 1 FETCH (BODY[] {%d}" % len(msg)), first
    got = af.read(len(msg))
    assert got == msg
    rest = read_until_tagged(af, b"a3")
    assert rest[-1].startswith(b"a3 OK"), rest
    a.close()


def test_backend_loss_and_return(st):
    user, pw = st.new_user("loss")
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    s, f = raw_client(st, st.POP3S_PORT, tls=True)
    assert f.readline().startswith(b"+OK")
    other, other_pw = st.new_user("loss2")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (other.encode(),
                                           other_pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    st.stop("s1b1")
    try:
        # The POP3 session gets a clean goodbye, not a hang; the IMAP
        # one, between commands, is parked at the frontend instead
        # (test_park.py) and goes on once the backend is back.
        assert f.readline().startswith(b"-ERR [SYS/TEMP]")
        assert f.readline() == b""
        assert metric(st, st.HTTP_PORT,
                      "portico_frontend_parked_sessions") == 1
        # New logins: a temporary error, at once.
        t0 = time.monotonic()
        n = st.imap()
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            n.login(user, pw)
        assert time.monotonic() - t0 < 10
        assert n.noop()[0] == "OK"
        n.logout()
        # and the frontend's log says so with the session's id
        assert re.search(r"session=\S+ user=%s backend=s1b1 login failed: "
                         % re.escape(user), st.log("s1f1")), \
            st.log("s1f1")[-2000:]
    finally:
        st.start("s1b1")
    # The link comes back by itself.
    st.wait_for_login(user, pw, timeout=30)
    s.close()
    c.sock.settimeout(15)
    assert c.noop()[0] == "OK"
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert typ == "OK" and b"MESSAGES 0" in data[0], data
    c.logout()


@pytest.fixture(scope="module")
def narrow(stack_factory):
    # The smallest link window there is: every path of the credit that
    # flows back to the backend is taken many times over.
    return stack_factory(name="narrow", settings=[
        "frontend.workers=1", "limits.link_window=16k"])


def test_narrow_window_idle_changes_and_big_fetch(narrow, tmp_path):
    """With a 16 KB window, a session in IDLE is shown changes many times
    larger than the window, then fetches a message many times larger:
    the credit the frontend returns keeps both flowing (a frontend that
    held it back would leave the session stalled)."""
    st = narrow
    user, pw = st.new_user("narrow")
    n = 600
    mbox = tmp_path / "narrow.mbox"
    with open(mbox, "wb") as f:
        for i in range(n):
            f.write(b"From narrow@example.test Thu Jan  1 00:00:00 2026\n"
                    b"Subject: narrow %d\n\nbody %d\n\n" % (i, i))
    st.import_message(user, mbox)
    big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 3000  # 240 KB
    st.import_message(user, big)

    s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=60)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s %s\r\na2 SELECT INBOX\r\na3 IDLE\r\n"
              % (user.encode(), pw.encode()))
    read_until_tagged(f, b"a2")
    assert f.readline().startswith(b"+ ")

    other = st.imap(user, pw)
    assert other.select("INBOX")[0] == "OK"
    shown = 0
    for flag in (b"+FLAGS", b"-FLAGS", b"+FLAGS"):
        typ, _ = other.uid("STORE", "1:*", flag.decode(), r"(\Flagged)")
        assert typ == "OK"
        # Every message's new flags reach the idling session: about
        # 30 KB each time, twice the window.
        got = 0
        while got < n + 1:
            line = f.readline()
            assert line, "the idling session stopped receiving"
            if b" FETCH (" in line and b"FLAGS" in line:
                got += 1
        shown += got
    assert shown == 3 * (n + 1)
    other.logout()

    s.sendall(b"DONE\r\na4 FETCH %d BODY.PEEK[]\r\n" % (n + 1))
    lines = read_until_tagged(f, b"a3")
    assert lines[-1].startswith(b"a3 OK"), lines[-1]
    first = f.readline()
    assert first.startswith(b"* %d FETCH (BODY[] {%d}" % (n + 1, len(big))), \
        first
    assert f.read(len(big)) == big
    rest = read_until_tagged(f, b"a4")
    assert rest[-1].startswith(b"a4 OK"), rest
    s.close()


def test_store_answers_of_one_commit_leave_together(st):
    """Sessions on one link whose commands are committed together: their
    answers go to the link in one write per batch of completions, not
    one write each."""
    n = 12
    clients = []
    for i in range(n):
        user, pw = st.new_user("batch%d" % i)
        st.import_message(user, b"Subject: b\r\n\r\nbody\r\n")
        s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"a1 LOGIN %s %s\r\na2 SELECT INBOX\r\n"
                  % (user.encode(), pw.encode()))
        assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
        clients.append((s, f))
    rounds = 5
    writes = commits = 0
    for r in range(rounds):
        w0 = backend_metric(st, "portico_backend_link_writes_total")
        c0 = backend_metric(st, "portico_backend_store_commits_total")
        for s, _ in clients:
            s.sendall(b"s%d STORE 1 +FLAGS.SILENT (\\Flagged)\r\n" % r)
        for _, f in clients:
            tag = b"s%d" % r
            assert read_until_tagged(f, tag)[-1].startswith(tag + b" OK")
        writes += backend_metric(
            st, "portico_backend_link_writes_total") - w0
        commits += backend_metric(
            st, "portico_backend_store_commits_total") - c0
    for s, _ in clients:
        s.close()
    # n answers a round; the writer commits what arrived together, and
    # each batch of completions leaves in one write (a couple more for
    # frames that arrive between batches)
    assert commits < rounds * n, commits
    assert writes <= commits + 2 * rounds, (writes, commits)


def test_expunge_of_nothing_waits_for_no_commit(st):
    """EXPUNGE and UID EXPUNGE that find no \\Deleted message answer at
    once, without a store transaction; with one, it is removed in one."""
    user, pw = st.new_user("noexp")
    for i in range(3):
        st.import_message(user, b"Subject: %d\r\n\r\nbody\r\n" % i)
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s %s\r\na2 SELECT INBOX\r\n"
              % (user.encode(), pw.encode()))
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    c0 = backend_metric(st, "portico_backend_store_commits_total")
    for i in range(20):
        s.sendall(b"e%d EXPUNGE\r\nu%d UID EXPUNGE 1:*\r\n" % (i, i))
        lines = read_until_tagged(f, b"e%d" % i)
        assert lines[-1].startswith(b"e%d OK" % i), lines
        assert not any(b"EXPUNGE\r\n" in x and x.startswith(b"* ")
                       for x in lines), lines
        lines = read_until_tagged(f, b"u%d" % i)
        assert lines[-1].startswith(b"u%d OK" % i), lines
    commits = backend_metric(st, "portico_backend_store_commits_total") - c0
    # 40 commands; a commit of the backend's own (a timer) may fall in
    assert commits <= 2, commits
    s.sendall(b"f1 STORE 2 +FLAGS.SILENT (\\Deleted)\r\nf2 EXPUNGE\r\n"
              b"f3 FETCH 1:* (UID)\r\n")
    lines = read_until_tagged(f, b"f2")
    assert lines[-1].startswith(b"f2 OK"), lines
    assert b"* 2 EXPUNGE\r\n" in lines, lines
    lines = read_until_tagged(f, b"f3")
    assert [x for x in lines if x.startswith(b"* ")] == [
        b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"], lines
    s.close()


def test_stale_backend_entry_is_read_again_while_the_link_serves(
        stack_factory):
    """Past frontend.backend_cache_ttl a login still goes at once onto the
    link that is up, and the backend's entry is read again meanwhile: a
    changed link address is noticed then, not only by a login once the
    entry is twice its time old.  (A stack of its own: the entry is
    changed.)"""
    ttl = 3
    st = stack_factory(name="entry", settings=[
        "frontend.workers=1", "frontend.backend_cache_ttl=%ds" % ttl])
    user, pw = st.new_user("entry")

    def login():
        """LOGIN's answer (the session may be cut right after it: the
        move below fails the link to the old address)."""
        s, f = raw_client(st, st.IMAPS_PORT, tls=True)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
        line = read_until_tagged(f, b"a")[-1]
        s.close()
        return line

    assert login().startswith(b"a OK")
    read_at = time.monotonic()
    # The backend moves (to a port nobody listens on).
    ldif = ("dn: cn=s1b1,ou=backends,dc=example,dc=test\n"
            "changetype: modify\nreplace: porticoLinkAddress\n"
            "porticoLinkAddress: 127.0.0.1:1\n")
    subprocess.run(["ldapmodify", "-x", "-H", st.LDAP_URI,
                    "-D", st.LDAP_ADMIN_DN, "-w", st.LDAP_ADMIN_PASSWORD],
                   input=ldif.encode(), check=True, capture_output=True,
                   timeout=30)
    time.sleep(max(0.0, read_at + ttl + 0.5 - time.monotonic()))
    # stale, within twice the time: the session goes onto the link that
    # is up (and is cut if the re-read below wins the race with its Opened:
    # sessions on a moved backend's old address end)
    line = login()
    assert line.startswith(b"a OK") or \
        line.startswith(b"a NO [UNAVAILABLE]"), line
    assert time.monotonic() - read_at < 2 * ttl
    # ... and the entry is read again right then, without another login
    wait_for(lambda: "backend=s1b1 moved" in st.log("s1f1"), timeout=2,
             what="the frontend to read the backend's entry again")
    st.down()


@pytest.fixture(scope="module")
def pinged(stack_factory):
    # Short link timers, so that a hung backend is found within seconds.
    return stack_factory(name="ping", settings=[
        "frontend.workers=1",
        "frontend.link_ping_interval=1s",
        "frontend.link_timeout=3s",
        "frontend.link_retry_interval=1s",
        "http.metrics_networks=127.0.0.1/32",
    ])


def frontend_counter(st, name):
    return metric(st, st.HTTP_PORT, name, "frontend")


def test_quiet_link_is_pinged_and_kept(pinged):
    """A link with nothing to carry is pinged, the backend answers, and
    the link outlives frontend.link_timeout many times over."""
    st = pinged
    user, pw = st.new_user("quiet")
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    pings = frontend_counter(st, "portico_frontend_link_pings_total")
    lost = frontend_counter(st, "portico_frontend_link_timeouts_total")
    time.sleep(7.5)  # two and a half link timeouts without a command
    assert c.noop()[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    assert frontend_counter(st, "portico_frontend_link_pings_total") \
        >= pings + 3
    assert frontend_counter(st, "portico_frontend_link_timeouts_total") \
        == lost
    assert "lost:" not in st.log("s1f1"), st.log("s1f1")[-2000:]


def test_hung_backend_is_given_up(pinged):
    """A backend that stops answering with its connections up (here
    SIGSTOP): its sessions get BYE [UNAVAILABLE] and logins NO
    [UNAVAILABLE] after frontend.link_timeout, not a hang until the
    client or the login deadline gives up; when it runs again, the link
    comes back by itself."""
    st = pinged
    user, pw = st.new_user("hung")
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    s, f = raw_client(st, st.POP3S_PORT, tls=True, timeout=30)
    assert f.readline().startswith(b"+OK")
    other, other_pw = st.new_user("hung2")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (other.encode(),
                                           other_pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    lost = frontend_counter(st, "portico_frontend_link_timeouts_total")
    pid = int((st.dir / "s1b1" / "pid").read_text())
    sigstop(pid)
    try:
        # The IMAP session sent a command the backend will not answer;
        # the POP3 one is idle.  Both are told.
        c.sock.settimeout(30)
        c.send(b"n1 NOOP\r\n")
        line = c.readline()
        assert line.startswith(b"* BYE [UNAVAILABLE]"), line
        line = f.readline()
        assert line.startswith(b"-ERR [SYS/TEMP]"), line
        assert f.readline() == b""
        # A login now: refused at once while the retry interval runs, or
        # after the new connection's handshake times out; either way
        # NO [UNAVAILABLE], well before the client's 30 s.
        for _ in range(2):
            n = st.imap()
            n.sock.settimeout(30)
            with pytest.raises(imaplib.IMAP4.error,
                               match=r"\[UNAVAILABLE\]"):
                n.login(user, pw)
            n.logout()
            time.sleep(1.5)  # past frontend.link_retry_interval
        log = st.log("s1f1")
        assert re.search(r"link backend=s1b1 address=\S+ lost: nothing "
                         r"from the backend for \d+ s "
                         r"\(frontend.link_timeout\)", log), log[-3000:]
        assert re.search(r"link backend=s1b1 address=\S+ lost: no TLS "
                         r"handshake and Hello for \d+ s", log), log[-3000:]
        assert frontend_counter(
            st, "portico_frontend_link_timeouts_total") >= lost + 2
    finally:
        os.kill(pid, signal.SIGCONT)
    # The link comes back by itself.
    st.wait_for_login(user, pw, timeout=30)
    s.close()


def test_change_shown_to_its_mailbox_watchers_only(st):
    """A commit is shown to the sessions in IDLE on its mailbox, without
    a look at the backend's other sessions: twelve sessions idling on
    another user's INBOX and a few logged in elsewhere cost an APPEND
    nothing (portico_backend_notified_total{pass="mailbox"} counts the
    sessions shown a commit's change)."""
    quiet, quiet_pw = st.new_user("watchq")
    busy, busy_pw = st.new_user("watchb")

    def idling(user, pw):
        """A raw session of USER in IDLE on its INBOX: (sock, reader)."""
        s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=30)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"l LOGIN %s %s\r\ns SELECT INBOX\r\ni IDLE\r\n"
                  % (user.encode(), pw.encode()))
        read_until_tagged(f, b"s")
        assert f.readline() == b"+ idling\r\n"
        return s, f

    idlers = [idling(quiet, quiet_pw) for _ in range(12)]
    # the one watcher of busy's INBOX
    w, wf = idling(busy, busy_pw)
    others = [st.imap(busy, busy_pw) for _ in range(3)]
    for o in others:
        assert o.select("INBOX")[0] == "OK"
    # (pass="all": another process's writes, such as a new user's
    # mailbox, shown to every session once the backend sees them)
    key = 'portico_backend_notified_total{pass="mailbox"}'
    before = backend_metric(st, key)
    for n in range(5):
        msg = b"Subject: watched %d\r\n\r\nhi\r\n" % n
        assert others[0].append("INBOX", None, None, msg)[0] == "OK"
        line = wf.readline()
        assert line == b"* %d EXISTS\r\n" % (n + 1), line
    after = backend_metric(st, key)
    # the watcher, once per APPEND's commit: not the twelve idlers of
    # the other mailbox, nor the sessions that are not in IDLE
    assert after - before == 5, (before, after)
    for s, f in idlers:
        s.sendall(b"DONE\r\n")
        assert read_until_tagged(f, b"i")[-1] == b"i OK IDLE terminated\r\n"
        s.close()
    w.sendall(b"DONE\r\n")
    assert read_until_tagged(wf, b"i")[-1] == b"i OK IDLE terminated\r\n"
    w.close()
    for o in others:
        o.logout()


def test_gone_frontend_is_given_up_by_the_backend(stack_factory):
    """A frontend that stops answering with its link up (SIGSTOP here; a
    machine that lost power, in life): the backend closes the link after
    backend.link_timeout, and what its sessions held is free, so the
    user's POP3 maildrop opens through the other frontend instead of
    staying locked."""
    st = stack_factory(name="gonefe", frontends_per_site=2, settings=[
        "backend.link_ping_interval=1s",
        "backend.link_timeout=3s",
        "http.metrics_networks=127.0.0.1/32",
    ])
    user, pw = st.new_user("gonefe")
    s, f = raw_client(st, st.port("pop3s", frontend=1), tls=True,
                      timeout=30)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(), pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")

    def pop3_login(frontend):
        s2, f2 = raw_client(st, st.port("pop3s", frontend=frontend),
                            tls=True, timeout=30)
        assert f2.readline().startswith(b"+OK")
        s2.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(),
                                                pw.encode()))
        assert f2.readline().startswith(b"+OK")
        answer = f2.readline()
        s2.sendall(b"QUIT\r\n")
        s2.close()
        return answer

    # while the first frontend's session holds it, the maildrop is locked
    assert pop3_login(2).startswith(b"-ERR [IN-USE]")
    before = backend_metric(st, "portico_backend_link_timeouts_total")
    pid = int((st.dir / "s1f1" / "pid").read_text())
    sigstop(pid)
    try:
        deadline = time.monotonic() + 30
        while True:
            answer = pop3_login(2)
            if answer.startswith(b"+OK") or time.monotonic() > deadline:
                break
            assert answer.startswith(b"-ERR [IN-USE]"), answer
            time.sleep(0.5)
        assert answer.startswith(b"+OK"), answer
        log = st.log("s1b1")
        assert re.search(r"link peer=\S+ frontend=s1f1 lost: nothing from "
                         r"the frontend for \d+ s \(backend.link_timeout\)",
                         log), log[-3000:]
        assert backend_metric(
            st, "portico_backend_link_timeouts_total") == before + 1
        # the second frontend's link, answering its Pings, stays
        assert "frontend=s1f2 lost" not in log, log[-3000:]
    finally:
        os.kill(pid, signal.SIGCONT)
    # the first frontend finds its link gone: its client is told
    line = f.readline()
    assert line == b"" or line.startswith(b"-ERR"), line
    s.close()
    # and serves again through a new link
    st.wait_for_login(user, pw, timeout=30)
