"""The backend's IMAP engine through the frontend, with imaplib: mailbox
management, APPEND, STORE, COPY/MOVE, EXPUNGE, SEARCH, IDLE and several
sessions on one mailbox."""

import base64
import imaplib
import re
import select
import socket
import time

import pytest

from conftest import DATA

pytestmark = pytest.mark.daemons


def msg(i, extra=b""):
    return (b"From: Sender %d <s%d@example.org>\r\nTo: rcpt@example.test\r\n"
            b"Subject: note %d\r\nDate: Mon, 0%d Jan 2024 10:00:00 +0000\r\n"
            b"\r\nline one of %d\r\n" % (i, i, i, i % 9 + 1, i)) + extra


def tagged_lines(conn, cmd):
    """Sends one command as it is; returns every line up to its tagged
    answer, untagged ones included, as the server sent them."""
    tag = conn._new_tag()
    conn.send(tag + b" " + cmd + b"\r\n")
    lines = []
    while True:
        line = conn.readline()
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


@pytest.fixture
def user(stack):
    return stack.new_user("imap")


@pytest.fixture
def c(stack, user):
    conn = stack.imap(*user)
    yield conn
    try:
        conn.logout()
    except Exception:
        pass


def names(conn, pattern="*"):
    typ, data = conn.list('""', pattern)
    assert typ == "OK"
    out = {}
    for line in data:
        if line is None:
            continue
        m = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
        attrs, name = m.group(1).decode(), m.group(2).decode().strip('"')
        out[name] = set(attrs.split())
    return out


def test_capabilities_after_login(stack, user):
    conn = stack.imap()
    typ, data = conn.login(*user)
    caps = data[0].decode()
    for cap in ("IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "REPLACE",
                "NAMESPACE",
                "SPECIAL-USE", "CHILDREN", "UNSELECT", "ENABLE",
                "MULTIAPPEND", "LITERAL+"):
        assert cap in caps.split(), cap
    conn.logout()


def test_provisioned_folders_and_special_use(c):
    got = names(c)
    assert set(got) == {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                        "Archive"}
    assert "\\Sent" in got["Sent"] and "\\Trash" in got["Trash"]
    assert "\\Junk" in got["Junk"] and "\\Archive" in got["Archive"]
    assert "\\Drafts" in got["Drafts"]
    typ, data = c.lsub('""', "*")
    assert len(data) == 6
    typ, data = c.namespace()
    assert data == [b'(("" "/")) NIL NIL']


def test_create_rename_delete_hierarchy(c):
    assert c.create("Projects/2024/Q1")[0] == "OK"
    got = names(c, "Projects*")
    assert set(got) == {"Projects", "Projects/2024", "Projects/2024/Q1"}
    assert "\\HasChildren" in got["Projects"]
    assert "\\HasNoChildren" in got["Projects/2024/Q1"]
    assert names(c, "Projects/%").keys() == {"Projects/2024"}
    typ, data = c.create("Projects")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    c.append("Projects/2024/Q1", None, None, msg(1))
    assert c.rename("Projects", "Work")[0] == "OK"
    got = names(c, "Work*")
    assert set(got) == {"Work", "Work/2024", "Work/2024/Q1"}
    assert c.select("Work/2024/Q1")[1] == [b"1"]
    c.close()
    # Deleting a parent keeps it as \Noselect for its children.
    assert c.delete("Work")[0] == "OK"
    assert "\\Noselect" in names(c, "Work")["Work"]
    assert c.delete("Work/2024/Q1")[0] == "OK"
    assert c.delete("Work/2024")[0] == "OK"
    typ, data = c.delete("Work")
    assert typ == "OK"
    assert names(c, "Work*") == {}
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    typ, data = c.delete("Nope")
    assert typ == "NO" and b"NONEXISTENT" in data[0]


def test_utf7_names(c):
    name = "Entw&APw-rfe"   # "Entwürfe" in modified UTF-7
    assert c.create(name)[0] == "OK"
    assert name in names(c)
    assert c.select(name)[0] == "OK"
    typ, data = c.create("Bad&Jjo")          # unterminated base64
    assert typ == "NO"
    typ, data = c.create("a//b")
    assert typ == "NO"
    typ, data = c.create("x/../y")
    assert typ == "NO"
    typ, data = c.create("star*")
    assert typ == "NO"


def test_rename_inbox_moves_messages(stack, user, c):
    stack.import_message(user[0], msg(1))
    stack.import_message(user[0], msg(2))
    assert c.rename("INBOX", "Old-Inbox")[0] == "OK"
    assert c.select("INBOX")[1] == [b"0"]
    assert c.select("Old-Inbox")[1] == [b"2"]


def test_append_uidplus_and_status(c):
    typ, data = c.append("INBOX", r"(\Flagged $Important)",
                         '"05-Feb-2024 12:30:00 +0100"', msg(1))
    assert typ == "OK"
    m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    uidvalidity, uid = int(m.group(1)), int(m.group(2))
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
    assert data[0] == (b'"INBOX" (MESSAGES 1 UIDNEXT %d UIDVALIDITY %d '
                       b'UNSEEN 1 SIZE %d)' % (uid + 1, uidvalidity,
                                               len(msg(1))))
    c.select("INBOX")
    typ, data = c.uid("FETCH", str(uid), "(FLAGS INTERNALDATE RFC822.SIZE "
                      "BODY.PEEK[])")
    assert b"FLAGS (\\Flagged $Important)" in data[0][0]
    assert b'INTERNALDATE "05-Feb-2024 11:30:00 +0000"' in data[0][0]
    assert data[0][1] == msg(1)
    typ, data = c.append("Nowhere", None, None, msg(2))
    assert typ == "NO" and b"TRYCREATE" in data[0]


def test_multiappend_is_all_or_nothing(stack, c):
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.IMAPS_PORT)),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s %s\r\n" % tuple(x.encode() for x in c._creds)
              ) if hasattr(c, "_creds") else None
    s.close()
    m1, m2 = msg(1), msg(2)
    typ, data = c._simple_command(
        "APPEND", "INBOX", "(\\Seen)", "{%d+}\r\n%s" % (len(m1), m1.decode())
        + " {%d+}\r\n%s" % (len(m2), m2.decode()))
    assert typ == "OK", data
    assert re.search(rb"APPENDUID \d+ 1:2", c.untagged_responses.get(
        "OK", [b""])[-1] + b" " + data[0]) or b"1:2" in data[0]
    assert c.select("INBOX")[1] == [b"2"]


def test_store_flags_and_keywords(c):
    for i in range(1, 4):
        c.append("INBOX", None, None, msg(i))
    c.select("INBOX")
    typ, data = c.store("1:2", "+FLAGS", r"(\Seen work)")
    assert data == [b"1 (FLAGS (\\Seen work))", b"2 (FLAGS (\\Seen work))"]
    typ, data = c.store("2", "-FLAGS", "(work)")
    assert data == [b"2 (FLAGS (\\Seen))"]
    typ, data = c.store("3", "FLAGS.SILENT", r"(\Answered)")
    assert typ == "OK" and data == [None]
    typ, data = c.uid("STORE", "3", "+FLAGS", r"(\Draft)")
    assert data == [b"3 (UID 3 FLAGS (\\Answered \\Draft))"]
    typ, data = c.fetch("1:3", "(FLAGS)")
    assert data == [b"1 (FLAGS (\\Seen work))", b"2 (FLAGS (\\Seen))",
                    b"3 (FLAGS (\\Answered \\Draft))"]
    typ, data = c.status("INBOX", "(UNSEEN)")
    assert data == [b'"INBOX" (UNSEEN 1)']
    # several keywords, in the order the mailbox learnt them; the other
    # items of a flag sync around them
    c.store("1", "+FLAGS", "(beta alpha)")
    typ, data = c.fetch("1", "(UID RFC822.SIZE FLAGS)")
    size = len(c.fetch("1", "(BODY.PEEK[])")[1][0][1])
    assert data == [b"1 (UID 1 FLAGS (\\Seen work beta alpha) "
                    b"RFC822.SIZE %d)" % size], data
    with pytest.raises(imaplib.IMAP4.error):
        c.store("1", "+FLAGS", r"(\Recent)")
    with pytest.raises(imaplib.IMAP4.error):
        c.store("9", "+FLAGS", r"(\Seen)")
    c.select("INBOX", readonly=True)
    typ, data = c.store("1", "+FLAGS", r"(\Flagged)")
    assert typ == "NO"


