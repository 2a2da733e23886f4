"""IMAP sessions in IDLE parked at the frontend (imap.park_after; link
version 5): the backend hands the session's state to the frontend and
keeps only a watch of the mailbox; a change, or anything the client
says, takes the session up again, and the client sees what IDLE would
have shown.  A parked client outlives a backend restart or crash.

A stack of its own: its backend is stopped, killed and restarted.
"""

import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (CMD_TIMEOUT, backend_metric, metric, raw_client,
                      read_until_tagged, sigstop, wait_for)

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))


@pytest.fixture(scope="module")
def st(stack_factory):
    # One event loop, so that the frontend's gauge is one loop's.
    return stack_factory(name="park", settings=[
        "frontend.workers=1", "imap.park_after=1s",
        "imap.idle_notify_interval=3s", "frontend.link_timeout=4s",
        "http.metrics_networks=127.0.0.1/32"])


def new_user(st, prefix):
    """A fresh user on s1b1: (login, password, mailbox id)."""
    return st.new_account(prefix)


def admin(st, ini, *args):
    argv = [str(BUILD / "portico-admin"), "-c", str(st.dir / ini)]
    return subprocess.run(argv + [str(a) for a in args],
                          capture_output=True, text=True,
                          timeout=CMD_TIMEOUT)


