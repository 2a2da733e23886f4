"""POP3 engine (issue: offline mail): every command and error path with
poplib, the maildrop snapshot and UPDATE state, the maildrop lock, IMAP on
the same INBOX, and real download clients (fetchmail, getmail6, curl),
each verified against the store afterwards over IMAP."""

import email
import os
import poplib
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import DATA

pytestmark = pytest.mark.daemons


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(i, extra=b""):
    return (b"From: sender@example.org\r\nTo: someone@example.test\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n"
            b"Body of message %d.\r\n" % (i, i, i)) + extra


@pytest.fixture
def maildrop(stack):
    """A fresh user with five messages: (login, password)."""
    user, pw = stack.new_user("pop")
    for i in range(1, 6):
        stack.import_message(user, message(i))
    return user, pw


def store_subjects(stack, user, pw):
    """Subjects in the user's INBOX, read over IMAP (the store's view)."""
    c = stack.imap(user, pw)
    typ, data = c.select("INBOX", readonly=True)
    n = int(data[0])
    subjects = []
    if n:
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
        for item in data:
            if isinstance(item, tuple):
                subjects.append(item[1].decode().split(":", 1)[1].strip())
    c.logout()
    return subjects


def login(stack, user, pw):
    p = stack.pop3()
    p.user(user)
    p.pass_(pw)
    return p


# -- RFC 1939 commands --------------------------------------------------------

def test_stat_list_uidl(stack, maildrop):
    p = login(stack, *maildrop)
    count, size = p.stat()
    sizes = [len(message(i)) for i in range(1, 6)]
    assert (count, size) == (5, sum(sizes))
    resp, listing, _ = p.list()
    assert listing == [b"%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
    assert p.list(3) == b"+OK 3 %d" % sizes[2]
    resp, uidls, _ = p.uidl()
    ids = [u.split()[1] for u in uidls]
    assert len(set(ids)) == 5
    assert p.uidl(2).split()[2] == ids[1]
    for bad in ("0", "6", "x", "-1", "1 2"):
        with pytest.raises(poplib.error_proto):
            p.list(bad)
    p.quit()


def test_retr_top_and_dot_stuffing(stack):
    user, pw = stack.new_user("retr")
    body = (b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nlong " +
            b"x" * 2000 + b"\r\nbare\nlf\r\nlast line without end")
    stack.import_message(user, body)
    p = login(stack, user, pw)
    resp, lines, octets = p.retr(1)
    # The admin import normalises line ends; poplib removes the stuffing.
    assert lines == [b"Subject: dots", b"", b".one", b"..two", b".",
                     b"long " + b"x" * 2000, b"bare", b"lf",
                     b"last line without end"]
    resp, lines, _ = p.top(1, 2)
    assert lines == [b"Subject: dots", b"", b".one", b"..two"]
    resp, lines, _ = p.top(1, 0)
    assert lines == [b"Subject: dots", b""]
    for bad in ("1", "1 x", "9 1"):
        with pytest.raises(poplib.error_proto):
            p._shortcmd("TOP " + bad)
    p.quit()


def test_retr_on_the_wire_is_stuffed(stack):
    user, pw = stack.new_user("wire")
    stack.import_message(user, b"Subject: w\r\n\r\n.a\r\n.\r\nz")
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\nRETR 1\r\nQUIT\r\n"
              % (user.encode(), pw.encode()))
    for _ in range(3):
        assert f.readline().startswith(b"+OK")
    wire = b""
    while not wire.endswith(b"\r\n.\r\n"):
        chunk = f.readline()
        assert chunk
        wire += chunk
    assert wire == b"Subject: w\r\n\r\n..a\r\n..\r\nz\r\n.\r\n"
    assert f.readline().startswith(b"+OK")
    s.close()