def test_copy_move_expunge(c):
    for i in range(1, 5):
        c.append("INBOX", None, None, msg(i))
    c.select("INBOX")
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK" and re.search(rb"COPYUID \d+ 1,2 1,2", data[0])
    typ, data = c._simple_command("MOVE", "3", "Trash")
    assert typ == "OK"
    assert c.untagged_responses.pop("EXPUNGE") == [b"3"]
    c.store("1", "+FLAGS", r"(\Deleted)")
    typ, data = c.expunge()
    assert data == [b"1"]
    typ, data = c.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 2)", b"2 (UID 4)"]
    c.store("1:2", "+FLAGS", r"(\Deleted)")
    typ, data = c.uid("EXPUNGE", "4")
    assert typ == "OK"
    typ, data = c.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 2)"]
    assert c.status("Archive", "(MESSAGES)")[1] == [b'"Archive" (MESSAGES 2)']
    assert c.status("Trash", "(MESSAGES)")[1] == [b'"Trash" (MESSAGES 1)']
    typ, data = c.copy("1", "Missing")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # CLOSE expunges \Deleted silently.
    c.close()
    assert c.status("INBOX", "(MESSAGES)")[1] == [b'"INBOX" (MESSAGES 0)']


def test_search(c):
    for i in range(1, 6):
        c.append("INBOX", r"(\Seen)" if i % 2 else None, None,
                 msg(i, b"x" * (i * 100)))
    c.select("INBOX")
    assert c.search(None, "ALL")[1] == [b"1 2 3 4 5"]
    assert c.search(None, "SEEN")[1] == [b"1 3 5"]
    assert c.search(None, "UNSEEN")[1] == [b"2 4"]
    assert c.search(None, "SUBJECT", '"note 3"')[1] == [b"3"]
    assert c.search(None, "FROM", "s4@example")[1] == [b"4"]
    assert c.search(None, "OR", "SUBJECT", '"note 1"', "SUBJECT",
                    '"note 2"')[1] == [b"1 2"]
    assert c.search(None, "NOT", "SEEN", "LARGER", "400")[1] == [b"4"]
    assert c.search(None, "BODY", '"LINE ONE OF 5"')[1] == [b"5"]
    assert c.search(None, "2:3")[1] == [b"2 3"]
    assert c.uid("SEARCH", "UID", "4:*")[1] == [b"4 5"]
    assert c.search(None, "SENTSINCE", "04-Jan-2024")[1] == [b"3 4 5"]
    assert c.search(None, "HEADER", "To", "RCPT@")[1] == [b"1 2 3 4 5"]
    assert c.search("UTF-8", "TEXT", "note")[1] == [b"1 2 3 4 5"]
    typ, data = c.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    with pytest.raises(imaplib.IMAP4.error):
        c.search(None, "FROBNICATE")
    deep = "(" * 40 + "ALL" + ")" * 40
    with pytest.raises(imaplib.IMAP4.error):
        c.search(None, deep)


def test_two_sessions_see_each_other(stack, user):
    a = stack.imap(*user)
    b = stack.imap(*user)
    a.select("INBOX")
    b.select("INBOX")
    a.append("INBOX", None, None, msg(1))
    a.append("INBOX", None, None, msg(2))
    b.noop()
    assert b.untagged_responses.pop("EXISTS")[-1] == b"2"
    a.store("2", "+FLAGS", r"(\Flagged)")
    b.noop()
    assert b.untagged_responses.pop("FETCH") == [b"2 (UID 2 FLAGS (\\Flagged))"]
    # A session is not told again about its own change.
    a.noop()
    assert "FETCH" not in a.untagged_responses
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE") == [b"1"]
    typ, data = b.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 2)"]
    a.logout()
    b.logout()