class Raw:
    """A logged-in IMAP session over implicit TLS, read by line."""

    def __init__(self, st, user, password):
        self.s = st.ssl_context().wrap_socket(
            socket.create_connection((st.host, st.IMAPS_PORT), timeout=20),
            server_hostname=st.host)
        self.f = self.s.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.cmd(b"l LOGIN %s %s" % (user.encode(), password.encode()))

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, line, tag=None):
        tag = tag or line.split()[0]
        self.send(line + b"\r\n")
        lines = read_until_tagged(self.f, tag)
        assert lines[-1].startswith(tag + b" OK"), lines
        return lines

    def line(self, keepalive=False):
        """The next line (IDLE's keepalives skipped unless keepalive)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.f.readline()
            assert line, "connection closed"
            if keepalive or line != b"* OK Still here\r\n":
                return line
        raise AssertionError("nothing but keepalives for 20 s")

    def close(self):
        self.s.close()


def parked(st):
    return metric(st, st.HTTP_PORT, "portico_frontend_parked_sessions")


def be_parked(st):
    return backend_metric(st, "portico_backend_parked_sessions_total")


def sessions(st, mbox):
    p = admin(st, "s1b1/backend.ini", "sessions", mbox)
    assert p.returncode == 0, p.stderr
    return [r.split()[1] for r in p.stdout.splitlines()[1:-1]]


def idle_parked(st, c, mbox, tag=b"i"):
    """c enters IDLE and is parked."""
    c.send(tag + b" IDLE\r\n")
    assert c.line() == b"+ idling\r\n"
    wait_for(lambda: sessions(st, mbox) == ["imap-parked"], timeout=15,
             what="the session to be parked")


def append(st, user, pw, subject):
    c = st.imap(user, pw)
    typ, data = c.append("INBOX", None, None,
                         b"Subject: %s\r\n\r\nbody\r\n" % subject)
    assert typ == "OK", data
    c.logout()


def test_parked_session_wakes_for_changes_and_for_the_client(st):
    user, pw, mbox = new_user(st, "park")
    for s in (b"one", b"two", b"three"):
        append(st, user, pw, s)
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    before = be_parked(st)
    idle_parked(st, c, mbox)
    assert parked(st) == 1
    assert be_parked(st) == before + 1

    # a delivery: the session is taken up again and shows it as IDLE does
    revivals = metric(st, st.HTTP_PORT,
                      "portico_frontend_park_revivals_total")
    append(st, user, pw, b"four")
    assert c.line() == b"* 4 EXISTS\r\n"
    assert metric(st, st.HTTP_PORT,
                  "portico_frontend_park_revivals_total") == revivals + 1
    assert backend_metric(st, "portico_backend_resumed_sessions_total") >= 1
    # parked again; another session's flag change and expunge
    wait_for(lambda: "imap-parked" in sessions(st, mbox), timeout=15,
             what="the session to be parked again")
    o = st.imap(user, pw)
    o.select("INBOX")
    o.store("2", "+FLAGS", "(\\Flagged)")
    assert c.line() == b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
    wait_for(lambda: "imap-parked" in sessions(st, mbox), timeout=15,
             what="the session to be parked again")
    o.store("1", "+FLAGS", "(\\Deleted)")
    o.expunge()
    o.logout()
    got = [c.line()]
    if got[0].startswith(b"* 1 FETCH"):  # the \Deleted, if it was seen
        got.append(c.line())
    assert got[-1] == b"* 1 EXPUNGE\r\n", got
    # parked again: the client's DONE takes it up at once
    wait_for(lambda: "imap-parked" in sessions(st, mbox), timeout=15,
             what="the session to be parked again")
    c.send(b"DONE\r\n")
    assert c.line() == b"i OK IDLE terminated\r\n"
    assert parked(st) == 0
    # the view is the backend's own again: numbers, UIDs and flags
    lines = c.cmd(b"f FETCH 1:* (UID FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
                          b"* 2 FETCH (UID 3 FLAGS ())\r\n",
                          b"* 3 FETCH (UID 4 FLAGS ())\r\n"], lines
    c.cmd(b"l LOGOUT")
    c.close()


def test_client_speaking_as_the_backend_parks(st):
    """The client's DONE and the backend's Park cross: the frontend is
    stopped (SIGSTOP) with the DONE in its socket while the backend's
    tick offers the Park, then let go.  Whichever it reads first (the
    DONE, which it relays, then the Park, which it must then ignore; or
    the Park, which it takes, then the DONE, which takes the session up
    again), the client gets its answer once and the session goes on."""
    user, pw, mbox = new_user(st, "parkx")
    append(st, user, pw, b"x")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    fe = int((st.dir / "s1f1" / "pid").read_text())
    offers = backend_metric(st, "portico_backend_park_offers_total")
    taken = be_parked(st)
    for n in range(4):
        tag = b"i%d" % n
        before = backend_metric(st, "portico_backend_park_offers_total")
        c.send(tag + b" IDLE\r\n")
        assert c.line() == b"+ idling\r\n"
        sigstop(fe)
        try:
            c.send(b"DONE\r\n")
            # imap.park_after=1s: the backend offers the Park
            wait_for(lambda: backend_metric(
                st, "portico_backend_park_offers_total") > before,
                timeout=15, what="the Park to be offered")
        finally:
            os.kill(fe, signal.SIGCONT)
        assert c.line() == tag + b" OK IDLE terminated\r\n"
        lines = c.cmd(b"f%d FETCH 1 (UID)" % n)
        assert lines == [b"* 1 FETCH (UID 1)\r\n",
                         b"f%d OK FETCH completed\r\n" % n], lines
    # the Park was offered each time
    assert backend_metric(st, "portico_backend_park_offers_total") \
        >= offers + 4
    assert be_parked(st) - taken <= \
        backend_metric(st, "portico_backend_park_offers_total") - offers
    assert sessions(st, mbox) == ["imap"]
    c.cmd(b"l LOGOUT")
    c.close()


def test_session_between_commands_parked(st):
    """A session between commands is parked after imap.park_after too:
    it watches no mailbox and hears nothing while parked (no IDLE
    keepalive, no wake-up for changes), and its next command takes it up
    and shows what changed meanwhile, as any command would.  One with
    nothing selected is parked and taken up as well."""
    user, pw, mbox = new_user(st, "parkc")
    for subject in (b"one", b"two"):
        append(st, user, pw, subject)
    c = Raw(st, user, pw)
    lines = c.cmd(b"s SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in lines, lines
    offers = backend_metric(st, "portico_backend_park_offers_total")
    wait_for(lambda: sessions(st, mbox) == ["imap-parked"], timeout=15,
             what="the session to be parked")
    assert backend_metric(st, "portico_backend_park_offers_total") > offers
    assert parked(st) == 1
    assert "parked bytes=" in st.log("s1f1") and \
        " between commands" in st.log("s1f1")
    revivals = metric(st, st.HTTP_PORT, "portico_frontend_park_revivals_total")
    # another session changes the mailbox: the parked one stays parked
    o = st.imap(user, pw)
    o.select("INBOX")
    o.store("1", "+FLAGS", "(\\Flagged)")
    o.store("2", "+FLAGS", "(\\Deleted)")
    o.expunge()
    o.append("INBOX", None, None, b"Subject: three\r\n\r\nbody\r\n")
    o.logout()
    # longer than imap.idle_notify_interval (3s): not a byte for it
    ready, _, _ = select.select([c.s], [], [], 4.5)
    assert ready == [] and c.s.pending() == 0
    assert sessions(st, mbox) == ["imap-parked"]
    assert metric(st, st.HTTP_PORT,
                  "portico_frontend_park_revivals_total") == revivals
    # its next command takes it up and tells it what changed
    lines = c.cmd(b"n NOOP")
    assert sorted(lines[:-1]) == sorted([
        b"* 2 EXPUNGE\r\n", b"* 2 EXISTS\r\n",
        b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n"]), lines
    assert parked(st) == 0
    lines = c.cmd(b"f UID FETCH 1:* (FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                          b"* 2 FETCH (UID 3 FLAGS ())\r\n"], lines
    # nothing selected: parked, and its next command is answered
    c.cmd(b"u UNSELECT")
    wait_for(lambda: sessions(st, mbox) == ["imap-parked"], timeout=15,
             what="the session to be parked again")
    lines = c.cmd(b"e EXAMINE INBOX")
    assert b"* 2 EXISTS\r\n" in lines, lines
    c.cmd(b"l LOGOUT")
    c.close()


def test_parked_sessions_count_for_the_account(stack_factory):
    """A parked session keeps its place in backend.max_sessions_per_user:
    a login beyond the limit is refused while one of the account's
    sessions is parked, and taking the parked ones up again is never
    refused, also when the backend came back after a restart (the
    watches made anew count as well)."""
    st = stack_factory(name="parklimit", settings=[
        "frontend.workers=1", "imap.park_after=1s",
        "backend.max_sessions_per_user=2",
        "http.metrics_networks=127.0.0.1/32"])
    user, pw, mbox = st.new_account("parklim")
    a = Raw(st, user, pw)
    a.cmd(b"s SELECT INBOX")
    b = Raw(st, user, pw)

    def third_login():
        s, f = raw_client(st, st.IMAPS_PORT, tls=True, timeout=20)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
        line = read_until_tagged(f, b"l")[-1]
        s.close()
        return line

    wait_for(lambda: sessions(st, mbox) == ["imap-parked", "imap-parked"],
             timeout=15, what="both sessions to be parked")
    # two parked sessions fill the account's two places
    line = third_login()
    assert line.startswith(b"l NO [LIMIT]"), line
    # after a restart of the backend the watches count again
    st.stop("s1b1")
    st.start("s1b1")
    wait_for(lambda: sessions(st, mbox) == ["imap-parked", "imap-parked"],
             timeout=30, what="the watches to be made anew")
    line = third_login()
    assert line.startswith(b"l NO [LIMIT]"), line
    # both are taken up again, whatever the limit
    lines = a.cmd(b"n NOOP")
    assert lines[-1].startswith(b"n OK"), lines
    lines = b.cmd(b"t LIST \"\" INBOX")
    assert lines[-1].startswith(b"t OK"), lines
    assert sorted(sessions(st, mbox)) == ["imap", "imap"]
    a.cmd(b"l LOGOUT")
    a.close()
    # a place is free again
    c = Raw(st, user, pw)
    c.cmd(b"l LOGOUT")
    c.close()
    b.cmd(b"l LOGOUT")
    b.close()


def test_parked_qresync_session_and_keepalive(st):
    user, pw, mbox = new_user(st, "parkq")
    for s in (b"a", b"b", b"c"):
        append(st, user, pw, s)
    c = Raw(st, user, pw)
    c.cmd(b"e ENABLE QRESYNC")
    lines = c.cmd(b"s SELECT INBOX")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
    idle_parked(st, c, mbox)
    # the frontend says IDLE's keepalive while the backend has no session
    t0 = time.monotonic()
    assert c.line(keepalive=True) == b"* OK Still here\r\n"
    assert time.monotonic() - t0 < 10
    assert sessions(st, mbox) == ["imap-parked"]
    o = st.imap(user, pw)
    o.select("INBOX")
    o.store("3", "+FLAGS", "(\\Seen)")
    line = c.line()
    m = re.match(rb"\* 3 FETCH \(UID 3 FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)",
                 line)
    assert m and int(m.group(1)) > hms, line
    wait_for(lambda: "imap-parked" in sessions(st, mbox), timeout=15,
             what="the session to be parked again")
    o.store("1", "+FLAGS", "(\\Deleted)")
    o.expunge()
    o.logout()
    got = [c.line()]
    if got[0].startswith(b"* 1 FETCH"):
        got.append(c.line())
    assert got[-1] == b"* VANISHED 1\r\n", got
    c.send(b"DONE\r\n")
    assert c.line() == b"i OK IDLE terminated\r\n"
    lines = c.cmd(b"f UID FETCH 1:* (FLAGS)")
    assert [l.split(b" (")[0] for l in lines[:-1]] == [
        b"* 1 FETCH", b"* 2 FETCH"], lines
    c.cmd(b"l LOGOUT")
    c.close()


def test_parked_without_a_mailbox_and_mailbox_deleted(st):
    user, pw, mbox = new_user(st, "parkn")
    c = Raw(st, user, pw)
    idle_parked(st, c, mbox, tag=b"n")
    c.send(b"DONE\r\n")
    assert c.line() == b"n OK IDLE terminated\r\n"
    c.cmd(b"c CREATE Gone")
    c.cmd(b"s SELECT Gone")
    idle_parked(st, c, mbox)
    o = st.imap(user, pw)
    assert o.delete("Gone")[0] == "OK"
    o.logout()
    assert c.line() == b"* BYE [NONEXISTENT] Selected mailbox was deleted\r\n"
    assert c.f.readline() == b""
    c.close()


def test_parked_session_follows_a_rename(st):
    """The selected mailbox renamed while its session is parked: taken up
    again, the session finds it by its id within the account and goes on
    with it under its new name."""
    user, pw, mbox = new_user(st, "parkrn")
    c = Raw(st, user, pw)
    c.cmd(b"c CREATE Old")
    c.cmd(b"s SELECT Old")
    idle_parked(st, c, mbox)
    o = st.imap(user, pw)
    assert o.rename("Old", "Renamed")[0] == "OK"
    assert o.append("Renamed", None, None,
                    b"Subject: renamed\r\n\r\nx\r\n")[0] == "OK"
    o.logout()
    assert c.line() == b"* 1 EXISTS\r\n"
    c.send(b"DONE\r\n")
    assert c.line() == b"i OK IDLE terminated\r\n"
    lines = c.cmd(b"f FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: renamed" in b"".join(lines), lines
    c.cmd(b"l LOGOUT")
    c.close()


def test_parked_client_outlives_backend_restart_and_crash(st):
    user, pw, mbox = new_user(st, "parkr")
    append(st, user, pw, b"first")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    # in IDLE but not yet parked: the stopping backend parks it
    c.send(b"i IDLE\r\n")
    assert c.line() == b"+ idling\r\n"
    be = int((st.dir / "s1b1" / "pid").read_text())
    os.kill(be, signal.SIGTERM)
    try:
        wait_for(lambda: parked(st) == 1, timeout=15,
                 what="the stopping backend to park the session")
    finally:
        st.stop("s1b1")
    st.start("s1b1")
    # no BYE: the link comes back by itself and the mail shows up
    st.wait_for_login(user, pw, timeout=30)
    append(st, user, pw, b"after restart")
    assert c.line() == b"* 2 EXISTS\r\n"
    wait_for(lambda: "imap-parked" in sessions(st, mbox), timeout=15,
             what="the session to be parked again")
    # a crash: the watch goes with the link, the client stays
    os.kill(int((st.dir / "s1b1" / "pid").read_text()), signal.SIGKILL)
    time.sleep(1)
    st.stop("s1b1")
    st.start("s1b1")
    st.wait_for_login(user, pw, timeout=30)
    append(st, user, pw, b"after crash")
    assert c.line() == b"* 3 EXISTS\r\n"
    c.send(b"DONE\r\n")
    assert c.line() == b"i OK IDLE terminated\r\n"
    lines = c.cmd(b"f FETCH 1:* (UID)")
    assert len(lines) == 4, lines
    c.cmd(b"l LOGOUT")
    c.close()


def test_client_speaking_while_its_backend_is_away_waits_for_it(st):
    """A parked client that sends DONE while its backend is stopping or
    stopped is answered once the backend is back (within
    frontend.link_timeout, 4 s here), not told goodbye; one whose
    backend stays away longer is."""
    user, pw, mbox = new_user(st, "parkw")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    idle_parked(st, c, mbox)
    st.stop("s1b1")
    c.send(b"DONE\r\n")
    time.sleep(1)
    st.start("s1b1")
    assert c.line() == b"i OK IDLE terminated\r\n"
    c.cmd(b"n NOOP")
    # in IDLE again, parked; the backend goes for longer than 4 s
    idle_parked(st, c, mbox, tag=b"j")
    st.stop("s1b1")
    try:
        c.send(b"DONE\r\n")
        t0 = time.monotonic()
        assert c.line() == \
            b"* BYE [UNAVAILABLE] Mailbox server unavailable\r\n"
        assert 3 < time.monotonic() - t0 < 15
        assert c.f.readline() == b""
    finally:
        st.start("s1b1")
    c.close()
    st.wait_for_login(user, pw, timeout=30)


def test_parked_session_kicked_and_frontend_stopping(st):
    user, pw, mbox = new_user(st, "parkk")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    idle_parked(st, c, mbox)
    p = admin(st, "s1b1/backend.ini", "kick", mbox)
    assert p.returncode == 0, p.stderr
    assert c.line() == b"* BYE Session ended by an administrator\r\n"
    assert c.f.readline() == b""
    c.close()
    assert parked(st) == 0


def test_kick_reaches_a_session_parked_while_its_backend_was_away(st):
    """A kick made while the frontend's link is down (the backend just
    restarted) reaches the parked client through the Forget the backend
    sends before its Hello, not only through the watch."""
    user, pw, mbox = new_user(st, "parkkr")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    idle_parked(st, c, mbox)
    st.stop("s1b1")
    st.start("s1b1")
    p = admin(st, "s1b1/backend.ini", "kick", mbox)
    assert p.returncode == 0, p.stderr
    assert c.line() == b"* BYE Session ended by an administrator\r\n"
    assert c.f.readline() == b""
    c.close()
    # and nothing of it is left on the backend
    st.wait_for_login(user, pw, timeout=30)
    wait_for(lambda: sessions(st, mbox) == [], timeout=15,
             what="the kicked watch to go")


def test_frontend_stopping_says_goodbye_to_parked_clients(stack_factory):
    st = stack_factory(name="parkfe", settings=["imap.park_after=1s"])
    user, pw, mbox = new_user(st, "parkf")
    c = Raw(st, user, pw)
    c.cmd(b"s SELECT INBOX")
    idle_parked(st, c, mbox)
    st.stop("s1f1")
    assert c.line() == b"* BYE [UNAVAILABLE] Server shutting down.\r\n"
    assert c.f.readline() == b""
    c.close()
    st.down()