def test_dele_rset_quit_commit(stack, maildrop):
    user, pw = maildrop
    p = login(stack, user, pw)
    assert p.dele(2).startswith(b"+OK")
    assert p.dele(4).startswith(b"+OK")
    # Marked, not gone: numbers do not move, the marked ones are hidden.
    assert p.stat()[0] == 3
    assert [l.split()[0] for l in p.list()[1]] == [b"1", b"3", b"5"]
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.retr(2)
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.dele(2)
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 5
    p.dele(1)
    p.dele(5)
    # Before QUIT nothing has changed in the store.
    assert len(store_subjects(stack, user, pw)) == 5
    assert p.quit().startswith(b"+OK")
    assert store_subjects(stack, user, pw) == ["message 2", "message 3",
                                               "message 4"]


def test_dropped_connection_commits_nothing(stack, maildrop):
    user, pw = maildrop
    p = login(stack, user, pw)
    p.dele(1)
    p.dele(2)
    p.sock.shutdown(socket.SHUT_RDWR)   # no QUIT
    p.sock.close()
    deadline = time.monotonic() + 10
    while True:             # the lock goes when the backend sees the close
        try:
            q = login(stack, user, pw)
            break
        except poplib.error_proto:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert q.stat()[0] == 5
    q.quit()
    assert len(store_subjects(stack, user, pw)) == 5


def test_snapshot_ignores_new_mail(stack, maildrop):
    user, pw = maildrop
    p = login(stack, user, pw)
    stack.import_message(user, message(6))
    assert p.stat()[0] == 5            # taken at login
    p.quit()
    q = login(stack, user, pw)
    assert q.stat()[0] == 6
    q.quit()


def test_uidl_stable_across_sessions_and_imap_activity(stack, maildrop):
    user, pw = maildrop
    first = login(stack, user, pw)
    ids = [u.split()[1] for u in first.uidl()[1]]
    first.dele(1)
    first.quit()
    c = stack.imap(user, pw)
    c.select("INBOX")
    c.fetch("1:*", "(BODY[])")          # sets \Seen on everything
    c.logout()
    second = login(stack, user, pw)
    assert [u.split()[1] for u in second.uidl()[1]] == ids[1:]
    second.quit()


def test_noop_capa_and_errors(stack, maildrop):
    p = login(stack, *maildrop)
    assert p.noop().startswith(b"+OK")
    caps = p.capa()
    for cap in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "EXPIRE",
                "LOGIN-DELAY"):
        assert cap in caps
    assert caps["EXPIRE"] == ["NEVER"]
    with pytest.raises(poplib.error_proto, match="Unknown command"):
        p._shortcmd("XYZZY")
    with pytest.raises(poplib.error_proto, match="Already authenticated"):
        p._shortcmd("USER x")
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("RETR " + "9" * 600)     # over max_command_size
    # the text alone: RFC 2449 8 has no [TOOBIG] (an IMAP code)
    assert e.value.args[0] == b"-ERR Command line too long"
    assert p.noop().startswith(b"+OK")
    p.quit()


def test_pipelining(stack, maildrop):
    user, pw = maildrop
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\nSTAT\r\nDELE 1\r\nSTAT\r\nRSET\r\n"
              b"STAT\r\nQUIT\r\n" % (user.encode(), pw.encode()))
    lines = [f.readline() for _ in range(8)]
    assert lines[2].startswith(b"+OK 5 ")
    assert lines[4].startswith(b"+OK 4 ")
    assert lines[6].startswith(b"+OK 5 ")
    assert lines[7].startswith(b"+OK")
    s.close()


# -- one session per maildrop; IMAP beside it ---------------------------------

def test_second_pop3_session_gets_in_use(stack, maildrop):
    user, pw = maildrop
    p = login(stack, user, pw)
    q = stack.pop3()
    q.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        q.pass_(pw)
    # IMAP is not blocked by the POP3 session.
    c = stack.imap(user, pw)
    assert c.select("INBOX")[1] == [b"5"]
    p.quit()
    q = login(stack, user, pw)
    q.quit()
    c.logout()


