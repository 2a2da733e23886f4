"""IMAP through the frontend: TLS, login, and reading mail on the backend.

Every test talks to real daemons (slapd, portico-backend, portico-frontend)
started by the session's `stack` fixture, with Python's imaplib.
"""

import base64
import imaplib
import re
import socket
import ssl
import time

import pytest

from conftest import ALICE, DATA

pytestmark = pytest.mark.daemons


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def raw(stack, port, tls=False):
    """A raw client socket (greeting read) for byte-exact tests."""
    s = socket.create_connection((stack.host, port), timeout=10)
    if tls:
        s = stack.ssl_context().wrap_socket(s, server_hostname=stack.host)
    f = s.makefile("rb")
    greeting = f.readline()
    assert greeting.startswith(b"* OK "), greeting
    return s, f


def read_tagged(f, tag):
    """Lines up to and including the tagged response of TAG."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


# -- TLS and login ------------------------------------------------------------

def test_implicit_tls_login_verifies_ca(stack):
    c = stack.imap()
    cert = c.sock.getpeercert()
    assert any(v == "localhost" for k, v in cert["subjectAltName"])
    typ, data = c.login(*ALICE)
    assert typ == "OK"
    # The backend answers the login with its post-login capabilities.
    assert data[0].startswith(b"[CAPABILITY IMAP4rev1 ")
    c.logout()


def test_implicit_tls_rejects_unknown_ca(stack):
    ctx = ssl.create_default_context()  # system CAs: not ours
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(stack.host, stack.IMAPS_PORT, ssl_context=ctx,
                          timeout=10)


def test_starttls_login_and_fetch(stack):
    c = stack.imap_plain()
    assert "STARTTLS" in c.capabilities
    assert "LOGINDISABLED" in c.capabilities     # secure login by default
    typ, _ = c.starttls(ssl_context=stack.ssl_context())
    assert typ == "OK"
    assert "STARTTLS" not in c.capabilities
    assert "AUTH=PLAIN" in c.capabilities
    assert c.login(*ALICE)[0] == "OK"
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == 2
    typ, data = c.fetch("1", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    expected = crlf((DATA / "plain.eml").read_bytes())
    assert data[0][1] == expected
    assert b"RFC822.SIZE %d" % len(expected) in data[0][0]
    c.logout()


def test_login_refused_before_starttls(stack):
    c = stack.imap_plain()
    with pytest.raises(imaplib.IMAP4.error, match=r"PRIVACYREQUIRED"):
        c.login(*ALICE)
    # The connection is still usable: STARTTLS then login works.
    c.starttls(ssl_context=stack.ssl_context())
    assert c.login(*ALICE)[0] == "OK"
    c.logout()


def test_wrong_password_fails_cleanly(stack):
    c = stack.imap()
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        c.login(ALICE[0], "not-the-password")
    # Same connection, right password: the failure left it usable.
    assert c.login(*ALICE)[0] == "OK"
    c.logout()


def test_unknown_user_fails_cleanly(stack):
    c = stack.imap()
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        c.login("nobody-here@example.test", "whatever")
    assert c.noop()[0] == "OK"
    c.logout()


def test_empty_password_is_not_an_anonymous_bind(stack):
    c = stack.imap()
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        c.login(ALICE[0], "")
    c.logout()


@pytest.mark.parametrize("login", ["*", "a*)(uid=*", "alice@example.test)(|(uid=*",
                                   "*)(objectClass=*"])
def test_ldap_filter_injection_is_refused(stack, login):
    c = stack.imap()
    # imaplib sends the user name as is: quote it so that it reaches the
    # server as one string, filter metacharacters included.
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        c.login(c._quote(login), ALICE[1])
    c.logout()


def test_login_name_with_nul_is_refused(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    user = ALICE[0].encode() + b"\0*"
    s.sendall(b"a1 LOGIN {%d+}\r\n" % len(user) + user + b" "
              + ALICE[1].encode() + b"\r\n")
    line = read_tagged(f, b"a1")[-1]
    assert line.startswith(b"a1 BAD") or line.startswith(b"a1 NO"), line
    s.sendall(b"a2 NOOP\r\n")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.close()


@pytest.mark.parametrize("login", ["anonymous", "Guest", "ADMINISTRATOR@example.test"])
def test_privileged_accounts_refused(stack, login):
    c = stack.imap()
    with pytest.raises(imaplib.IMAP4.error,
                       match=r"cannot use POP3/IMAP4"):
        c.login(login, "anything")
    c.logout()


def test_authenticate_plain_with_and_without_initial_response(stack):
    c = stack.imap()
    creds = ("\0%s\0%s" % ALICE).encode()
    assert c.authenticate("PLAIN", lambda _: creds)[0] == "OK"
    c.logout()
    # SASL-IR: the response on the command line.
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    s.sendall(b"a1 AUTHENTICATE PLAIN " + base64.b64encode(creds) + b"\r\n")
    lines = read_tagged(f, b"a1")
    assert lines[-1].startswith(b"a1 OK [CAPABILITY IMAP4rev1"), lines
    s.sendall(b"a2 LOGOUT\r\n")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.close()


def test_authenticate_other_authorization_identity_refused(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    resp = base64.b64encode(b"bob@example.test\0%s\0%s" %
                            (ALICE[0].encode(), ALICE[1].encode()))
    s.sendall(b"a1 AUTHENTICATE PLAIN " + resp + b"\r\n")
    line = read_tagged(f, b"a1")[-1]
    assert line.startswith(b"a1 NO [AUTHORIZATIONFAILED]"), line
    s.close()


def test_authenticate_cancel_and_garbage(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    s.sendall(b"a1 AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    s.sendall(b"*\r\n")
    assert read_tagged(f, b"a1")[-1].startswith(b"a1 BAD")
    s.sendall(b"a2 AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    s.sendall(b"!!!not base64!!!\r\n")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 BAD")
    s.sendall(b"a3 AUTHENTICATE CRAM-MD5\r\n")
    assert read_tagged(f, b"a3")[-1].startswith(b"a3 NO [CANNOT]")
    s.sendall(b"a4 NOOP\r\n")
    assert read_tagged(f, b"a4")[-1].startswith(b"a4 OK")
    s.close()


def test_login_with_literals_and_pipelined_commands(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    user, pw = (x.encode() for x in ALICE)
    s.sendall(b"a1 LOGIN {%d}\r\n" % len(user))
    assert f.readline().startswith(b"+ ")
    # Non-synchronizing literal for the password, then commands pipelined
    # right behind the LOGIN: the backend must run them after the login.
    s.sendall(user + b" {%d+}\r\n" % len(pw) + pw + b"\r\n"
              b"a2 EXAMINE INBOX\r\na3 FETCH 2 (UID)\r\na4 LOGOUT\r\n")
    out = b"".join(read_tagged(f, b"a4"))
    assert re.search(rb"a1 OK \[CAPABILITY [^\]]*\] ", out), out
    assert b"* 2 EXISTS" in out and b"a2 OK [READ-ONLY]" in out
    assert b"* 2 FETCH (UID 2)" in out and b"a3 OK" in out
    s.close()


def test_starttls_command_injection_is_discarded(stack):
    s = socket.create_connection((stack.host, stack.IMAP_PORT), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert f.readline().startswith(b"a OK")
    t = stack.ssl_context().wrap_socket(s, server_hostname=stack.host)
    t.sendall(b"c NOOP\r\n")
    tf = t.makefile("rb")
    line = tf.readline()
    # Had "b CAPABILITY" been kept, its answer would come first.
    assert line.startswith(b"c OK"), line
    t.close()


def test_commands_before_login_are_refused(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    s.sendall(b"a1 SELECT INBOX\r\na2 FETCH 1 BODY[]\r\n")
    assert read_tagged(f, b"a1")[-1].startswith(b"a1 BAD")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 BAD")
    s.close()


def test_overlong_prelogin_line_gets_bad_and_connection_survives(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    s.sendall(b"a1 NOOP " + b"x" * 100000 + b"\r\n")
    line = f.readline()
    assert line.startswith(b"a1 BAD [TOOBIG]"), line
    s.sendall(b"a2 NOOP\r\n")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.close()


def test_oversized_literal_before_login(stack):
    s, f = raw(stack, stack.IMAPS_PORT, tls=True)
    s.sendall(b"a1 LOGIN {99999999999999999999}\r\n")
    assert read_tagged(f, b"a1")[-1].startswith(b"a1 BAD [TOOBIG]")
    s.sendall(b"a2 NOOP\r\n")
    assert read_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    # A non-synchronizing literal over the limit cannot be skipped.
    s.sendall(b"a3 LOGIN {10000000+}\r\n")
    line = f.readline()
    assert line.startswith(b"* BYE"), line
    assert f.readline() == b""
    s.close()


# -- after login: the backend's engine ---------------------------------------

def test_fetch_items_and_seen_flag(stack):
    user, pw = stack.new_user("fetch")
    stack.import_message(user, DATA / "plain.eml")
    c = stack.imap(user, pw)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = c.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert data[0][1] == b"Subject: Plain text test message\r\n\r\n"
    typ, data = c.fetch("1", "(BODY[TEXT]<0.11>)")
    assert data[0][0].endswith(b"BODY[TEXT]<0> {11}")
    assert data[0][1] == b"Hello Alice"
    # BODY[] (not PEEK) in a read-write mailbox sets \Seen.
    typ, data = c.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS (\\Seen))"]
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
    assert data == [b"1 (UID 1 FLAGS (\\Seen))"]
    typ, data = c.fetch("1", "(INTERNALDATE RFC822.SIZE)")
    assert re.match(rb'1 \(INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d '
                    rb'\+0000" RFC822.SIZE \d+\)', data[0])
    with pytest.raises(imaplib.IMAP4.error, match="Invalid message sequence"):
        c.fetch("5", "(FLAGS)")
    c.logout()


def test_large_message_through_the_link(stack):
    user, pw = stack.new_user("large")
    body = b"".join(b"line %07d of a large message\r\n" % i
                    for i in range(100000))
    msg = b"Subject: large\r\n\r\n" + body
    stack.import_message(user, msg)
    c = stack.imap(user, pw)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == msg
    c.logout()


def test_two_sessions_share_one_link(stack):
    clients = [stack.imap(*ALICE) for _ in range(5)]
    for c in clients:
        assert c.select("INBOX", readonly=True)[0] == "OK"
    for c in clients:
        typ, data = c.fetch("2", "(UID)")
        assert data == [b"2 (UID 2)"]
    for c in clients:
        c.logout()
    log = stack.log("s1f1")
    # One link for all of them: a single "ready" line for the backend.
    assert log.count("link backend=s1b1 address=") >= 1
    assert log.count("ready") >= 1


def test_unknown_command_after_login(stack):
    c = stack.imap(*ALICE)
    with pytest.raises(imaplib.IMAP4.error, match="Unknown command"):
        c.xatom("XYZZY")
    assert c.noop()[0] == "OK"
    c.logout()


# -- directory outage ---------------------------------------------------------

def test_ldap_down_gives_temporary_error_and_recovers(stack):
    stack.stop("ldap")
    try:
        c = stack.imap()
        t0 = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            c.login(*ALICE)
        assert time.monotonic() - t0 < 3.0, "temporary error took too long"
        # The frontend is still up and answering.
        assert c.noop()[0] == "OK"
        c.logout()
        p = stack.pop3()
        p.user(ALICE[0])
        with pytest.raises(poplib_error(), match=r"SYS/TEMP"):
            p.pass_(ALICE[1])
        p.quit()
    finally:
        stack.start("ldap")
    stack.wait_for_login(*ALICE, timeout=20)


def poplib_error():
    import poplib
    return poplib.error_proto
