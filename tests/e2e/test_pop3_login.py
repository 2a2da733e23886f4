"""POP3 through the frontend with Python's poplib: STLS and implicit TLS,
login failures, and the maildrop on the backend."""

import base64
import poplib
import socket

import pytest

from conftest import ALICE, DATA

pytestmark = pytest.mark.daemons


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_stls_login_and_retr(stack):
    p = poplib.POP3(stack.host, stack.POP3_PORT, timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps   # secure login
    assert p.stls(context=stack.ssl_context()).startswith(b"+OK")
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and "SASL" in caps
    p.user(ALICE[0])
    assert p.pass_(ALICE[1]).startswith(b"+OK")
    count, size = p.stat()
    assert count == 2
    resp, lines, octets = p.retr(1)
    assert resp.startswith(b"+OK")
    # poplib undoes the dot-stuffing; the bytes must be the stored ones.
    assert b"\r\n".join(lines) + b"\r\n" == crlf((DATA / "plain.eml").read_bytes())
    p.quit()


def test_implicit_tls_login(stack):
    p = stack.pop3()
    cert = p.sock.getpeercert()
    assert any(v == "localhost" for k, v in cert["subjectAltName"])
    p.user(ALICE[0])
    p.pass_(ALICE[1])
    resp, listing, _ = p.list()
    sizes = [int(x.split()[1]) for x in listing]
    assert sizes == [len(crlf((DATA / n).read_bytes()))
                     for n in ("plain.eml", "multipart.eml")]
    resp, uidls, _ = p.uidl()
    assert len(set(u.split()[1] for u in uidls)) == 2
    assert p.quit().startswith(b"+OK")


def test_uidl_stable_across_sessions(stack):
    first = stack.pop3(*ALICE).uidl()[1]
    second = stack.pop3(*ALICE).uidl()[1]
    assert first == second


def test_user_pass_refused_without_tls(stack):
    p = poplib.POP3(stack.host, stack.POP3_PORT, timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.user(ALICE[0])
    p.quit()


def test_wrong_password_and_unknown_user(stack):
    p = stack.pop3()
    p.user(ALICE[0])
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed"):
        p.pass_("wrong")
    p.user("nobody-at-all@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed"):
        p.pass_("wrong")
    # Still usable after failures.
    p.user(ALICE[0])
    assert p.pass_(ALICE[1]).startswith(b"+OK")
    p.quit()


def test_auth_plain(stack):
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"AUTH\r\n")
    assert f.readline().startswith(b"+OK")
    assert f.readline() == b"PLAIN\r\n"
    assert f.readline() == b"LOGIN\r\n"
    assert f.readline() == b".\r\n"
    s.sendall(b"AUTH PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    s.sendall(base64.b64encode(("\0%s\0%s" % ALICE).encode()) + b"\r\n")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"STAT\r\n")
    assert f.readline().startswith(b"+OK 2 ")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


def test_auth_plain_other_authzid_refused(stack):
    p = stack.pop3()
    resp = base64.b64encode(b"bob@example.test\0" + ALICE[0].encode() +
                            b"\0" + ALICE[1].encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p._shortcmd("AUTH PLAIN " + resp)
    p.quit()


def test_commands_before_login(stack):
    p = stack.pop3()
    with pytest.raises(poplib.error_proto, match="Authentication required"):
        p.stat()
    with pytest.raises(poplib.error_proto, match="Send USER first"):
        p._shortcmd("PASS x")
    p.quit()


def test_retr_dot_stuffing_and_bad_numbers(stack):
    user, pw = stack.new_user("dots")
    msg = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"
    stack.import_message(user, msg)
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\nRETR 1\r\n" % (user.encode(), pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    body = b""
    while True:
        line = f.readline()
        if line == b".\r\n":
            break
        body += line
    assert body == (b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n"
                    b"..\r\nend\r\n")
    for bad in (b"RETR 0", b"RETR 2", b"RETR x", b"LIST 99"):
        s.sendall(bad + b"\r\n")
        assert f.readline().startswith(b"-ERR"), bad
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


def test_overlong_line_without_imap_code(stack):
    """Before login too, an over-long line is refused with the text
    alone: [TOOBIG] is IMAP's, RFC 2449 8 has no such code."""
    s = stack.ssl_context().wrap_socket(
        socket.create_connection((stack.host, stack.POP3S_PORT), timeout=10),
        server_hostname=stack.host)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER " + b"x" * 10000 + b"\r\nCAPA\r\n")
    assert f.readline() == b"-ERR Command line too long\r\n"
    assert f.readline().startswith(b"+OK")        # CAPA still answered
    s.close()


def test_user_before_stls_forgotten(stack_factory):
    """With frontend.pop3_login_type = plaintext USER may come before
    STLS; STLS forgets it (RFC 2595 4): a PASS under TLS needs a USER
    under TLS."""
    st = stack_factory("pop3stls",
                       settings=["frontend.pop3_login_type=plaintext"])
    user, pw = st.new_user("stls")
    p = poplib.POP3(st.host, st.POP3_PORT, timeout=10)
    assert p.user(user).startswith(b"+OK")
    assert p.stls(context=st.ssl_context()).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="Send USER first"):
        p.pass_(pw)
    p.user(user)
    assert p.pass_(pw).startswith(b"+OK")
    assert p.stat()[0] == 0
    p.quit()
    st.down()