def test_pop3_deletion_reaches_imap_as_expunge(stack, maildrop):
    user, pw = maildrop
    c = stack.imap(user, pw)
    c.select("INBOX")
    p = login(stack, user, pw)
    p.dele(2)
    p.dele(3)
    resp, data = c.fetch("1:5", "(UID)")    # works while POP3 holds marks
    p.quit()
    typ, data = c.noop()
    expunges = c.untagged_responses.pop("EXPUNGE", [])
    assert expunges == [b"2", b"2"]         # seq 2 twice: 2 then old 3
    typ, data = c.fetch("1:*", "(UID)")
    assert [d.split()[2].rstrip(b")") for d in data] == [b"1", b"4", b"5"]
    c.logout()


def test_retr_of_message_expunged_by_imap(stack):
    """A message an IMAP session expunged while the POP3 session was
    open is gone for good: RETR and TOP say so plainly (no [SYS/TEMP],
    no store error logged); DELE of it and QUIT still work, and the
    other messages are served as before."""
    user, pw = stack.new_user("gone")
    # bytes of this user's own: no other mailbox shares the body
    for i in range(1, 6):
        stack.import_message(user, message(i, extra=user.encode()))
    logged = len(stack.log("s1b1"))
    p = login(stack, user, pw)
    c = stack.imap(user, pw)
    c.select("INBOX")
    c.store("2", "+FLAGS", "(\\Deleted)")
    assert c.expunge()[0] == "OK"
    c.logout()
    for cmd in ("RETR 2", "TOP 2 0"):
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd(cmd)
        assert e.value.args[0] == \
            b"-ERR Message was removed by another session.", cmd
    resp, lines, _ = p.retr(3)
    assert b"Subject: message 3" in lines
    assert p.dele(2).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    assert store_subjects(stack, user, pw) == ["message 1", "message 3",
                                               "message 4", "message 5"]
    log = stack.log("s1b1")[logged:]
    assert "removed by another session" in log
    assert "store error" not in log


# -- settings -----------------------------------------------------------------

def test_newest_first_and_expire_zero(stack_factory):
    st = stack_factory("pop3policy",
                       settings=["pop3.message_order=newest_first",
                                 "pop3.expire=0"])
    user, pw = st.new_user("order")
    for i in range(1, 4):
        st.import_message(user, message(i))
    p = login(st, user, pw)
    assert p.capa()["EXPIRE"] == ["0"]
    resp, lines, _ = p.retr(1)
    assert b"Subject: message 3" in lines
    p.top(2, 0)                 # TOP is not a download
    p.quit()
    # EXPIRE 0: what was downloaded is gone after the session.
    assert store_subjects(st, user, pw) == ["message 1", "message 2"]
    st.down()


def test_login_delay(stack_factory):
    st = stack_factory("pop3delay", settings=["pop3.login_delay=1h"])
    user, pw = st.new_user("delay")
    p = login(st, user, pw)
    assert p.capa()["LOGIN-DELAY"] == ["3600"]
    p.quit()
    q = st.pop3()
    q.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[LOGIN-DELAY\]"):
        q.pass_(pw)
    st.down()


# -- real clients -------------------------------------------------------------

def write(path, text, mode=0o600):
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def fetchmail(stack, tmp, user, pw, keep):
    out = tmp / "fetched"
    out.mkdir(exist_ok=True)
    mda = write(tmp / "mda.sh", """\
        #!/bin/sh
        cat > "$(mktemp %s/msg.XXXXXX)"
        """ % out, 0o755)
    rc = write(tmp / "fetchmailrc", """\
        set no syslog
        poll localhost via %s protocol POP3 port %d uidl
            user "%s" there with password "%s"
            ssl sslcertck sslcertfile "%s" sslcommonname localhost
            mda "%s" %s
        """ % (stack.host, stack.POP3S_PORT, user, pw, stack.CA_FILE, mda,
               "keep" if keep else "nokeep"))
    env = dict(os.environ, HOME=str(tmp))
    proc = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach",
                           "--idfile", str(tmp / "fetchids"), "-v"],
                          capture_output=True, text=True, timeout=60,
                          env=env, stdin=subprocess.DEVNULL)
    # 0: mail fetched, 1: no mail
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return sorted(out.iterdir())