def test_expunge_never_renumbers_under_a_command(stack, user):
    """RFC 3501 7.4.1 / RFC 9051 7.5.1: another session's expunge is not
    reported during FETCH, STORE or SEARCH, so the numbers a client uses
    keep their meaning; it comes with the next command that allows it."""
    a = stack.imap(*user)
    b = stack.imap(*user)
    for i in range(3):
        a.append("INBOX", None, None, msg(i))
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()

    def raw(cmd):
        return tagged_lines(b, cmd)
    # the others are answered, and the tagged OK says why one is not
    # (RFC 2180 4.1, RFC 5530 EXPUNGEISSUED)
    out = raw(b"FETCH 1:* (UID)")
    assert out[:-1] == [b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"]
    assert b" OK [EXPUNGEISSUED] " in out[-1]
    out = raw(b"UID FETCH 1 (FLAGS)")
    assert len(out) == 1 and b" OK [EXPUNGEISSUED] " in out[0]
    out = raw(b"FETCH 2:3 (UID)")
    assert len(out) == 3 and out[-1].endswith(b" OK FETCH completed\r\n")
    out = raw(b"STORE 3 +FLAGS.SILENT (\\Seen)")
    assert len(out) == 1 and out[0].endswith(b" OK STORE completed\r\n")
    out = raw(b"STORE 1:2 +FLAGS (\\Flagged)")
    assert out[:-1] == [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"]
    assert b" OK [EXPUNGEISSUED] " in out[-1]
    out = raw(b"SEARCH ALL")
    assert out[0] == b"* SEARCH 2 3\r\n" and b" OK " in out[-1]
    # COPY copies the others; COPYUID names what was copied
    a.create("Kept")
    out = raw(b"COPY 1:3 Kept")
    assert len(out) == 1 and re.search(
        rb" OK \[COPYUID \d+ 2,3 1,2\] COPY completed", out[0]), out
    # NOOP may, and does, report it; the numbers shift then
    out = raw(b"NOOP")
    assert out[0] == b"* 1 EXPUNGE\r\n"
    out = raw(b"FETCH 1:* (UID FLAGS)")
    assert out[:-1] == [b"* 1 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
                        b"* 2 FETCH (UID 3 FLAGS (\\Seen))\r\n"]
    assert out[-1].endswith(b" OK FETCH completed\r\n")
    a.logout()
    b.logout()


def test_copy_and_move_read_the_clients_numbers(stack, user):
    """A COPY or MOVE by sequence number names the messages in the numbers
    the client knew when it sent it: another session's expunge is reported
    after the set is read (with MOVE's own), never before it, so that it
    does not shift the set onto other messages."""
    a = stack.imap(*user)
    b = stack.imap(*user)
    for i in range(4):
        a.append("INBOX", None, None, msg(i))
    a.create("Kept")
    b.select("INBOX")
    a.select("INBOX")
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()

    def raw(cmd):
        return tagged_lines(b, cmd)
    # b still numbers UID 1..4 as 1..4: its 2 is UID 2
    out = raw(b"COPY 2 Kept")
    assert not any(b"EXPUNGE" in x for x in out), out
    assert re.search(rb" OK \[COPYUID \d+ 2 1\]", out[-1]), out
    out = raw(b"MOVE 3 Kept")
    assert b"* OK [COPYUID" in out[0] and b" 3 2] " in out[0], out
    # then the other session's expunge and MOVE's own, in b's numbers
    assert out[1:-1] == [b"* 1 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], out
    assert out[-1].endswith(b" OK MOVE completed\r\n")
    typ, data = b.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 2)", b"2 (UID 4)"]
    a.select("Kept")
    typ, data = a.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
    assert subjects == [b"Subject: note 1", b"Subject: note 2"]
    a.logout()
    b.logout()


def test_deleted_selected_mailbox_ends_the_session(stack, user):
    """A session whose selected mailbox another session deleted is told
    with BYE at its next command, and that command does not run (RFC 9051
    7.1.5: nothing follows a BYE)."""
    a = stack.imap(*user)
    b = stack.imap(*user)
    a.create("Doomed")
    a.append("Doomed", None, None, msg(1))
    a.select("Doomed")
    b.delete("Doomed")
    tag = a._new_tag()
    a.send(tag + b" FETCH 1:* (FLAGS)\r\n")
    a.sock.settimeout(10)
    assert a.readline() == (b"* BYE [NONEXISTENT] Selected mailbox was "
                            b"deleted\r\n")
    assert a.readline() == b""
    b.logout()


def test_close_removes_every_deleted_message(stack, user):
    """CLOSE removes every \\Deleted message of the mailbox (RFC 3501
    6.4.2), one another session added after this one looked included,
    and sends no EXPUNGE."""
    a = stack.imap(*user)
    b = stack.imap(*user)
    a.create("Trash2")
    a.append("Trash2", None, None, msg(1))
    a.append("Trash2", None, None, msg(2))
    a.select("Trash2")
    a.store("1", "+FLAGS", r"(\Deleted)")
    b.append("Trash2", r"(\Deleted)", None, msg(3))
    typ, data = a.close()
    assert typ == "OK"
    assert "EXPUNGE" not in a.untagged_responses
    typ, data = b.status("Trash2", "(MESSAGES)")
    assert data == [b'"Trash2" (MESSAGES 1)'] or \
        data == [b"Trash2 (MESSAGES 1)"], data
    b.select("Trash2")
    assert b.fetch("1:*", "(UID)")[1] == [b"1 (UID 2)"]
    a.logout()
    b.logout()


def test_idle_sees_append_from_other_session(stack, user):
    watcher = stack.imap(*user)
    watcher.select("INBOX")
    tag = watcher._new_tag()
    watcher.send(tag + b" IDLE\r\n")
    assert watcher.readline().startswith(b"+ ")
    writer = stack.imap(*user)
    writer.append("INBOX", None, None, msg(1))
    watcher.sock.settimeout(10)
    line = watcher.readline()
    assert line == b"* 1 EXISTS\r\n"
    watcher.send(b"DONE\r\n")
    assert watcher.readline().startswith(tag + b" OK")
    writer.logout()
    watcher.logout()


def test_idle_requires_done(stack, user):
    c = stack.imap(*user)
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")
    c.send(b"NOPE\r\n")
    assert c.readline().startswith(tag + b" BAD")
    assert c.noop()[0] == "OK"
    c.logout()


# -- CONDSTORE / QRESYNC (RFC 7162) -------------------------------------------

def modseq_of(data):
    return int(re.search(rb"MODSEQ \((\d+)\)", data).group(1))


def test_condstore(stack, user):
    c = stack.imap(*user)
    for i in range(1, 4):
        c.append("INBOX", None, None, msg(i))
    typ, data = c._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    c.state = "SELECTED"      # imaplib does not know SELECT parameters
    hms = c.untagged_responses.pop("OK")
    highest = [int(re.search(rb"HIGHESTMODSEQ (\d+)", x).group(1))
               for x in hms if b"HIGHESTMODSEQ" in x][0]
    typ, data = c.fetch("1:3", "(MODSEQ)")
    modseqs = [modseq_of(d) for d in data]
    assert max(modseqs) == highest
    typ, data = c.store("2", "+FLAGS", r"(\Flagged)")
    m2 = modseq_of(data[0])
    assert m2 > highest
    # Only what changed since `highest`.
    typ, data = c._simple_command("FETCH", "1:*", "(FLAGS)",
                                  "(CHANGEDSINCE %d)" % highest)
    assert [d for d in c.untagged_responses.pop("FETCH")] == [
        b"2 (FLAGS (\\Flagged) MODSEQ (%d))" % m2]
    # UNCHANGEDSINCE: message 2 changed after `highest`, 1 did not.
    typ, data = c._simple_command("STORE", "1:2", "(UNCHANGEDSINCE %d)"
                                  % highest, "+FLAGS", r"(\Seen)")
    assert typ == "OK" and b"[MODIFIED 2]" in data[0]
    fetched = c.untagged_responses.pop("FETCH")
    assert len(fetched) == 1 and fetched[0].startswith(b"1 (FLAGS (\\Seen)")
    typ, data = c.search(None, "MODSEQ", str(m2))
    assert re.match(rb"\d( \d)* \(MODSEQ \d+\)", data[0])
    typ, data = c.status("INBOX", "(HIGHESTMODSEQ)")
    assert b"HIGHESTMODSEQ" in data[0]
    # RFC 7162 3.1.3: UNCHANGEDSINCE answers with MODSEQ even .SILENT
    top = max(modseq_of(d) for d in c.fetch("1:3", "(MODSEQ)")[1])
    typ, data = c._simple_command("STORE", "3", "(UNCHANGEDSINCE %d)" % top,
                                  "+FLAGS.SILENT", r"(\Answered)")
    assert typ == "OK" and b"MODIFIED" not in data[0]
    fetched = c.untagged_responses.pop("FETCH")
    assert fetched == [b"3 (MODSEQ (%d))" % (top + 1)], fetched
    typ, data = c._simple_command("UID", "STORE", "3", "(UNCHANGEDSINCE %d)"
                                  % (top + 1), "-FLAGS.SILENT",
                                  r"(\Answered)")
    fetched = c.untagged_responses.pop("FETCH")
    assert fetched == [b"3 (UID 3 MODSEQ (%d))" % (top + 2)], fetched
    # a .SILENT STORE without UNCHANGEDSINCE stays silent
    typ, data = c.store("3", "+FLAGS.SILENT", r"(\Answered)")
    assert "FETCH" not in c.untagged_responses
    c.logout()


def test_highestmodseq_with_every_select(stack, user):
    """RFC 7162 3.1.2.1: HIGHESTMODSEQ comes with every successful SELECT
    and EXAMINE, whether or not the client has enabled CONDSTORE."""
    c = stack.imap(*user)
    c.append("INBOX", None, None, msg(1))
    for cmd in (c.select, lambda m: c.select(m, readonly=True)):
        cmd("INBOX")
        oks = c.untagged_responses.pop("OK")
        assert any(re.match(rb"\[HIGHESTMODSEQ \d+\]", x) for x in oks), oks
    c.logout()


def test_qresync_reports_vanished_and_changes(stack, user):
    c = stack.imap(*user)
    for i in range(1, 6):
        c.append("INBOX", None, None, msg(i))
    typ, data = c._simple_command("ENABLE", "QRESYNC")
    assert b"QRESYNC" in c.untagged_responses.pop("ENABLED")[0]
    c._simple_command("SELECT", "INBOX")
    oks = c.untagged_responses.pop("OK")
    uidvalidity = int([re.search(rb"UIDVALIDITY (\d+)", x).group(1)
                       for x in oks if b"UIDVALIDITY" in x][0])
    since = int([re.search(rb"HIGHESTMODSEQ (\d+)", x).group(1)
                 for x in oks if b"HIGHESTMODSEQ" in x][0])
    c.logout()
    # Meanwhile another session deletes one message and flags another.
    o = stack.imap(*user)
    o.select("INBOX")
    o.store("2", "+FLAGS", r"(\Deleted)")
    o.expunge()
    o.store("3", "+FLAGS", r"(\Answered)")   # was UID 4
    o.logout()
    c = stack.imap(*user)
    c._simple_command("ENABLE", "QRESYNC")
    typ, data = c._simple_command(
        "SELECT", "INBOX", "(QRESYNC (%d %d 1:5))" % (uidvalidity, since))
    assert typ == "OK"
    c.state = "SELECTED"
    assert c.untagged_responses.pop("VANISHED") == [b"(EARLIER) 2"]
    fetches = c.untagged_responses.pop("FETCH")
    assert len(fetches) == 1 and b"UID 4 FLAGS (\\Answered)" in fetches[0]
    # With QRESYNC an expunge is reported as VANISHED.
    c.store("1", "+FLAGS", r"(\Deleted)")
    typ, data = c.expunge()
    assert c.untagged_responses.pop("VANISHED") == [b"1"]
    c.logout()


def test_qresync_never_outruns_a_held_back_expunge(stack, user):
    """While another session's expunge cannot be reported (UID FETCH,
    FETCH, STORE, SEARCH), MODSEQs newer than it may be; the tagged OK
    then carries a HIGHESTMODSEQ below the expunge, so that a client that
    resynchronises from it after losing the connection still learns the
    message went (RFC 7162 3.2; errata 1810 of RFC 5162)."""
    a = stack.imap(*user)
    for i in range(1, 4):
        a.append("INBOX", None, None, msg(i))
    a._simple_command("ENABLE", "QRESYNC")
    a._simple_command("SELECT", "INBOX")
    a.state = "SELECTED"
    oks = a.untagged_responses.pop("OK")
    uidvalidity = int([re.search(rb"UIDVALIDITY (\d+)", x).group(1)
                       for x in oks if b"UIDVALIDITY" in x][0])
    start = int([re.search(rb"HIGHESTMODSEQ (\d+)", x).group(1)
                 for x in oks if b"HIGHESTMODSEQ" in x][0])
    b = stack.imap(*user)
    b.select("INBOX")
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    b.store("1", "+FLAGS", r"(\Flagged)")          # UID 2, after it

    def raw(cmd):
        return tagged_lines(a, cmd)
    out = raw(b"UID FETCH 2 (FLAGS)")
    assert any(b"UID 2" in x and b"MODSEQ" in x for x in out[:-1]), out
    assert not any(b"VANISHED" in x for x in out), out
    m = re.search(rb" OK \[HIGHESTMODSEQ (\d+)\] ", out[-1])
    assert m and int(m.group(1)) == start, out
    # with a code of its own the tagged OK keeps it; HIGHESTMODSEQ comes
    # untagged just before
    out = raw(b"FETCH 1 (FLAGS)")
    assert out[-2] == b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % start, out
    assert b" OK [EXPUNGEISSUED] " in out[-1]
    # the connection is lost; a resync from that modseq finds the expunge
    c = stack.imap(*user)
    c._simple_command("ENABLE", "QRESYNC")
    typ, data = c._simple_command(
        "SELECT", "INBOX", "(QRESYNC (%d %d))" % (uidvalidity, start))
    assert typ == "OK"
    assert c.untagged_responses.pop("VANISHED") == [b"(EARLIER) 1"]
    # once it is reported, the tagged OKs are plain again
    out = raw(b"NOOP")
    assert out[0] == b"* VANISHED 1\r\n"
    out = raw(b"UID FETCH 2 (FLAGS)")
    assert b"HIGHESTMODSEQ" not in out[-1], out
    c.logout()
    b.logout()
    a.logout()


def test_qresync_beyond_the_expunge_records_kept(stack_factory):
    """backend.max_expunge_records=3: the store keeps the latest three
    expunges of a mailbox.  A resync from within them is exact; one from
    before them is told every UID no longer there (of its known-uids or
    of the set asked); a session that saw none of them learns exactly
    which of its messages went; `check --all` finds the bookkeeping
    right."""
    st = stack_factory(name="qresync-floor",
                       settings=["backend.max_expunge_records=3"])
    user = st.new_user("floor")
    c = st.imap(*user)
    for i in range(1, 11):
        c.append("INBOX", None, None, msg(i))
    c._simple_command("ENABLE", "QRESYNC")
    c._simple_command("SELECT", "INBOX")
    oks = c.untagged_responses.pop("OK")
    uidvalidity = int([re.search(rb"UIDVALIDITY (\d+)", x).group(1)
                       for x in oks if b"UIDVALIDITY" in x][0])
    start = int([re.search(rb"HIGHESTMODSEQ (\d+)", x).group(1)
                 for x in oks if b"HIGHESTMODSEQ" in x][0])
    c.state = "SELECTED"
    # A session that stays selected (without QRESYNC) and sees nothing.
    w = st.imap(*user)
    w.select("INBOX")
    # Expunge UIDs 2, 4, 6, 7, 9 one at a time, noting the modseq between.
    o = st.imap(*user)
    o.select("INBOX")
    marks = {}
    for uid in (2, 4, 6, 7, 9):
        o.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
        typ, _ = o._simple_command("UID", "EXPUNGE", str(uid))
        assert typ == "OK"
        typ, data = o.status("INBOX", "(HIGHESTMODSEQ)")
        marks[uid] = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                                   data[0]).group(1))
    o.logout()
    c.logout()

    def qresync(since, known=None):
        s = st.imap(*user)
        s._simple_command("ENABLE", "QRESYNC")
        arg = "(QRESYNC (%d %d%s))" % (uidvalidity, since,
                                       " " + known if known else "")
        typ, data = s._simple_command("SELECT", "INBOX", arg)
        assert typ == "OK", data
        s.state = "SELECTED"
        got = s.untagged_responses.pop("VANISHED", [])
        return s, got

    # Within the three kept (after UID 4's expunge: 6, 7, 9): exact.
    s, got = qresync(marks[4])
    assert got == [b"(EARLIER) 6:7,9"], got
    s.logout()
    # From before them: every UID below UIDNEXT that is gone.
    s, got = qresync(start)
    assert got == [b"(EARLIER) 2,4,6:7,9"], got
    # UID FETCH ... (CHANGEDSINCE x VANISHED) likewise, within the set.
    typ, data = s._simple_command("UID", "FETCH", "3:7", "(FLAGS)",
                                  "(CHANGEDSINCE %d VANISHED)" % start)
    assert typ == "OK", data
    assert s.untagged_responses.pop("VANISHED") == [b"(EARLIER) 4,6:7"]
    typ, data = s._simple_command("UID", "FETCH", "1:*", "(FLAGS)",
                                  "(CHANGEDSINCE %d VANISHED)" % marks[6])
    assert s.untagged_responses.pop("VANISHED") == [b"(EARLIER) 7,9"]
    s.logout()
    # With known-uids: only those.
    s, got = qresync(start, "1:5")
    assert got == [b"(EARLIER) 2,4"], got
    s.logout()
    # The session that saw nothing: NOOP tells it exactly what went.
    typ, _ = w.noop()
    expunged = [int(x) for x in w.untagged_responses.pop("EXPUNGE")]
    # Sequence numbers as each went: UIDs 2,4,6,7,9 were 2,4,6,7,9, each
    # one lower per earlier removal.
    assert expunged == [2, 3, 4, 4, 5], expunged
    typ, data = w.uid("SEARCH", "ALL")
    assert data[0].split() == [b"1", b"3", b"5", b"8", b"10"]
    w.logout()
    import os
    import subprocess
    from pathlib import Path
    build = Path(os.environ.get("PORTICO_BUILD",
                                Path(__file__).resolve().parents[2] / "build"))
    p = subprocess.run([str(build / "portico-admin"), "-c",
                        str(st.dir / "s1b1" / "backend.ini"), "check",
                        "--all"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "consistent" in p.stdout, p.stdout + p.stderr


# -- smaller extensions -----------------------------------------------------

def test_list_extended_and_status(c):
    c.create("Lists/A")
    c.subscribe("Lists/A")
    c.unsubscribe("Sent")
    c.subscribe("Gone")
    typ, data = c._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
    got = c.untagged_responses.pop("LIST")
    assert any(b'\\Subscribed \\NonExistent) "/" "Gone"' in x for x in got)
    assert not any(b'"Sent"' in x for x in got)
    typ, data = c._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)",
                                  '""', '"Lists"')
    got = c.untagged_responses.pop("LIST")
    assert got == [b'() "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))']
    typ, data = c._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"',
                                  "RETURN", "(STATUS (MESSAGES UIDNEXT))")
    got = c.untagged_responses.pop("LIST")
    assert len(got) == 5           # Sent Drafts Trash Junk Archive
    status = c.untagged_responses.pop("STATUS")
    assert len(status) == 5 and all(b"MESSAGES 0" in x for x in status)
    typ, data = c._simple_command("LIST", '""', '("INBOX" "Lists/*")',
                                  "RETURN", "(SUBSCRIBED CHILDREN)")
    got = c.untagged_responses.pop("LIST")
    assert len(got) == 2
    assert any(b'\\Subscribed) "/" "Lists/A"' in x for x in got)
    # INBOX is matched case-insensitively, wildcards after it or not
    for pat in ("inbox", "inbox*", "Inb%", "i*", "INBOX"):
        typ, data = c._simple_command("LIST", '""', pat)
        got = c.untagged_responses.pop("LIST", [])
        assert any(x.endswith(b' "INBOX"') for x in got), (pat, got)
    typ, data = c._simple_command("LIST", '""', "inboxes*")
    assert "LIST" not in c.untagged_responses
    # an empty selection (and REMOTE, which is ignored) is plain LIST
    # (RFC 5258 3)
    typ, data = c._simple_command("LIST", '""', '"%"')
    plain = sorted(c.untagged_responses.pop("LIST"))
    assert len(plain) > 5
    for sel in ("()", "(REMOTE)"):
        typ, data = c._simple_command("LIST", sel, '""', '"%"')
        assert sorted(c.untagged_responses.pop("LIST")) == plain, sel
    # RFC 3501 6.3.9: "%" answers a subscribed child of an unsubscribed
    # parent with the parent, \Noselect, once
    c.create("Deep/One/Two")
    c.subscribe("Deep/One/Two")
    c.subscribe("Deep/Other")
    typ, data = c._simple_command("LSUB", '""', '"%"')
    got = c.untagged_responses.pop("LSUB")
    assert [x for x in got if b"Deep" in x] == [b'(\\Noselect) "/" "Deep"'], got
    typ, data = c._simple_command("LSUB", '""', '"Deep/%"')
    got = sorted(c.untagged_responses.pop("LSUB"))
    assert got == [b'(\\Noselect) "/" "Deep/One"',       # not subscribed
                   b'(\\Noselect) "/" "Deep/Other"'], got  # not there


