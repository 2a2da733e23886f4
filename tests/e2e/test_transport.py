"""The backend transport: local delivery (Deliver, portico-admin deliver),
the submission queue and its runner (LMTP, smarthost, retries, DSNs)."""

import email
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import CMD_TIMEOUT

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
        typ, _ = c.select("INBOX", readonly=True)
        assert typ == "OK"
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


def test_admin_deliver_two_recipients(stack):
    """portico-admin deliver: Return-Path and Received on top, the message
    byte for byte below, RFC822.SIZE exact, one body for both."""
    u1, _ = stack.new_user("dl")
    u2, _ = stack.new_user("dl")
    ids = [mailbox_id(stack, u1), mailbox_id(stack, u2)]
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