def test_fetchmail_delete_mode(stack, maildrop, tmp_path):
    user, pw = maildrop
    got = fetchmail(stack, tmp_path, user, pw, keep=False)
    assert len(got) == 5
    subjects = sorted(email.message_from_bytes(p.read_bytes())["Subject"]
                      for p in got)
    assert subjects == ["message %d" % i for i in range(1, 6)]
    assert store_subjects(stack, user, pw) == []


def test_fetchmail_keep_twice_downloads_once(stack, maildrop, tmp_path):
    user, pw = maildrop
    first = fetchmail(stack, tmp_path, user, pw, keep=True)
    assert len(first) == 5
    second = fetchmail(stack, tmp_path, user, pw, keep=True)
    assert len(second) == 5          # nothing new downloaded
    assert len(store_subjects(stack, user, pw)) == 5
    stack.import_message(user, message(6))
    third = fetchmail(stack, tmp_path, user, pw, keep=True)
    assert len(third) == 6           # only the new one


def getmail(stack, tmp, user, pw, delete, read_all):
    # Delivery through a command: getmail refuses Maildir delivery as
    # root, and the tests may run as root.
    maildir = tmp / "Maildir"
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    write(tmp / "deliver.sh", """\
        #!/bin/sh
        cat > "$(mktemp %s/new/msg.XXXXXX)"
        """ % maildir, 0o755)
    rc = write(tmp / "getmailrc", """\
        [retriever]
        type = SimplePOP3SSLRetriever
        server = localhost
        port = %d
        username = %s
        password = %s
        ca_certs = %s

        [destination]
        type = MDA_external
        path = %s/deliver.sh
        allow_root_commands = true

        [options]
        delete = %s
        read_all = %s
        verbose = 1
        """ % (stack.POP3S_PORT, user, pw, stack.CA_FILE, tmp,
               "true" if delete else "false",
               "true" if read_all else "false"))
    proc = subprocess.run(["getmail", "--rcfile", str(rc), "--getmaildir",
                           str(tmp)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted((maildir / "new").iterdir())


def test_getmail_delete(stack, maildrop, tmp_path):
    user, pw = maildrop
    got = getmail(stack, tmp_path, user, pw, delete=True, read_all=True)
    assert len(got) == 5
    assert store_subjects(stack, user, pw) == []


def test_getmail_read_all_false_gets_only_new(stack, maildrop, tmp_path):
    user, pw = maildrop
    got = getmail(stack, tmp_path, user, pw, delete=False, read_all=False)
    assert len(got) == 5
    got = getmail(stack, tmp_path, user, pw, delete=False, read_all=False)
    assert len(got) == 5
    stack.import_message(user, message(6))
    got = getmail(stack, tmp_path, user, pw, delete=False, read_all=False)
    assert len(got) == 6
    assert len(store_subjects(stack, user, pw)) == 6


def curl(stack, user, pw, path, *extra):
    proc = subprocess.run(["curl", "-sS", "--cacert", stack.CA_FILE,
                           "-u", "%s:%s" % (user, pw), *extra,
                           "pop3s://localhost:%d/%s" % (stack.POP3S_PORT,
                                                        path)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_curl_list_retr_dele(stack, maildrop):
    user, pw = maildrop
    listing = curl(stack, user, pw, "")
    assert listing.split(b"\r\n")[:5] == [b"%d %d" % (i, len(message(i)))
                                          for i in range(1, 6)]
    assert curl(stack, user, pw, "3") == message(3)
    curl(stack, user, pw, "3", "-X", "DELE", "-I")
    assert store_subjects(stack, user, pw) == ["message 1", "message 2",
                                               "message 4", "message 5"]


def test_uidl_stable_across_backend_restart(stack, maildrop):
    user, pw = maildrop
    before = login(stack, user, pw).uidl()[1]
    stack.stop("s1b1")
    stack.start("s1b1")
    deadline = time.monotonic() + 20
    while True:
        try:
            p = login(stack, user, pw)
            break
        except (poplib.error_proto, OSError):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert p.uidl()[1] == before
    p.quit()


def test_pop3_disabled_for_user(stack):
    user, pw = "nopop@example.test", "nopop-pw"
    stack.run("adduser", stack.dir, user, pw, "--no-pop3")
    p = stack.pop3()
    p.user(user)
    with pytest.raises(poplib.error_proto, match=r"POP3 is disabled for "
                       r"this account"):
        p.pass_(pw)
    p.quit()
    c = stack.imap(user, pw)      # IMAP still allowed
    c.logout()


def test_plaintext_login_type_and_deployment_switch(stack_factory):
    st = stack_factory("pop3plain",
                       settings=["frontend.pop3_login_type=plaintext",
                                 "frontend.imap_enabled=no",
                                 "limits.prelogin_timeout=2s"])
    user, pw = st.new_user("plain")
    p = poplib.POP3(st.host, st.POP3_PORT, timeout=10)
    assert "USER" in p.capa() and "STLS" in p.capa()
    p.user(user)
    assert p.pass_(pw).startswith(b"+OK")
    p.quit()
    # IMAP switched off for the deployment: a clear refusal, then close.
    with socket.create_connection((st.host, st.IMAP_PORT), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"* BYE [UNAVAILABLE] IMAP4 is not "
                                       b"offered")
        assert f.readline() == b""
    # Pre-login timeout: an idle client is told and disconnected.
    with socket.create_connection((st.host, st.POP3_PORT), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        t0 = time.monotonic()
        assert f.readline().startswith(b"-ERR Disconnected for inactivity")
        assert f.readline() == b""
        assert time.monotonic() - t0 >= 1.5
    st.down()


def rss_anon_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_retr_streams_without_buffering_the_message(stack_factory):
    # A stack of its own, with AddressSanitizer's quarantine of freed
    # memory off (when the build uses it): otherwise every freed chunk
    # stays counted in the process's memory and the figure says nothing.
    old = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = "quarantine_size_mb=0:detect_leaks=1"
    try:
        stack = stack_factory("streaming")
    finally:
        if old is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = old
    user, pw = stack.new_user("big")
    line = b"0123456789" * 10 + b"\r\n"
    big = b"Subject: big\r\n\r\n" + line * (30 * 1024 * 1024 // len(line))
    stack.import_message(user, big)
    pid = int((stack.dir / "s1b1" / "pid").read_text())
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=30),
        server_hostname=stack.host)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(), pw.encode()))
    f.readline()
    f.readline()
    before = rss_anon_kb(pid)
    s.sendall(b"RETR 1\r\n")
    assert f.readline().startswith(b"+OK")
    first = f.read(1024 * 1024)    # then stop reading for a while
    time.sleep(1.5)
    during = rss_anon_kb(pid)
    # A 30 MB message; the backend holds at most a window of it.
    assert during - before < 8 * 1024, (before, during)
    # the rest, byte for byte: what the kernel could not take waited in
    # the frontend's and the backend's buffers and leaves in order
    got = [first]
    n = len(first)
    while n < len(big) + 3:
        chunk = f.read1(1 << 20)
        assert chunk
        got.append(chunk)
        n += len(chunk)
    assert b"".join(got) == big + b".\r\n"
    s.close()
    stack.down()