def test_create_special_use_and_objectid(c):
    typ, data = c._simple_command("CREATE", "MySent", "(USE (\\Sent))")
    assert typ == "OK" and re.search(rb"MAILBOXID \(F[0-9a-f]+\)", data[0])
    assert "\\Sent" in names(c, "MySent")["MySent"]
    typ, data = c._simple_command("CREATE", "Bad", "(USE (\\Bogus))")
    assert typ == "NO" and b"USEATTR" in data[0]
    c.append("INBOX", None, None, msg(1))
    c.append("MySent", None, None, msg(1))
    c.select("INBOX")
    typ, data = c.fetch("1", "(EMAILID THREADID SAVEDATE)")
    m = re.search(rb"EMAILID \((M[0-9a-f]+)\) THREADID NIL SAVEDATE", data[0])
    emailid = m.group(1)
    c.select("MySent")
    typ, data = c.fetch("1", "(EMAILID)")
    assert emailid in data[0]            # the same message, stored once
    assert c.search(None, "EMAILID", emailid.decode())[1] == [b"1"]
    typ, data = c.status("MySent", "(MAILBOXID APPENDLIMIT DELETED)")
    assert re.search(rb"MAILBOXID \(F[0-9a-f]+\) APPENDLIMIT \d+ DELETED 0",
                     data[0])
    assert c.search(None, "SAVEDATESUPPORTED", "YOUNGER", "3600")[1] == [b"1"]
    assert c.search(None, "OLDER", "3600")[1] == [b""]


