"""Quota warnings (backend.quota_warnings): a user finds a message in the
INBOX as the account's use of the nearer limit grows past each level,
whatever made it grow (APPEND, COPY, a delivery over LMTP); once per
level, and again after the use has come back below it; stored outside
the quota, seen by a session in IDLE, checked by portico-admin check and
removed with the account; in the deployment's words from a template
file; the settings refuse what they cannot take and apply at a
reload."""

import os
import re
import socket

import pytest

from conftest import wait_for
from test_imap import msg
from test_ops import ConfigEdit, reload
from test_transport import admin, backend_metrics, lmtp

pytestmark = pytest.mark.daemons


def inbox_warnings(st, user, pw):
    """The quota warnings in USER's INBOX, oldest first: the raw bytes."""
    c = st.imap(user, pw)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            return []
        typ, data = c.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [item[1] for item in data if isinstance(item, tuple) and
                b"\r\nAuto-Submitted: auto-generated\r\n" in item[1]]
    finally:
        c.logout()


def test_quota_warnings(stack_factory):
    st = stack_factory("quotawarn", settings=[
        "backend.quota_messages=10", "backend.quota_warnings=80 50% 100"])
    user, pw, mbox = st.new_account("qw")
    c = st.imap(user, pw)
    watcher = st.imap(user, pw)
    try:
        for i in range(4):
            assert c.append("Drafts", None, None, msg(i))[0] == "OK"
        assert inbox_warnings(st, user, pw) == []
        assert backend_metrics(st)[
            "portico_backend_quota_warnings_total"] == 0
        assert b"\nquota-warned    -\n" in admin(st, "s1b1", "show",
                                                mbox).stdout
        # a session of the INBOX waits in IDLE: the warning an APPEND to
        # Drafts brings is a new message there
        assert watcher.select("INBOX")[0] == "OK"
        watcher.sock.settimeout(10)
        tag = watcher._new_tag()
        watcher.send(tag + b" IDLE\r\n")
        assert watcher.readline().startswith(b"+ ")
        assert c.append("Drafts", None, None, msg(5))[0] == "OK"
        assert watcher.readline() == b"* 1 EXISTS\r\n"
        watcher.send(b"DONE\r\n")
        assert watcher.readline().startswith(tag + b" OK")

        [w50] = inbox_warnings(st, user, pw)
        assert w50.startswith(b"Return-Path: <>\r\nFrom: Mail System "
                              b"<postmaster@"), w50[:200]
        for field in (b"\r\nTo: undisclosed-recipients:;\r\n",
                      b"\r\nSubject: Your mailbox is 50% full\r\n",
                      b"\r\nAuto-Submitted: auto-generated\r\n",
                      b"\r\n  messages  5 of 10\r\n"):
            assert field in w50, (field, w50)
        assert re.search(rb"\r\nMessage-ID: <quota\.\d+\.50\.\d+@[^>]+>\r\n",
                         w50), w50
        assert b"storage" not in w50.split(b"\r\n\r\n", 1)[1]

        # 7 of 10 (the warning counts): nothing; a COPY to 8: the next
        assert c.append("Drafts", None, None, msg(6))[0] == "OK"
        assert len(inbox_warnings(st, user, pw)) == 1
        c.select("Drafts")
        assert c.copy("1", "Archive")[0] == "OK"
        warnings = inbox_warnings(st, user, pw)
        assert len(warnings) == 2
        assert b"\r\nSubject: Your mailbox is 80% full\r\n" in warnings[1]
        assert b"\r\n  messages  8 of 10\r\n" in warnings[1]
        # a MOVE adds nothing
        assert c._simple_command("MOVE", "2", "Archive")[0] == "OK"
        assert len(inbox_warnings(st, user, pw)) == 2

        # down to 3 of 10, then deliveries: 4 (the level comes down), 5
        # (50% crossed anew: warned anew)
        c.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
        assert c.expunge()[0] == "OK"
        assert c.status("Archive", "(MESSAGES)")[1] == \
            [b'"Archive" (MESSAGES 2)']
        c.select("Archive")
        c.store("2", "+FLAGS.SILENT", r"(\Deleted)")
        assert c.expunge()[0] == "OK"
        for i, want in ((1, 2), (2, 3)):
            got = lmtp(st, [user], msg(10 + i))
            assert got[user][0] == 250, got
            assert len(inbox_warnings(st, user, pw)) == want, i
        assert b"\r\nSubject: Your mailbox is 50% full\r\n" in \
            inbox_warnings(st, user, pw)[2]

        # the From of a reload; then 80% and full: the last warning is
        # stored beyond the limit, where an APPEND is refused
        edit = ConfigEdit(st, "s1b1", "backend")
        edit.append("[backend]\nquota_warning_from = quota@example.test\n")
        new = reload(st, "s1b1")
        assert "setting=backend.quota_warning_from changed" in new, new
        # 6 of 10: 7, 8 (and the warning: 9), 10 (and the last: 11)
        for i in range(3):
            assert c.append("Drafts", None, None, msg(20 + i))[0] == "OK"
        warnings = inbox_warnings(st, user, pw)
        assert [re.search(rb"Subject: (.*?)\r\n", w).group(1)
                for w in warnings[3:]] == [b"Your mailbox is 80% full",
                                           b"Your mailbox is full"]
        assert warnings[4].startswith(
            b"Return-Path: <>\r\nFrom: Mail System <quota@example.test>")
        assert b"\r\n  messages  10 of 10\r\n" in warnings[4]
        total = sum(int(re.search(rb"MESSAGES (\d+)", c.status(
            f, "(MESSAGES)")[1][0]).group(1))
            for f in ("INBOX", "Drafts", "Archive", "Sent", "Trash", "Junk"))
        assert total == 11, total
        typ, data = c.append("Drafts", None, None, msg(24))
        assert typ == "NO" and b"OVERQUOTA" in data[0], data

        # the warning in the deployment's words
        tmpl = st.dir / "quota-warning.txt"
        tmpl.write_bytes(
            "Subject: Ihr Postfach ist zu %{percent}% voll –\n"
            " bitte räumen Sie es bald auf\n"
            "X-Level: %{level}\n"
            "\n"
            "Nachrichten: %{messages} von %{messages_limit}\n"
            "Speicher: %{storage_used} von %{storage_limit}\n"
            "Bitte räumen Sie auf. (%%{percent} ist der Anteil, 100%%.)\n"
            .encode())
        edit.path.write_text(edit.original)
        edit.append("[backend]\nquota_warning_file = %s\n" % tmpl)
        new = reload(st, "s1b1")
        assert "setting=backend.quota_warning_file changed" in new, new
        other, other_pw, other_mbox = st.new_account("qwt")
        o = st.imap(other, other_pw)
        for i in range(5):
            assert o.append("Drafts", None, None, msg(i))[0] == "OK"
        o.logout()
        [w] = inbox_warnings(st, other, other_pw) or [b""]
        head, body = w.split(b"\r\n\r\n", 1)
        head += b"\r\n"
        # a Subject that is not ASCII goes as RFC 2047 encoded words,
        # each within 75 characters, its folded lines joined
        subject = re.search(rb"\r\nSubject:((?: =\?UTF-8\?B\?[^?]+\?=\r\n)+)"
                            rb"(?! )", head)
        assert subject, head
        words = subject.group(1).split()
        assert len(words) == 2 and all(len(w) <= 75 for w in words), words
        import email.header
        assert str(email.header.make_header(email.header.decode_header(
            subject.group(1).decode()))) == \
            "Ihr Postfach ist zu 50% voll – bitte räumen Sie es bald auf"
        assert b"\r\nX-Level: 50\r\n" in head
        assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
        assert b"\r\nAuto-Submitted: auto-generated\r\n" in head
        assert body == ("Nachrichten: 5 von 10\r\nSpeicher: - von -\r\n"
                        "Bitte räumen Sie auf. (%{percent} ist der Anteil, "
                        "100%%.)\r\n").encode(), body
        assert admin(st, "s1b1", "remove", other_mbox,
                     "--yes").returncode == 0

        # refused settings keep the running ones
        bad_tmpl = st.dir / "bad-template.txt"
        for text, why in ((b"X-Note: a\n\nbody\n", "no Subject: field"),
                          (b"Subject: a %{nope}\n\nbody\n",
                           "line 1: an unknown placeholder"),
                          (b"Subject: a\n\n%%{nope} %{nope}\n",
                           "line 3: an unknown placeholder"),
                          (b"Subject: a\nFrom: me@example.test\n\nbody\n",
                           "From: is the server's to write"),
                          (b"Subject: a\nno colon here\n",
                           "line 2 is not a header field"),
                          (b"Subject: a\n", "no empty line after the "
                           "header fields"),
                          (b"Subject: \xff\n\nbody\n", "not UTF-8 text"),
                          (b"Subject: a\n\n" + (b"y" * 80 + b"\n") * 210,
                           "larger than 16 KB"),
                          (b"Subject: a\n\n" + b"z" * 901 + b"\n",
                           "line 3 is longer than 900 bytes")):
            bad_tmpl.write_bytes(text)
            edit.path.write_text(edit.original)
            edit.append("[backend]\nquota_warning_file = %s\n" % bad_tmpl)
            new = reload(st, "s1b1")
            assert "reload: configuration kept" in new and why in new, \
                (text, new)
        for bad, why in (("quota_warning_file = /nonexistent/warning.txt",
                          "No such file or directory"),
                         ("quota_warnings = 50 abc",
                          "'abc' is not a percentage from 1 to 100"),
                         ("quota_warnings = 0", "'0' is not a percentage"),
                         ("quota_warnings = 1 2 3 4 5 6 7 8 9",
                          "more than 8 levels"),
                         ("quota_warning_from = not an address",
                          "backend.quota_warning_from: an address")):
            edit.path.write_text(edit.original)
            edit.append("[backend]\n%s\n" % bad)
            new = reload(st, "s1b1")
            assert "reload: configuration kept" in new and why in new, \
                (bad, new)
        edit.restore()
    finally:
        for conn in (c, watcher):
            try:
                conn.logout()
            except Exception:
                pass

    assert backend_metrics(st)["portico_backend_quota_warnings_total"] == 6
    assert admin(st, "s1b1", "check", "--all").returncode == 0
    assert b"\nquota-warned    100%\n" in admin(st, "s1b1", "show",
                                                 mbox).stdout
    # a moved account is not warned again: export --account carries the
    # level
    stream = st.dir / "qw.account"
    p = admin(st, "s1b1", "export", mbox, "--account", stream)
    assert p.returncode == 0, p.stderr
    copy = "qwcopy%d" % os.getpid()
    p = admin(st, "s1b1", "import", copy, "--account", stream)
    assert p.returncode == 0, p.stderr
    assert b"\nquota-warned    100%\n" in admin(st, "s1b1", "show",
                                                 copy).stdout
    assert admin(st, "s1b1", "remove", copy, "--yes").returncode == 0
    assert admin(st, "s1b1", "remove", mbox, "--yes").returncode == 0
    p = admin(st, "s1b1", "check", "--all")
    assert p.returncode == 0, p.stdout + p.stderr
    st.down()
