"""Malformed and hostile input after login: every bad command gets a clear
tagged BAD/NO (or a BYE where the stream cannot be trusted), and the
session, the server and the stored mail stay intact."""

import os
import socket

import pytest

from conftest import backend_metric, wait_for

pytestmark = pytest.mark.daemons


class Raw:
    def __init__(self, stack, user):
        self.s = stack.ssl_context().wrap_socket(
            socket.create_connection((stack.host, stack.IMAPS_PORT),
                                     timeout=15),
            server_hostname=stack.host)
        self.f = self.s.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        out = self.cmd(b"L", b"LOGIN %s %s" % (user[0].encode(),
                                                user[1].encode()))
        assert out[-1].startswith(b"L OK")

    def cmd(self, tag, text):
        self.s.sendall(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            line = self.f.readline()
            assert line, lines
            lines.append(line)
            if line.startswith(tag + b" ") or line.startswith(b"* BYE"):
                return lines

    def close(self):
        self.f.close()
        self.s.close()


@pytest.fixture
def raw(stack):
    user = stack.new_user("abuse")
    stack.import_message(user[0], b"Subject: keep me\r\n\r\nbody\r\n")
    r = Raw(stack, user)
    yield r
    r.close()
    # The stored mail is intact.
    c = stack.imap(*user)
    typ, data = c.select("INBOX")
    assert data == [b"1"]
    assert c.fetch("1", "(BODY.PEEK[])")[1][0][1] == \
        b"Subject: keep me\r\n\r\nbody\r\n"
    c.logout()


@pytest.mark.parametrize("text,code", [
    (b"FETCH", b"BAD"),
    (b"SELECT", b"BAD"),
    (b"FROBNICATE x", b"BAD Unknown command"),
    (b"UID FROBNICATE 1", b"BAD"),
    (b"LOGIN a b", b"BAD Already authenticated"),
    (b"SELECT \"unterminated", b"BAD"),
    (b"SELECT INBOX)", b"BAD"),
    (b"STATUS INBOX (BOGUS)", b"BAD"),
    (b"CREATE \"a//b\"", b"NO"),
    (b"CREATE \"../etc\"", b"NO"),
    (b"CREATE \"x%\"", b"NO"),
    (b"CREATE &Jjo", b"NO"),
    (b"RENAME INBOX/x y", b"NO"),
    (b"DELETE INBOX", b"NO"),
    (b"SEARCH ALL", b"BAD"),
])
def test_bad_commands_keep_the_session(raw, text, code):
    out = raw.cmd(b"t", text)
    assert out[-1].startswith(b"t " + code), out
    assert raw.cmd(b"n", b"NOOP")[-1].startswith(b"n OK")


def test_empty_append_refused(raw):
    raw.s.sendall(b"t APPEND INBOX {0}\r\n")
    assert raw.f.readline().startswith(b"+ ")
    raw.s.sendall(b"\r\n")
    out = raw.until(b"t")
    assert out[-1].startswith(b"t NO [CANNOT]"), out


def test_selected_state_errors(raw):
    raw.cmd(b"s", b"SELECT INBOX")
    for text in (b"FETCH 0 FLAGS", b"FETCH 2 FLAGS", b"FETCH 1:* BOGUS",
                 b"FETCH x FLAGS", b"STORE 1 +FLAGS (\\Bogus)",
                 b"STORE 1 FLAGS.BOGUS (\\Seen)", b"COPY 5 Trash",
                 b"SEARCH (((", b"SEARCH NOT", b"SEARCH LARGER x",
                 b"FETCH 1 BODY[HEADER.FIELDS ()]",
                 b"UID FETCH 1:4294967295 (FLAGS)",
                 b"FETCH 1 (BODY.PEEK[]<4294967295.10>)"):
        out = raw.cmd(b"t", text)
        assert out[-1][:4] in (b"t BA", b"t NO", b"t OK"), (text, out)
    out = raw.cmd(b"p", b"FETCH 1 (BODY.PEEK[]<100000.10>)")
    assert b"BODY[]<100000> {0}" in b"".join(out) and out[-1].startswith(b"p OK")
    out = raw.cmd(b"u", b"UID FETCH 1:4294967295 (UID)")
    assert out == [b"* 1 FETCH (UID 1)\r\n", out[-1]]


def test_overlong_line_and_literals(raw):
    raw.s.sendall(b"a NOOP " + b"x" * 100000 + b"\r\n")
    assert raw.until(b"a")[-1].startswith(b"a BAD [TOOBIG]")
    out = raw.cmd(b"b", b"APPEND INBOX {99999999999999999999}")
    assert out[-1].startswith(b"b BAD [TOOBIG]") or \
        out[-1].startswith(b"b NO [TOOBIG]")
    assert raw.cmd(b"c", b"NOOP")[-1].startswith(b"c OK")
    # Deep nesting is refused with the nesting limit.
    out = raw.cmd(b"d", b"SEARCH " + b"(" * 200 + b"ALL" + b")" * 200)
    assert out[-1].startswith(b"d BAD"), out
    assert raw.cmd(b"e", b"NOOP")[-1].startswith(b"e OK")


def test_oversized_non_synchronizing_literal_closes(raw):
    raw.s.sendall(b"a APPEND INBOX {999999999999+}\r\n")
    line = raw.f.readline()
    assert line.startswith(b"* BYE"), line
    assert raw.f.readline() == b""


def test_too_many_bad_commands_closes(raw):
    for i in range(20):
        raw.s.sendall(b"x%d FROBNICATE\r\n" % i)
    data = b""
    while True:
        line = raw.f.readline()
        if not line:
            break
        data += line
    assert b"* BYE Too many invalid commands" in data


def test_appendlimit_is_what_append_takes(stack, stack_factory):
    """APPENDLIMIT (RFC 7889) is the largest message APPEND really takes:
    by default limits.max_literal_size (64M), which fits within
    limits.max_command_size, so a message of a few megabytes is stored;
    where max_command_size leaves less room after a command line of
    limits.max_line, the advertised limit is that room, and a message of
    exactly that size is stored while one byte more is refused."""
    user = stack.new_user("bigappend")
    c = stack.imap(*user)
    typ, caps = c.capability()
    assert b"APPENDLIMIT=67108864" in caps[0].split()
    big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 30000
    assert len(big) > 2 * 1024 * 1024
    typ, data = c.append("INBOX", None, None, big)
    assert typ == "OK", data
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == big
    c.logout()

    st = stack_factory("appendroom", settings=[
        "limits.max_command_size=100k", "limits.max_line=4k",
        "limits.max_literal_size=1M"])
    user = st.new_user("room")
    limit = 100 * 1024 - 4096 - 2
    r = Raw(st, user)
    out = r.cmd(b"a", b"CAPABILITY")
    assert b"APPENDLIMIT=%d" % limit in out[0].split()
    out = r.cmd(b"b", b"STATUS INBOX (APPENDLIMIT)")
    assert out[0] == b"* STATUS \"INBOX\" (APPENDLIMIT %d)\r\n" % limit
    head = b"Subject: fits\r\n\r\n"
    for tag, size in ((b"c", limit), (b"d", limit + 1)):
        r.s.sendall(tag + b" APPEND INBOX {%d}\r\n" % size)
        line = r.f.readline()
        if line.startswith(b"+"):
            r.s.sendall(head + b"x" * (size - len(head)) + b"\r\n")
            line = r.until(tag)[-1]
        if size == limit:
            assert line.startswith(b"c OK [APPENDUID "), line
        else:
            assert line.startswith(b"d ") and b"[TOOBIG]" in line, line
    out = r.cmd(b"e", b"STATUS INBOX (MESSAGES)")
    assert out[0] == b"* STATUS \"INBOX\" (MESSAGES 1)\r\n"
    r.close()


def test_append_beyond_the_size_limit(stack_factory):
    """APPENDLIMIT (limits.max_literal_size): a synchronizing literal
    beyond it is refused before the continuation, so the client never
    sends it; a non-synchronizing one ends the session, since its bytes
    are already on the way.  Nothing is stored either way."""
    st = stack_factory("appendlimit", settings=["limits.max_literal_size=2k"])
    user = st.new_user("limit")
    st.import_message(user[0], b"Subject: keep me\r\n\r\nbody\r\n")
    r = Raw(st, user)
    out = r.cmd(b"a", b"APPEND INBOX {5000}")
    assert out == [b"a BAD [TOOBIG] Literal too large\r\n"]
    assert r.cmd(b"b", b"NOOP")[-1].startswith(b"b OK")
    r.s.sendall(b"c APPEND INBOX {2048}\r\n")
    assert r.f.readline() == b"+ OK\r\n"
    head = b"Subject: fits\r\n\r\n"
    r.s.sendall(head + b"x" * (2048 - len(head)) + b"\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK [APPENDUID ")
    r.s.sendall(b"d APPEND INBOX {5000+}\r\n" + b"y" * 5000 + b"\r\n")
    assert r.f.readline() == b"* BYE [TOOBIG] Literal too large\r\n"
    assert r.f.readline() == b""
    r.close()
    c = st.imap(*user)
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    c.logout()


def test_literal_minus(stack_factory):
    """limits.literal_plus = no: LITERAL- (RFC 7888) before and after
    login; non-synchronizing literals up to 4096 octets, a larger one
    ends the session."""
    st = stack_factory("literalminus", settings=["limits.literal_plus=no"])
    user = st.new_user("minus")
    st.import_message(user[0], b"Subject: keep me\r\n\r\nbody\r\n")
    # before login, at the frontend
    s = st.ssl_context().wrap_socket(
        socket.create_connection((st.host, st.IMAPS_PORT), timeout=15),
        server_hostname=st.host)
    f = s.makefile("rb")
    greeting = f.readline()
    assert b" LITERAL- " in greeting and b"LITERAL+" not in greeting
    s.sendall(b"a LOGIN {4097+}\r\n" + b"x" * 4097 + b" y\r\n")
    assert f.readline() == (b"* BYE [TOOBIG] Non-synchronizing literals are "
                            b"limited to 4096 octets (LITERAL-)\r\n")
    assert f.readline() == b""
    s.close()
    # after login, at the backend
    r = Raw(st, user)
    out = r.cmd(b"c", b"CAPABILITY")
    assert b" LITERAL- " in out[0] and b"LITERAL+" not in out[0]
    msg = b"Subject: small\r\n\r\n" + b"s" * 4000 + b"\r\n"
    assert len(msg) <= 4096
    r.s.sendall(b"d APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")
    r.s.sendall(b"e APPEND INBOX {5000+}\r\n" + b"y" * 5000 + b"\r\n")
    assert r.f.readline() == (b"* BYE [TOOBIG] Non-synchronizing literals "
                              b"are limited to 4096 octets (LITERAL-)\r\n")
    assert r.f.readline() == b""
    r.close()
    c = st.imap(*user)
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    c.logout()


BUDGET = 1024 * 1024  # backend.max_command_memory in the test below
BUSY = (b"[UNAVAILABLE] Server busy with other large commands, try again "
        b"later")


def test_command_memory_shared_by_all_sessions(stack_factory):
    """backend.max_command_memory: the literals of the commands being read
    by all sessions of a backend together, counted from their headers on.
    One that does not fit is refused, a synchronizing one with NO before
    the client sends it, a non-synchronizing one with BYE; the room comes
    back when a command is done or its session goes; no stored mail is
    touched."""
    st = stack_factory("cmdmemory",
                       settings=["backend.max_command_memory=1M"])
    a_user = st.new_user("holder")
    b_user = st.new_user("other")
    used = "portico_backend_command_memory_bytes"
    refused = "portico_backend_command_memory_refusals_total"
    a = Raw(st, a_user)
    b = Raw(st, b_user)
    # APPENDLIMIT is at most the budget
    caps = b.cmd(b"c", b"CAPABILITY")[0]
    assert b" APPENDLIMIT=%d" % BUDGET in caps, caps
    # a holds 700,000 octets of the budget once it has announced them
    a.s.sendall(b"a1 APPEND INBOX {700000}\r\n")
    assert a.f.readline() == b"+ OK\r\n"
    a.s.sendall(b"Subject: held\r\n\r\n")
    assert backend_metric(st, used) == 700000
    # b's 400,000 do not fit beside them: NO, not "+", and b goes on
    b.s.sendall(b"b1 APPEND INBOX {400000}\r\n")
    assert b.f.readline() == b"b1 NO " + BUSY + b"\r\n"
    assert b.cmd(b"b2", b"NOOP")[-1].startswith(b"b2 OK")
    assert backend_metric(st, refused) == 1
    # 300,000 do, and are given back when the command is done
    msg = b"Subject: fits\r\n\r\n" + b"f" * (300000 - 19) + b"\r\n"
    assert len(msg) == 300000
    b.s.sendall(b"b3 APPEND INBOX {300000}\r\n")
    assert b.f.readline() == b"+ OK\r\n"
    assert backend_metric(st, used) == 1000000
    b.s.sendall(msg + b"\r\n")
    assert b.until(b"b3")[-1].startswith(b"b3 OK [APPENDUID ")
    assert backend_metric(st, used) == 700000
    # a non-synchronizing literal that does not fit ends its session
    b.s.sendall(b"b4 APPEND INBOX {400000+}\r\n")
    assert b.f.readline() == b"* BYE " + BUSY + b"\r\n"
    assert b.f.readline() == b""
    b.close()
    assert backend_metric(st, refused) == 2
    # a session gone in the middle of its literal gives its part back
    a.close()
    wait_for(lambda: backend_metric(st, used) == 0,
             what="the budget to be given back")
    # and the whole budget is there again
    c = Raw(st, b_user)
    big = b"Subject: whole\r\n\r\n" + b"w" * (BUDGET - 20) + b"\r\n"
    assert len(big) == BUDGET
    c.s.sendall(b"c1 APPEND INBOX {%d}\r\n" % len(big))
    assert c.f.readline() == b"+ OK\r\n"
    c.s.sendall(big + b"\r\n")
    assert c.until(b"c1")[-1].startswith(b"c1 OK [APPENDUID ")
    c.close()
    # what was acknowledged is stored, what was refused or cut is not
    m = st.imap(*b_user)
    assert m.select("INBOX")[1] == [b"2"]
    sizes = m.fetch("1:2", "(RFC822.SIZE)")[1]
    assert [int(x.split(b"RFC822.SIZE ")[1].rstrip(b")")) for x in sizes] \
        == [300000, BUDGET]
    m.logout()
    m = st.imap(*a_user)
    assert m.select("INBOX")[1] == [b"0"]
    m.logout()


def proc_status_kb(pid, field):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def test_large_append_memory(stack_factory, monkeypatch):
    """A large APPEND's message leaves the backend's memory once the
    command is done, though its session stays (not when the session sends
    its next command or goes), and is stored as sent: it is used where it
    was read, not copied for the command."""
    # AddressSanitizer keeps freed memory in quarantine: off here, so that
    # what is given back shows in the process's resident memory
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS",
                       (asan + ":" if asan else "") + "quarantine_size_mb=0")
    st = stack_factory("appendmemory")
    pid = int((st.dir / "s1b1" / "pid").read_text().strip())
    user = st.new_user("large")
    size = 40 * 1024 * 1024
    msg = (b"Subject: large\r\n\r\n"
           + (b"x" * 998 + b"\r\n") * (size // 1000))
    msg += b"y" * (size - len(msg) - 2) + b"\r\n"
    assert len(msg) == size
    r = Raw(st, user)
    assert r.cmd(b"n", b"NOOP")[-1].startswith(b"n OK")
    before = proc_status_kb(pid, "RssAnon")
    r.s.sendall(b"a APPEND INBOX {%d}\r\n" % size)
    assert r.f.readline() == b"+ OK\r\n"
    r.s.sendall(msg + b"\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    held = proc_status_kb(pid, "RssAnon") - before
    assert held < size // 1024 // 4, \
        "%d KB still held after a %d KB APPEND" % (held, size // 1024)
    assert r.cmd(b"n2", b"NOOP")[-1].startswith(b"n2 OK")
    r.close()
    m = st.imap(*user)
    m.select("INBOX", readonly=True)
    assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == msg
    m.logout()