def test_quota(c):
    typ, data = c._simple_command("GETQUOTAROOT", "INBOX")
    assert typ == "OK"
    assert c.untagged_responses.pop("QUOTAROOT") == [b'"INBOX" "User quota"']
    assert c.untagged_responses.pop("QUOTA")[0].startswith(b'"User quota" (')
    typ, data = c._simple_command("SETQUOTA", '"User quota"', "(STORAGE 1)")
    assert typ == "NO"


def test_over_quota_append(stack_factory):
    st = stack_factory("quota", settings=["backend.quota_storage=1k"])
    user, pw = st.new_user("q")
    conn = st.imap(user, pw)
    assert conn.append("INBOX", None, None, msg(1))[0] == "OK"
    typ, data = conn.append("INBOX", None, None, msg(2, b"y" * 2000))
    assert typ == "NO" and b"OVERQUOTA" in data[0]
    typ, data = conn._simple_command("GETQUOTAROOT", "INBOX")
    assert conn.untagged_responses.pop("QUOTA")[0].startswith(
        b'"User quota" (STORAGE 1 1)')
    conn.logout()
    st.down()


def test_esearch_and_searchres(c):
    for i in range(1, 6):
        c.append("INBOX", r"(\Seen)" if i % 2 else None, None, msg(i))
    c.select("INBOX")
    typ, data = c._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT ALL)",
                                  "SEEN")
    got = c.untagged_responses.pop("ESEARCH")[0]
    assert re.match(rb'\(TAG "\w+"\) MIN 1 MAX 5 COUNT 3 ALL 1,3,5$', got)
    typ, data = c._simple_command("UID", "SEARCH", "RETURN", "(COUNT)",
                                  "UNSEEN")
    got = c.untagged_responses.pop("ESEARCH")[0]
    assert re.match(rb'\(TAG "\w+"\) UID COUNT 2$', got)
    # SAVE, then use $ as a set and as a search key.
    typ, data = c._simple_command("SEARCH", "RETURN", "(SAVE)", "UNSEEN")
    assert typ == "OK" and "ESEARCH" not in c.untagged_responses
    typ, data = c.fetch("$", "(UID)")
    assert data == [b"2 (UID 2)", b"4 (UID 4)"]
    assert c.search(None, "$", "SUBJECT", '"note 4"')[1] == [b"4"]
    c.store("$", "+FLAGS", r"(\Flagged)")
    assert c.search(None, "FLAGGED")[1] == [b"2 4"]
    # RFC 5182 2.4: SAVE with MIN and/or MAX (without ALL or COUNT)
    # saves only the messages they name
    for ret, want in (("(SAVE MIN)", [b"1 (UID 1)"]),
                      ("(SAVE MAX)", [b"5 (UID 5)"]),
                      ("(MIN SAVE MAX)", [b"1 (UID 1)", b"5 (UID 5)"]),
                      ("(SAVE MIN COUNT)", [b"1 (UID 1)", b"3 (UID 3)",
                                            b"5 (UID 5)"])):
        typ, data = c._simple_command("SEARCH", "RETURN", ret, "SEEN")
        assert typ == "OK"
        c.untagged_responses.pop("ESEARCH", None)
        assert c.fetch("$", "(UID)")[1] == want, ret
    # RFC 5182 2.1: a SAVE search that fails (NO) leaves $ empty; one
    # that is malformed (BAD) leaves it as it was
    typ, data = c._simple_command("SEARCH", "RETURN", "(SAVE)", "UNSEEN")
    with pytest.raises(imaplib.IMAP4.error):      # BAD
        c._simple_command("SEARCH", "RETURN", "(SAVE)", "BOGUSKEY")
    assert c.fetch("$", "(UID)")[1] == [b"2 (UID 2)", b"4 (UID 4)"]
    typ, data = c._simple_command("SEARCH", "RETURN", "(SAVE)",
                                  "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    assert c.fetch("$", "(UID)")[1] == [None]


def test_compress_deflate(stack, user):
    import zlib
    stack.import_message(user[0], msg(1, b"z" * 50000))
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.IMAPS_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s %s\r\n" % (user[0].encode(), user[1].encode()))
    assert f.readline().startswith(b"a OK")
    s.sendall(b"b COMPRESS DEFLATE\r\n")
    assert f.readline() == b"b OK DEFLATE active\r\n"
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    dec = zlib.decompressobj(-15)

    def send(line):
        s.sendall(comp.compress(line) + comp.flush(zlib.Z_SYNC_FLUSH))

    out = b""

    def read_until(tag):
        nonlocal out
        while not re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n", out):
            chunk = s.recv(65536)
            assert chunk, out[-200:]
            out += dec.decompress(chunk)
        return out

    send(b"c SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\n")
    read_until(b"d")
    assert b"* 1 EXISTS" in out and b"d OK" in out
    assert msg(1, b"z" * 50000) in out
    send(b"e COMPRESS DEFLATE\r\n")
    assert b"e NO [COMPRESSIONACTIVE]" in read_until(b"e")
    send(b"f LOGOUT\r\n")
    assert b"f OK" in read_until(b"f")
    s.close()


def test_utf8_accept(stack, user):
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.IMAPS_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()

    def cmd(tag, text):
        s.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = f.readline()
            assert line
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    cmd(b"a", b"LOGIN %s %s" % (user[0].encode(), user[1].encode()))
    assert cmd(b"b", b"ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    name = "Entwürfe/Ärger".encode()
    assert cmd(b"c", b'CREATE "' + name + b'"')[-1].startswith(b"c OK")
    out = b"".join(cmd(b"d", b'LIST "" "Entw*"'))
    assert b'"Entw\xc3\xbcrfe/\xc3\x84rger"' in out
    body = "Subject: Grüße\r\n\r\nHallo\r\n".encode()
    out = cmd(b"e", b'APPEND "' + name + b'" UTF8 (~{%d+}\r\n' % len(body)
              + body + b")")
    assert out[-1].startswith(b"e OK [APPENDUID"), out
    out = b"".join(cmd(b"f", b'STATUS "' + name + b'" (MESSAGES)'))
    assert b"MESSAGES 1" in out
    s.close()
    # A client without UTF8=ACCEPT sees the same folder in modified UTF-7.
    c = stack.imap(*user)
    assert "Entw&APw-rfe/&AMQ-rger" in names(c, "Entw*")
    c.logout()


# -- MIME: ENVELOPE, BODYSTRUCTURE, sections, BINARY ------------------------

MULTI = (b'From: "Dave A." <dave@example.org>\r\n'
         b"To: Alice <alice@example.test>, undisclosed-recipients:;\r\n"
         b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
         b"Date: Wed, 04 Jan 2023 16:30:45 -0500\r\n"
         b"Message-ID: <m1@example.org>\r\n"
         b"MIME-Version: 1.0\r\n"
         b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
         b"preamble\r\n--b1\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         b"caf=C3=A9 au lait\r\n"
         b"--b1\r\n"
         b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\n"
         b"AAECAwQF\r\n"
         b"--b1--\r\n")


def test_envelope_bodystructure_sections_binary(c):
    c.append("INBOX", None, None, MULTI)
    c.select("INBOX")
    typ, data = c.fetch("1", "(ENVELOPE)")
    env = data[0]
    assert (b'ENVELOPE ("Wed, 04 Jan 2023 16:30:45 -0500" '
            b'"=?UTF-8?Q?caf=C3=A9?=" (("Dave A." NIL "dave" "example.org"))'
            in env), env
    assert b'(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)' in env
    assert b'"<m1@example.org>")' in env
    typ, data = c.fetch("1", "(BODYSTRUCTURE)")
    bs = data[0]
    assert b'("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable"' in bs
    assert b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8' in bs
    assert b'"mixed" ("boundary" "b1")' in bs
    typ, data = c.fetch("1", "(BODY)")
    assert b'"mixed")' in data[0] and b'"boundary"' not in data[0]
    typ, data = c.fetch("1", "(BODY.PEEK[1])")
    assert data[0][1] == b"caf=C3=A9 au lait"
    typ, data = c.fetch("1", "(BODY.PEEK[2.MIME])")
    assert data[0][1].startswith(b"Content-Type: application/octet-stream")
    typ, data = c.fetch("1", "(BINARY.PEEK[1] BINARY.SIZE[2])")
    assert data[0][1] == "café au lait".encode()
    assert b"BINARY.SIZE[2] 6" in data[0][0] or b"BINARY.SIZE[2] 6" in data[1]
    typ, data = c.fetch("1", "(BINARY.PEEK[2])")
    assert b"BINARY[2] ~{6}" in data[0][0]
    assert data[0][1] == b"\x00\x01\x02\x03\x04\x05"
    typ, data = c.fetch("1", "(BODY.PEEK[3])")
    assert data[0][1] == b""                   # no such part: empty
    typ, data = c.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]           # PEEK kept it unseen
    typ, data = c.fetch("1", "ALL")
    assert b"ENVELOPE" in data[0] and b"RFC822.SIZE %d" % len(MULTI) in data[0]
    with pytest.raises(imaplib.IMAP4.error):
        c.fetch("1", "(BODY[1.BOGUS])")


def test_imap4rev2_enabled(stack, user):
    c = stack.imap(*user)
    typ, data = c._simple_command("CAPABILITY")
    caps = c.untagged_responses.pop("CAPABILITY")[0].split()
    assert b"IMAP4rev2" in caps and b"IMAP4rev1" in caps and b"BINARY" in caps
    typ, data = c._simple_command("ENABLE", "IMAP4rev2")
    assert c.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
    c.append("INBOX", None, None, msg(1))
    typ, data = c.select("INBOX")
    assert "RECENT" not in c.untagged_responses
    # RFC 9051 6.3.2: SELECT answers with the mailbox's LIST as well
    assert c.untagged_responses.pop("LIST") == [b'() "/" "INBOX"']
    typ, data = c._simple_command("SEARCH", "ALL")
    assert re.match(rb'\(TAG "\w+"\) ALL 1$',
                    c.untagged_responses.pop("ESEARCH")[0])
    typ, data = c.select("Sent")
    assert c.untagged_responses.pop("LIST") == [b'(\\Sent) "/" "Sent"']
    c.logout()


def test_bare_lf_message_sizes_agree(c):
    """A message APPENDed with bare LF line ends is sent with CRLF:
    RFC822.SIZE, BODY[]'s octets and BODYSTRUCTURE's size agree."""
    raw = (b"From: a@example.org\nSubject: bare\n\nline one\nline two\r\n"
           b"last\n")
    # imaplib's append() turns LF into CRLF: the literal is sent as is
    c.literal = raw
    typ, _ = c._simple_command("APPEND", "INBOX")
    assert typ == "OK"
    c.select("INBOX")
    typ, data = c.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    body = data[0][1]
    assert b"\n" not in body.replace(b"\r\n", b"")
    size = int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1))
    assert size == len(body), (size, len(body))


def test_nul_is_never_sent_in_a_literal(c):
    """A message stored with a NUL (a BINARY APPEND, RFC 3516) is sent in
    BODY[] and RFC822 with 0x80 in its place: a literal may not hold NUL
    (RFC 9051 9); BINARY[] sends it as it is, in a literal8."""
    m = b"Subject: nul\r\n\r\nab\x00cd\r\n"
    tag = c._new_tag()
    c.send(tag + b" APPEND INBOX ~{%d+}\r\n" % len(m) + m + b"\r\n")
    while True:
        line = c.readline()
        if line.startswith(tag):
            break
    assert b" OK " in line, line
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[] RFC822.TEXT BINARY.PEEK[1])")
    parts = [d for d in data if isinstance(d, tuple)]
    assert parts[0][1] == m.replace(b"\x00", b"\x80")
    assert parts[1][1] == b"ab\x80cd\r\n"
    assert parts[2][0].endswith(b"BINARY[1] ~{7}")
    assert parts[2][1] == b"ab\x00cd\r\n"


def test_envelope_fields_are_unfolded(c):
    """The envelope's date, In-Reply-To and Message-ID are the fields'
    values unfolded (RFC 5322 2.2.3), never a string with a line break."""
    m = (b"Date: Mon, 7 Feb 1994\r\n 21:52:25 -0800\r\n"
         b"Subject: fold\r\nIn-Reply-To:\r\n <a@x>\r\n <b@x>\r\n"
         b"Message-ID:\r\n <folded@x.org>\r\n\r\nbody\r\n")
    c.append("INBOX", None, None, m)
    c.select("INBOX")
    typ, data = c.fetch("1", "(ENVELOPE)")
    assert data == [b'1 (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" '
                    b'"fold" NIL NIL NIL NIL NIL NIL "<a@x> <b@x>" '
                    b'"<folded@x.org>"))'], data


def test_fetch_rfc822_items(c):
    """RFC822, RFC822.HEADER and RFC822.TEXT (RFC 3501 6.4.5) answer as
    BODY[], BODY.PEEK[HEADER] and BODY[TEXT]; RFC822 and RFC822.TEXT set
    \\Seen, RFC822.HEADER does not."""
    m = msg(3, b"second line\r\n")
    assert c.append("INBOX", None, None, m)[0] == "OK"
    c.select("INBOX")
    head, text = m.split(b"\r\n\r\n", 1)
    typ, data = c.fetch("1", "(RFC822.HEADER)")
    assert typ == "OK"
    assert data[0][0].endswith(b"RFC822.HEADER {%d}" % (len(head) + 4))
    assert data[0][1] == head + b"\r\n\r\n"
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = c.fetch("1", "(RFC822.TEXT)")
    assert typ == "OK"
    assert data[0][1] == text
    typ, data = c.fetch("1", "(RFC822 FLAGS)")
    assert typ == "OK"
    whole = [d for d in data if isinstance(d, tuple)][0]
    assert whole[1] == m
    assert b"\\Seen" in b"".join(
        d if isinstance(d, bytes) else d[0] for d in data)


def test_fetch_macros_partials_and_field_lists(c):
    """FAST, ALL and FULL expand as RFC 3501 6.4.5 says; BODY without a
    section is BODYSTRUCTURE without extension data; <offset.count>
    partials and HEADER.FIELDS.NOT answer the octets asked for."""
    m = msg(4, b"more text\r\n")
    assert c.append("INBOX", None, None, m)[0] == "OK"
    c.select("INBOX")
    typ, data = c.fetch("1", "FAST")
    assert typ == "OK"
    line = data[0]
    for item in (b"FLAGS (", b"INTERNALDATE \"", b"RFC822.SIZE %d" % len(m)):
        assert item in line, (item, line)
    assert b"ENVELOPE" not in line
    typ, data = c.fetch("1", "ALL")
    line = data[0]
    assert b"ENVELOPE (\"Mon, 05 Jan 2024 10:00:00 +0000\" \"note 4\"" \
        in line, line
    assert b"BODY" not in line
    typ, data = c.fetch("1", "FULL")
    line = data[0]
    assert b"ENVELOPE (" in line and b"RFC822.SIZE" in line
    body = re.search(rb"BODY (\(.*\))\)$", line).group(1)
    # strings compare case-insensitively (RFC 3501 7.4.2)
    assert body.lower() == (b'("text" "plain" ("charset" "us-ascii") NIL '
                            b'NIL "7bit" %d 2)'
                            % len(m.split(b"\r\n\r\n")[1])).lower()
    typ, data = c.fetch("1", "(BODY.PEEK[]<5.7> BODY.PEEK[TEXT]<0.4>)")
    assert typ == "OK"
    parts = [d for d in data if isinstance(d, tuple)]
    assert parts[0][0].endswith(b"BODY[]<5> {7}") and parts[0][1] == m[5:12]
    text = m.split(b"\r\n\r\n", 1)[1]
    assert parts[1][0].endswith(b"BODY[TEXT]<0> {4}")
    assert parts[1][1] == text[:4]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (From Date)])")
    assert typ == "OK"
    assert data[0][1] == (b"To: rcpt@example.test\r\nSubject: note 4\r\n"
                          b"\r\n")
    typ, data = c.fetch("1", "(BODY.PEEK[]<%d.10>)" % (len(m) + 5))
    assert typ == "OK" and data[0][0].endswith(b"{0}") and data[0][1] == b""


def test_fetch_header_field_names_as_strings(c):
    """RFC 3501 9: a header-fld-name is an astring, so quoted strings and
    literals name header fields as atoms do.  The answer echoes each name
    as an atom, or quoted where an atom cannot hold it; a name no header
    field can have, or a section longer than limits.max_line, is BAD."""
    m = msg(4)
    assert c.append("INBOX", None, None, m)[0] == "OK"
    c.select("INBOX")

    def fetch(*parts):
        """FETCH 1 (PARTS...): a part ending in a synchronizing literal
        waits for the server's continuation before the next is sent."""
        tag = c._new_tag()
        lines = []
        for i, part in enumerate(parts):
            c.send((tag + b" " if i == 0 else b"") + part)
            if i + 1 < len(parts):
                line = c.readline()
                if not line.startswith(b"+"):
                    return [line]
        c.send(b"\r\n")
        while True:
            line = c.readline()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    subject = b"Subject: note 4\r\n"
    to = b"To: rcpt@example.test\r\n"

    def answer(section, data):
        return [b"* 1 FETCH (BODY[%s] {%d}\r\n" % (section, len(data))] + \
            data.splitlines(keepends=True) + [b")\r\n"]

    out = fetch(b'FETCH 1 (BODY.PEEK[HEADER.FIELDS ("Subject")])')
    assert out[:-1] == answer(b"HEADER.FIELDS (Subject)",
                              subject + b"\r\n"), out
    assert out[-1].endswith(b" OK FETCH completed\r\n")
    # a synchronizing literal, then an atom
    out = fetch(b"FETCH 1 (BODY.PEEK[HEADER.FIELDS ({7}\r\n",
                b"Subject To)])")
    assert out[:-1] == answer(b"HEADER.FIELDS (Subject To)",
                              to + subject + b"\r\n"), out
    # LITERAL+ and quoted names in HEADER.FIELDS.NOT
    out = fetch(b'FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT ({4+}\r\nFrom '
                b'"Date" {2+}\r\nCc)])')
    assert out[:-1] == answer(b"HEADER.FIELDS.NOT (From Date Cc)",
                              to + subject + b"\r\n"), out
    # names an atom cannot hold are echoed quoted; they match nothing
    out = fetch(b'FETCH 1 (BODY.PEEK[HEADER.FIELDS ({5+}\r\na "\\b '
                b'"x]" "" Subject)])')
    assert out[:-1] == answer(b'HEADER.FIELDS ("a \\"\\\\b" "x]" "" '
                              b"Subject)", subject + b"\r\n"), out
    # what no field name can hold, and limits.max_line (64k here)
    for parts, text in (
            ((b"FETCH 1 (BODY.PEEK[HEADER.FIELDS ({3+}\r\na\r\n)])",),
             b"BAD Invalid header field name"),
            ((b'FETCH 1 (BODY.PEEK[HEADER.FIELDS ("Gr\xc3\xbc\xc3\x9fe")])',),
             b"BAD Invalid header field name"),
            ((b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (~{1+}\r\na)])",),
             b"BAD Invalid header field name"),
            ((b"FETCH 1 (BODY.PEEK[HEADER.FIELDS ({70000+}\r\n"
              + b"x" * 70000 + b")])",),
             b"BAD [LIMIT] Section too long")):
        out = fetch(*parts)
        assert len(out) == 1 and out[0].endswith(b" " + text + b"\r\n"), \
            (parts[0][:60], out)
    assert c.noop()[0] == "OK"


def test_idle_keepalive(stack_factory):
    """imap.idle_notify_interval: a session in IDLE with nothing to say
    is sent "* OK Still here" now and then; one not in IDLE is not, and
    the keepalive does not get in the way of EXISTS or DONE."""
    st = stack_factory(name="idle-keepalive",
                       settings=["imap.idle_notify_interval=1s"])
    user, pw = st.new_user("keepalive")
    s = socket.create_connection((st.host, st.IMAPS_PORT), timeout=10)
    s = st.ssl_context().wrap_socket(s, server_hostname=st.host)
    pending = b""

    def lines_for(seconds):
        """Every line that arrives within SECONDS."""
        nonlocal pending
        out = []
        end = time.monotonic() + seconds
        while True:
            while b"\r\n" in pending:
                line, pending = pending.split(b"\r\n", 1)
                out.append(line)
            left = end - time.monotonic()
            if left <= 0:
                return out
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            assert data, "connection closed"
            pending += data

    def until(tag):
        got = []
        for _ in range(50):
            got += lines_for(0.2)
            if any(g.startswith(tag + b" ") for g in got):
                return got
        raise AssertionError("no %r in %r" % (tag, got))

    assert lines_for(0.5)[0].startswith(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" % (user.encode(),
                                                          pw.encode()))
    assert until(b"b")[-1].startswith(b"b OK")
    # Not in IDLE: nothing unasked.
    assert lines_for(2.5) == []
    s.sendall(b"c IDLE\r\n")
    got = lines_for(3.6)
    assert got[0] == b"+ idling", got
    assert got[1:].count(b"* OK Still here") >= 2, got
    assert set(got[1:]) == {b"* OK Still here"}, got
    # A delivery still shows at once, and DONE ends the IDLE.
    st.import_message(user, b"Subject: kept alive\r\n\r\nhi\r\n")
    got = lines_for(2.0)
    assert b"* 1 EXISTS" in got, got
    s.sendall(b"DONE\r\n")
    assert until(b"c")[-1] == b"c OK IDLE terminated"
    s.sendall(b"d LOGOUT\r\n")
    s.settimeout(10)
    rest = pending
    while True:
        data = s.recv(65536)
        if not data:
            break
        rest += data
    assert b"\r\nd OK" in b"\r\n" + rest, rest
    s.close()


# -- PREVIEW (RFC 8970) ---------------------------------------------------------

def test_preview(c):
    """FETCH PREVIEW: the start of the message's text as a client shows it
    under the subject: plain text without quoted lines and signature, the
    text/plain of an alternative in its charset and transfer encoding, HTML
    without markup, style or entities, nothing for a message without text,
    at most 200 characters (whole UTF-8 ones); PREVIEW (LAZY) the same; an
    unknown modifier is BAD."""
    msgs = [
        b"Subject: a\r\n\r\nHello Bob,\r\n\r\n> what you wrote\r\n"
        b">> and before\r\nSee you  at\tnoon.\r\n-- \r\nAlice\r\nphone\r\n",
        b"Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/"
        b"alternative; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html\r\n"
        b"\r\n<p>html part</p>\r\n--XX\r\nContent-Type: text/plain; "
        b"charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
        b"\r\n\r\nCaf=E9 cr=E8me, soft=\r\n break\r\n--XX--\r\n",
        b"Subject: c\r\nMIME-Version: 1.0\r\nContent-Type: text/html; "
        b"charset=utf-8\r\n\r\n<html><head><style>p {color: red}</style>"
        b"</head><body><p>Fish &amp; chips&nbsp;&lt;today&gt;</p><script>"
        b"x()</script><!-- hidden --></body></html>\r\n",
        b"Subject: d\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
        b"boundary=YY\r\n\r\n--YY\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--YY\r\n"
        b"Content-Type: text/plain\r\nContent-Disposition: attachment; "
        b"filename=notes.txt\r\n\r\nnot the preview\r\n--YY--\r\n",
        b"Subject: e\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(("\u00e9" * 250).encode()) + b"\r\n",
    ]
    for m in msgs:
        assert c.append("INBOX", None, None, m)[0] == "OK"
    typ, data = c.capability()
    assert b"PREVIEW" in data[0].split()
    c.select("INBOX")
    want = [b"Hello Bob, See you at noon.",
            "Caf\u00e9 cr\u00e8me, soft break".encode(),
            b"Fish & chips <today>",
            b"",
            ("\u00e9" * 200).encode()]
    for items in ("(PREVIEW)", "(PREVIEW (LAZY))", "(UID PREVIEW)"):
        typ, data = c.fetch("1:5", items)
        assert typ == "OK", data
        got = []
        for d in data:
            if isinstance(d, tuple):      # a literal (8-bit text)
                got.append(d[1])
            elif d != b")":
                m = re.search(rb'PREVIEW "((?:[^"\\]|\\.)*)"', d)
                assert m, d
                got.append(m.group(1).replace(b'\\"', b'"'))
        assert got == want, got
    tag = c._new_tag()
    c.send(tag + b" FETCH 1 (PREVIEW (FOO))\r\n")
    assert c.readline().startswith(tag + b" BAD")


def test_replace(stack):
    """REPLACE and UID REPLACE (RFC 8508): the new message is appended
    (to the selected mailbox or another) and the one it replaces
    expunged, in one transaction: APPENDUID untagged before the EXPUNGE,
    another session sees both; nothing changes when the APPEND fails (no
    such mailbox), a message that is not there is refused, and the
    quota counts the new message without the old one (a draft saved
    again at the limit)."""
    from test_transport import admin
    user, pw, mbox = stack.new_account("replace")
    c = stack.imap(user, pw)
    other = stack.imap(user, pw)
    try:
        assert "REPLACE" in c.capability()[1][0].decode().split()
        for i in (1, 2, 3):
            assert c.append("Drafts", r"(\Draft)", None, msg(i))[0] == "OK"
        c.select("Drafts")
        other.select("Drafts")
        uidvalidity = int(c.untagged_responses["UIDVALIDITY"][-1])
        new = msg(4, b"the second version\r\n")

        def replace(how, ident, mailbox, m, flags=""):
            return tagged_lines(c, b"%s %s %s %s{%d+}\r\n%s" % (
                how, ident, mailbox, flags.encode() + b" " if flags else b"",
                len(m), m))

        lines = replace(b"REPLACE", b"2", b"Drafts", new, r"(\Seen \Draft)")
        assert lines[0] == b"* OK [APPENDUID %d 4] Replacement Message " \
            b"ID\r\n" % uidvalidity, lines
        assert lines[1:-1] == [b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n"], \
            lines
        assert re.fullmatch(rb"\S+ OK REPLACE completed\r\n", lines[-1])
        typ, data = c.fetch("1:*", "(UID FLAGS)")
        assert data == [b"1 (UID 1 FLAGS (\\Draft))",
                        b"2 (UID 3 FLAGS (\\Draft))",
                        b"3 (UID 4 FLAGS (\\Seen \\Draft))"], data
        assert c.uid("FETCH", "4", "(BODY.PEEK[])")[1][0][1] == new
        # the other session hears of both
        typ, data = other.noop()
        assert other.untagged_responses.pop("EXPUNGE") == [b"2"]
        assert other.untagged_responses.pop("EXISTS")[-1] == b"3"

        # with a synchronizing literal, as imaplib sends one: the
        # continuation comes, then the same answers
        c.literal = msg(9)
        typ, data = c._simple_command("UID", "REPLACE", "4", "Drafts",
                                      r"(\Draft)")
        assert typ == "OK" and data == [b"UID REPLACE completed"], data
        assert c.untagged_responses.pop("EXPUNGE") == [b"3"]
        m = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(
            c.untagged_responses.pop("OK")))
        assert m and m.group(1) == b"5", m
        assert c.uid("FETCH", "5", "(BODY.PEEK[])")[1][0][1] == msg(9)
        other.noop()
        other.untagged_responses.clear()

        # UID REPLACE into another mailbox: the draft is sent
        sent = msg(5)
        lines = replace(b"UID REPLACE", b"5", b"Sent", sent, r"(\Seen)")
        m = re.fullmatch(rb"\* OK \[APPENDUID (\d+) 1\] Replacement Message "
                         rb"ID\r\n", lines[0])
        assert m and int(m.group(1)) != uidvalidity, lines
        assert lines[1] == b"* 3 EXPUNGE\r\n", lines
        assert re.fullmatch(rb"\S+ OK UID REPLACE completed\r\n", lines[-1])
        assert c.fetch("1:*", "(UID)")[1] == [b"1 (UID 1)", b"2 (UID 3)"]
        assert c.status("Sent", "(MESSAGES)")[1] == [b'"Sent" (MESSAGES 1)']

        # refused, and nothing changes
        before = c.fetch("1:*", "(UID FLAGS)")[1]
        for how, ident, mailbox, want in (
                (b"UID REPLACE", b"99", b"Drafts",
                 rb"NO \[NONEXISTENT\] No such message to replace"),
                (b"REPLACE", b"9", b"Drafts",
                 rb"BAD Invalid message sequence number"),
                (b"REPLACE", b"1:2", b"Drafts", rb"BAD REPLACE expects"),
                (b"REPLACE", b"1", b"Nowhere", rb"NO \[TRYCREATE\]")):
            lines = replace(how, ident, mailbox, msg(6))
            assert re.match(rb"\S+ " + want, lines[-1]), (ident, lines)
            assert len(lines) == 1, lines
        for tail in (b"", b" Drafts", b" Drafts (\\Seen)",
                     b" Drafts {3+}\r\nabc {3+}\r\nabc"):
            lines = tagged_lines(c, b"REPLACE 1" + tail)
            assert re.match(rb"\S+ BAD ", lines[-1]), (tail, lines)
        assert c.fetch("1:*", "(UID FLAGS)")[1] == before
        c.select("Drafts", readonly=True)
        lines = replace(b"REPLACE", b"1", b"Drafts", msg(6))
        assert re.match(rb"\S+ NO \[READ-ONLY\]", lines[-1]), lines
        c.select("Drafts")

        # a message another session expunged since this one last heard:
        # still numbered here (no EXPUNGE is sent in the middle of
        # REPLACE), gone from the store: refused, and nothing appended
        other.noop()
        assert other.uid("STORE", "3", "+FLAGS.SILENT", r"(\Deleted)")[0] \
            == "OK"
        assert other.uid("EXPUNGE", "3")[0] == "OK"
        lines = replace(b"REPLACE", b"2", b"Drafts", msg(8))
        assert re.match(rb"\S+ NO \[EXPUNGEISSUED\]", lines[-1]), lines
        assert c.status("Drafts", "(MESSAGES UIDNEXT)")[1] == \
            [b'"Drafts" (MESSAGES 1 UIDNEXT 6)']
        assert c.fetch("1:*", "(UID)")[1] == [b"1 (UID 1)"]

        # at the message limit: APPEND is refused, REPLACE is not
        p = admin(stack, "s1b1", "quota", mbox, "0", "2")
        assert p.returncode == 0, p.stderr
        typ, data = c.append("Drafts", None, None, msg(7))
        assert typ == "NO" and b"OVERQUOTA" in data[0], data
        lines = replace(b"REPLACE", b"1", b"Drafts", msg(7))
        assert re.fullmatch(rb"\S+ OK REPLACE completed\r\n", lines[-1]), \
            lines
        assert c.status("Drafts", "(MESSAGES)")[1] == \
            [b'"Drafts" (MESSAGES 1)']
    finally:
        for conn in (c, other):
            try:
                conn.logout()
            except Exception:
                pass
