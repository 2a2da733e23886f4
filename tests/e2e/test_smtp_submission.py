"""SMTP submission through the frontend (RFC 6409, RFC 8314): EHLO before
and after TLS, AUTH and the account policy, the sender check, ESMTP
parameters, strict DATA line ends against smuggling, BDAT, pipelining and
the limits; with Python's smtplib, swaks and a raw client."""

import base64
import re
import smtplib
import subprocess

import pytest

from conftest import ALICE, BOB, wait_for
from smtp_client import RawSMTP, b64, inbox

pytestmark = pytest.mark.daemons

SIZE = 52428800   # smtp.max_message_size default (50M)
EXTENSIONS = ["PIPELINING", "SIZE %d" % SIZE, "8BITMIME",
              "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING"]


def plain(st):
    """Connected to the STARTTLS port, greeting read: the domain first,
    no enhanced status code (RFC 5321 4.2, RFC 2034 4)."""
    c = RawSMTP(st.host, st.SUBMISSION_PORT)
    assert c.reply() == (220, ["s1f1 ESMTP Portico ready"])
    return c


def tls(st):
    """Connected to the implicit TLS port, greeting read."""
    c = RawSMTP(st.host, st.SUBMISSIONS_PORT, tls_context=st.ssl_context())
    code, text = c.reply()
    assert code == 220, text
    return c


def logged_in(st, user=ALICE):
    c = tls(st)
    c.ehlo()
    code, text = c.auth_plain(*user)
    assert code == 235 and text == ["2.7.0 Authentication successful"]
    return c


def in_transaction(st, user=ALICE, rcpt=BOB[0]):
    c = logged_in(st, user)
    c.expect("MAIL FROM:<%s>" % user[0], 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
    return c


def test_ehlo_before_and_after_starttls(stack):
    c = plain(stack)
    assert c.ehlo() == EXTENSIONS + ["STARTTLS"]   # no AUTH before TLS
    c.starttls(stack.ssl_context())
    assert c.ehlo() == EXTENSIONS + ["AUTH PLAIN LOGIN"]
    c.expect("STARTTLS", 503, "5.5.1")
    c.expect("QUIT", 221, "2.0.0")
    c.close()


def test_ehlo_implicit_tls(stack):
    c = tls(stack)
    assert c.ehlo() == EXTENSIONS + ["AUTH PLAIN LOGIN"]
    c.close()


def test_helo_and_simple_commands(stack):
    c = plain(stack)
    # RFC 5321 4.1.1.1: the domain first; RFC 2034 4: no enhanced code
    assert c.cmd("HELO client.example") == (250,
                                            ["s1f1 Hello client.example"])
    c.expect("NOOP", 250, "2.0.0")
    c.expect("RSET", 250, "2.0.0")
    c.expect("VRFY alice", 252, "2.5.0")
    c.expect("EXPN staff", 502, "5.5.1")
    c.expect("HELP", 214, "2.0.0")
    c.expect("FOO bar", 500, "5.5.2")
    c.expect("LHLO x", 500, "5.5.2")      # LMTP only
    c.expect("EHLO", 501, "5.5.4")
    c.expect("RSET now", 501, "5.5.4")
    c.expect("QUIT", 221, "2.0.0")
    assert c.reply() == (None, [])
    c.close()


def test_auth_refused_before_tls(stack):
    c = plain(stack)
    c.ehlo()
    code, text = c.auth_plain(*ALICE)
    assert code == 538 and text[0].startswith("5.7.11 "), text
    c.expect("AUTH LOGIN", 538, "5.7.11")
    c.expect("MAIL FROM:<%s>" % ALICE[0], 530, "5.7.0")
    c.close()


def test_auth_plain_and_login_variants(stack):
    # PLAIN with an initial response
    logged_in(stack).close()
    # PLAIN without: an empty challenge first
    c = tls(stack)
    c.ehlo()
    assert c.cmd("AUTH PLAIN") == (334, [""])
    assert c.cmd(b64("\0%s\0%s" % ALICE))[0] == 235
    c.close()
    # LOGIN, step by step and with the user name as initial response
    c = tls(stack)
    c.ehlo()
    assert c.cmd("AUTH LOGIN") == (334, ["VXNlcm5hbWU6"])
    assert c.cmd(b64(ALICE[0])) == (334, ["UGFzc3dvcmQ6"])
    assert c.cmd(b64(ALICE[1]))[0] == 235
    c.expect("AUTH PLAIN", 503, "5.5.1")   # already authenticated
    c.close()
    c = tls(stack)
    c.ehlo()
    assert c.cmd("AUTH LOGIN " + b64(ALICE[0])) == (334, ["UGFzc3dvcmQ6"])
    assert c.cmd(b64(ALICE[1]))[0] == 235
    c.close()
    # cancelled, unknown mechanism, bad base64, AUTH before EHLO
    c = tls(stack)
    c.expect("AUTH PLAIN", 503, "5.5.1")
    c.ehlo()
    assert c.cmd("AUTH PLAIN")[0] == 334
    c.expect("*", 501, "5.0.0")
    c.expect("AUTH CRAM-MD5", 504, "5.5.4")
    c.expect("AUTH PLAIN !!!!", 501, "5.5.2")
    c.close()


def test_smtplib_login_both_ports(stack):
    s = smtplib.SMTP(stack.host, stack.SUBMISSION_PORT, timeout=10)
    s.starttls(context=stack.ssl_context())
    assert s.login(*ALICE)[0] == 235
    assert s.mail(ALICE[0])[0] == 250
    assert s.rcpt(BOB[0])[0] == 250
    s.quit()
    s = smtplib.SMTP_SSL(stack.host, stack.SUBMISSIONS_PORT, timeout=10,
                         context=stack.ssl_context())
    s.ehlo()
    s.user, s.password = ALICE
    assert s.auth("LOGIN", s.auth_login)[0] == 235
    s.quit()


def test_wrong_password_and_authzid(stack):
    c = tls(stack)
    c.ehlo()
    code, text = c.auth_plain(ALICE[0], "wrong")
    assert code == 535 and text == ["5.7.8 Authentication credentials "
                                     "invalid"]
    code, text = c.auth_plain(ALICE[0], ALICE[1], authz=BOB[0])
    assert code == 535 and text[0].startswith("5.7.8 Authorization "
                                              "identity"), text
    # the same identity twice is fine
    code, text = c.auth_plain(ALICE[0], ALICE[1], authz=ALICE[0])
    assert code == 235, text
    c.close()


@pytest.mark.parametrize("user", ["admin@example.test", "anonymous",
                                  "Administrator", "guest@example.test"])
def test_privileged_accounts_refused(stack, user):
    c = tls(stack)
    c.ehlo()
    code, text = c.auth_plain(user, "whatever")
    assert code == 535 and text[0].startswith(
        "5.7.8 Anonymous, guest and administrator"), text
    c.close()


def test_account_policy(stack):
    disabled = stack.new_user("smtpoff", smtp=False)
    c = tls(stack)
    c.ehlo()
    code, text = c.auth_plain(*disabled)
    assert code == 535 and text[0] == \
        "5.7.13 SMTP submission is disabled for this account", text
    locked = stack.new_user("locked", state="disabled")
    code, text = c.auth_plain(*locked)
    assert code == 535 and text[0].startswith("5.7.13 "), text
    c.close()


def test_sender_must_be_own_address(stack):
    user = stack.new_user("sender", aliases=["alias-sender@example.test"])
    c = logged_in(stack, user)
    text = c.expect("MAIL FROM:<%s>" % BOB[0], 553, "5.7.1")
    assert "not an address of" in text[0]
    c.expect("MAIL FROM:<>", 553, "5.7.1")
    c.expect("MAIL FROM:<%s>" % user[0].upper(), 250, "2.1.0")
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<alias-sender@EXAMPLE.TEST>", 250, "2.1.0")
    c.expect("MAIL FROM:<alias-sender@example.test>", 503, "5.5.1")
    c.close()


def test_mail_rcpt_parameters(stack):
    c = logged_in(stack)
    c.expect("RCPT TO:<%s>" % BOB[0], 503, "5.5.1")
    c.expect("DATA", 503, "5.5.1")
    c.expect("MAIL FROM:<%s> SIZE=%d" % (ALICE[0], SIZE + 1), 552, "5.3.4")
    c.expect("MAIL FROM:<%s> BODY=BINARYMIME" % ALICE[0], 555, "5.5.4")
    c.expect("MAIL FROM:<%s> FOO=1" % ALICE[0], 555, "5.5.4")
    c.expect("MAIL FROM:%s" % ALICE[0], 501, "5.5.4")
    c.expect("MAIL FROM:<%s> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=q+2Bx "
             "SMTPUTF8" % ALICE[0], 250, "2.1.0")
    c.expect("DATA", 554, "5.5.1")         # no recipient yet
    c.expect("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE "
             "ORCPT=rfc822;bob@example.test", 250, "2.1.5")
    c.expect("RCPT TO:<b\u00f6b@example.test>", 250, "2.1.5")  # SMTPUTF8
    c.expect("RCPT TO:<x@y.example> NOTIFY=NEVER,SUCCESS", 501, "5.5.4")
    c.expect("RCPT TO:<not an address>", 553, "5.1.3")
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<%s>" % ALICE[0], 250)
    c.expect("RCPT TO:<b\u00f6b@example.test>", 553, "5.6.7")
    c.close()


def bob_subjects(st):
    c = st.imap(*BOB)
    try:
        typ, exists = c.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(exists[0]) == 0:
            return b""
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return b"".join(d[1] for d in data if isinstance(d, tuple))
    finally:
        c.logout()


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r.\r", b"\n.\r\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF"])
def test_data_smuggling_refused(stack, smuggle):
    before = bob_subjects(stack)
    c = in_transaction(stack)
    c.expect("DATA", 354)
    # What a lenient server would take for the end of the message and a
    # second transaction.
    c.send(b"Subject: first\r\n\r\nfirst" + smuggle +
           b"MAIL FROM:<" + ALICE[0].encode() + b">\r\n"
           b"RCPT TO:<" + BOB[0].encode() + b">\r\n"
           b"DATA\r\n"
           b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
    # Exactly one reply, for the one message, which is refused.
    code, text = c.reply()
    assert code == 550 and text[0].startswith("5.6.2 "), text
    # The next reply answers the next command: nothing was injected.
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.expect("RCPT TO:<%s>" % BOB[0], 503, "5.5.1")   # transaction gone
    c.close()
    assert bob_subjects(stack) == before
    assert b"smuggled" not in bob_subjects(stack)


def test_data_dot_inside_lines_and_bare_cr_at_end(stack):
    c = in_transaction(stack)
    c.expect("DATA", 354)
    # ".\r" then not LF: not an end, a bare CR.
    c.send(b"Subject: x\r\n\r\n.\rQUIT\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and text[0].startswith("5.6.2 "), text
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_bdat_outside_transaction_is_consumed(stack):
    c = logged_in(stack)
    chunk = b"QUIT\r\nMAIL FROM:<x@y.z>\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    code, text = c.reply()
    assert code == 503 and text[0].startswith("5.5.1 "), text
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.close()


def test_bdat_chunks_and_bare_lf(stack):
    c = in_transaction(stack)
    c.send(b"BDAT 10\r\nSubject: x")
    assert c.reply() == (250, ["2.0.0 10 octets received"])
    c.send(b"BDAT 3\r\n\r\n\r")
    assert c.reply() == (250, ["2.0.0 13 octets received"])
    c.expect("DATA", 503, "5.5.1")        # no DATA after BDAT
    # bare LF in a chunk: refused at the end, nothing queued
    c.send(b"BDAT 8 LAST\r\n\nbody\n\r\n")
    code, text = c.reply()
    assert code == 550 and text[0].startswith("5.6.2 "), text
    assert c.cmd("NOOP")[0] == 250
    # a syntax error leaves the byte count unknown: the connection ends
    c.send(b"BDAT x\r\n")
    code, text = c.reply()
    assert code == 421, text
    assert c.reply() == (None, [])
    c.close()


def test_pipelining_in_order(stack):
    c = logged_in(stack)
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<bad>\r\n"
           "RCPT TO:<carol@example.test>\r\nNOOP\r\nRSET\r\nQUIT\r\n"
           % (ALICE[0], BOB[0]))
    codes = [c.reply()[0] for _ in range(7)]
    assert codes == [250, 250, 553, 250, 250, 250, 221]
    c.close()


def test_starttls_discards_pipelined_commands(stack):
    c = plain(stack)
    c.ehlo()
    c.send(b"STARTTLS\r\nNOOP\r\nNOOP\r\n")
    assert c.reply()[0] == 220
    c.sock = stack.ssl_context().wrap_socket(c.sock,
                                             server_hostname=stack.host)
    c.f = c.sock.makefile("rb")
    # the first reply under TLS answers EHLO; the NOOPs were dropped
    code, text = c.cmd("EHLO again")
    assert code == 250 and text[0].endswith("Hello again"), text
    c.close()


def test_session_state_reset_by_starttls(stack):
    c = plain(stack)
    c.ehlo()
    c.starttls(stack.ssl_context())
    # RFC 3207: the EHLO before TLS is forgotten
    c.expect("AUTH PLAIN " + b64("\0%s\0%s" % ALICE), 503, "5.5.1")
    c.close()


def test_data_nul_refused(stack):
    """A NUL byte in the content (DATA or BDAT: BINARYMIME is not
    offered) refuses the message like a bare CR or LF: 550 5.6.0, nothing
    queued, the session goes on."""
    before = bob_subjects(stack)
    c = in_transaction(stack)
    c.expect("DATA", 354)
    c.send(b"Subject: nul-data\r\n\r\na\0b\r\n.\r\n")
    assert c.reply() == (550, ["5.6.0 Message contains NUL characters"])
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.expect("RCPT TO:<%s>" % BOB[0], 503, "5.5.1")   # transaction gone
    c.expect("MAIL FROM:<%s>" % ALICE[0], 250)
    c.expect("RCPT TO:<%s>" % BOB[0], 250)
    chunk = b"Subject: nul-bdat\r\n\r\n\0\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    assert c.reply() == (550, ["5.6.0 Message contains NUL characters"])
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.close()
    after = bob_subjects(stack)
    assert after == before and b"nul-" not in after


def test_session_greetings_without_enhanced_codes(stack_factory):
    """SMTP submission switched off: the refusal is a greeting too,
    "554 domain text" (RFC 5321 3.1, 4.3.1), then the connection ends."""
    st = stack_factory("smtpoff", settings=["frontend.smtp_enabled=no"])
    c = RawSMTP(st.host, st.SUBMISSION_PORT)
    assert c.reply() == (554, ["s1f1 SMTP submission is not offered on "
                               "this server"])
    assert c.reply() == (None, [])
    c.close()
    st.down()


def test_swaks_both_ports(stack):
    common = ["swaks", "--server", stack.host, "--from", ALICE[0],
              "--to", BOB[0], "--auth-user", ALICE[0], "--auth-password",
              ALICE[1], "--quit-after", "RCPT", "--tls-ca-path",
              stack["CA_FILE"], "--tls-verify", "--tls-sni", stack.host]
    for port, how in ((stack.SUBMISSION_PORT, "--tls"),
                      (stack.SUBMISSIONS_PORT, "--tls-on-connect")):
        for mech in ("PLAIN", "LOGIN"):
            out = subprocess.run(common + ["--port", str(port), how,
                                           "--auth", mech],
                                 capture_output=True, text=True,
                                 timeout=30)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "235 2.7.0 Authentication successful" in out.stdout
            assert "250 2.1.5 Recipient <%s> OK" % BOB[0] in out.stdout
    # AUTH before TLS under secure login
    out = subprocess.run(common + ["--port", str(stack.SUBMISSION_PORT),
                                   "--auth", "PLAIN"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "235 " not in out.stdout


@pytest.fixture(scope="module")
def limited(stack_factory):
    st = stack_factory("smtplimits", settings=[
        "smtp.max_message_size=4k", "smtp.max_recipients=3",
        "smtp.max_errors=4", "frontend.smtp_login_type=plaintext",
        "frontend.proxy_networks=127.0.0.2/32"])
    st.add_user(*ALICE)
    return st


def test_proxy_protocol(limited):
    """PROXY from a load balancer (127.0.0.2 here): the address in the
    header is the client's, for logs and for lmtp.trusted_networks."""
    st = limited
    c = RawSMTP(st.host, st.SUBMISSION_PORT, source="127.0.0.2")
    c.send(b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 587\r\n")
    assert c.reply()[0] == 220
    c.expect("QUIT", 221)
    c.close()
    # LMTP: a client at 127.0.0.1 behind the balancer may deliver, one
    # elsewhere may not
    c = RawSMTP(st.host, st.LMTP_PORT, source="127.0.0.2")
    c.send(b"PROXY TCP4 127.0.0.1 127.0.0.1 40002 24\r\n")
    assert c.reply()[0] == 220
    c.close()
    c = RawSMTP(st.host, st.LMTP_PORT, source="127.0.0.2")
    c.send(b"PROXY TCP4 198.51.100.8 127.0.0.1 40003 24\r\n")
    assert c.reply() == (554, ["s1f1 LMTP is not offered to your address"])
    c.close()
    log = st.log("s1f1")
    assert re.search(r"client=198\.51\.100\.7:40001 proxy=127\.0\.0\.2:\d+ "
                     r"proxy_protocol=v1 protocol=submission ", log), log
    # a PROXY header from an address not in proxy_networks is refused
    c = RawSMTP(st.host, st.SUBMISSION_PORT)
    assert c.reply()[0] == 220
    c.send(b"PROXY TCP4 198.51.100.9 127.0.0.1 40004 587\r\n")
    code, text = c.reply()
    assert code == 554 and text[0].startswith("5.7.0 PROXY"), text
    assert c.reply() == (None, [])
    c.close()


def test_auth_before_starttls_forgotten(limited):
    """frontend.smtp_login_type = plaintext lets AUTH come before TLS;
    STARTTLS then forgets it with the rest of the session (RFC 3207 4.2):
    under TLS the client is not authenticated until it says AUTH again."""
    st = limited
    c = RawSMTP(st.host, st.SUBMISSION_PORT)
    assert c.reply()[0] == 220
    c.ehlo()
    assert c.auth_plain(*ALICE)[0] == 235
    c.starttls(st.ssl_context())
    c.expect("MAIL FROM:<%s>" % ALICE[0], 503, "5.5.1")  # EHLO forgotten
    assert "AUTH PLAIN LOGIN" in c.ehlo()     # offered again
    c.expect("MAIL FROM:<%s>" % ALICE[0], 530, "5.7.0")
    assert c.auth_plain(*ALICE)[0] == 235
    c.expect("MAIL FROM:<%s>" % ALICE[0], 250, "2.1.0")
    c.expect("QUIT", 221, "2.0.0")
    c.close()


def test_limits(limited):
    st = limited
    # plaintext login type: AUTH without TLS
    c = RawSMTP(st.host, st.SUBMISSION_PORT)
    assert c.reply()[0] == 220
    assert "AUTH PLAIN LOGIN" in c.ehlo()
    assert "SIZE 4096" in c.ehlo()
    assert c.auth_plain(*ALICE)[0] == 235
    c.expect("MAIL FROM:<%s>" % ALICE[0], 250)
    for i in range(3):
        c.expect("RCPT TO:<r%d@example.test>" % i, 250)
    c.expect("RCPT TO:<r4@example.test>", 452, "4.5.3")
    c.expect("DATA", 354)
    # larger than 4k: refused while it streams, the rest read and dropped
    c.send(b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n" * 1 +
           (b"y" * 78 + b"\r\n") * 100 + b".\r\n")
    code, text = c.reply()
    assert code == 552 and text[0].startswith("5.3.4 "), text
    assert c.cmd("NOOP")[0] == 250
    c.expect("MAIL FROM:<%s> SIZE=4097" % ALICE[0], 552, "5.3.4")
    # errors: the fourth failed command closes the connection
    c.expect("FOO", 500)
    c.expect("BAR", 500)
    c.expect("BAZ", 500)
    code, text = c.reply()
    assert code == 421 and text[0].startswith("4.7.0 "), text
    assert c.reply() == (None, [])
    c.close()


# ---- delivery: Submit -> the sender's backend queue -> LMTP -> INBOX ------

def wait_delivered(st, user, password, marker):
    """The message of USER's INBOX holding MARKER, once it is there."""
    from conftest import wait_for

    def found():
        for m in inbox(st, user, password):
            if marker in m:
                return m
        return None
    return wait_for(found, timeout=60, interval=0.3,
                    what="%s in %s's INBOX" % (marker, user))


@pytest.fixture(scope="module")
def spread(stack_factory):
    """Two sites, two backends in site 1: a sender and recipients on the
    same backend, another backend and another site."""
    st = stack_factory("smtpspread", sites=2, backends_per_site=2)
    users = {
        "sender": st.add_user("sender@example.test", "sender-pw", site=1,
                              backend=1,
                              aliases=["s.alias@example.test"]),
        "same": st.add_user("same@example.test", "same-pw", site=1,
                            backend=1),
        "other": st.add_user("other@example.test", "other-pw", site=1,
                             backend=2),
        "far": st.add_user("far@example.test", "far-pw", site=2,
                           backend=1),
    }
    return st, users


def message(marker, sender="sender@example.test"):
    return ("From: Sender <%s>\r\n"
            "To: same@example.test, other@example.test, far@example.test\r\n"
            "Subject: %s\r\n"
            "\r\n"
            "Body of %s.\r\n"
            ".a line with a leading dot\r\n" % (sender, marker, marker)
            ).encode()


def test_submission_delivered_everywhere(spread):
    st, u = spread
    body = message("everywhere-1")
    s = smtplib.SMTP(st.host, st.SUBMISSION_PORT, timeout=30)
    s.starttls(context=st.ssl_context())
    s.login(*u["sender"])
    s.mail("sender@example.test")
    for r in ("same@example.test", "other@example.test", "far@example.test"):
        assert s.rcpt(r)[0] == 250
    code, text = s.data(body)
    assert code == 250 and text.startswith(b"2.0.0 "), text
    s.quit()
    for who in ("same", "other", "far"):
        m = wait_delivered(st, *u[who], b"everywhere-1")
        # the frontend's Received line, then the message as sent
        assert m.endswith(body), m
        # TCP-info: an address literal, no port (RFC 5321 4.4)
        assert re.search(rb"Received: from \[?[\w.]+\]? \(\[127\.0\.0\.1\]\)"
                         rb"\r\n\tby s1f1 \(Portico\) with ESMTPSA id ", m), m


def test_submission_implicit_tls_alias_bdat(spread):
    st, u = spread
    body = message("bdat-2", sender="s.alias@example.test")
    c = RawSMTP(st.host, st.SUBMISSIONS_PORT, tls_context=st.ssl_context())
    assert c.reply()[0] == 220
    c.ehlo()
    assert c.auth_plain(*u["sender"])[0] == 235
    c.expect("MAIL FROM:<s.alias@example.test> BODY=8BITMIME", 250)
    c.expect("RCPT TO:<far@example.test>", 250)
    half = len(body) // 3
    c.send(b"BDAT %d\r\n" % half + body[:half])
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
    code, text = c.reply()
    assert code == 250 and text[0].startswith("2.0.0 "), text
    c.close()
    assert wait_delivered(st, *u["far"], b"bdat-2").endswith(body)


def test_submission_pipelined_transaction(spread):
    st, u = spread
    body = message("pipelined-3")
    c = RawSMTP(st.host, st.SUBMISSIONS_PORT, tls_context=st.ssl_context())
    assert c.reply()[0] == 220
    c.ehlo()
    assert c.auth_plain(*u["sender"])[0] == 235
    c.send(b"MAIL FROM:<sender@example.test>\r\n"
           b"RCPT TO:<same@example.test>\r\n"
           b"RCPT TO:<other@example.test>\r\n"
           b"DATA\r\n")
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    c.send(body.replace(b"\r\n.", b"\r\n..") + b".\r\nRSET\r\nQUIT\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 221]
    c.close()
    assert wait_delivered(st, *u["same"], b"pipelined-3").endswith(body)
    assert wait_delivered(st, *u["other"], b"pipelined-3").endswith(body)


def test_swaks_delivers(spread):
    st, u = spread
    for port, how, marker in ((st.SUBMISSION_PORT, "--tls", "swaks-587"),
                              (st.SUBMISSIONS_PORT, "--tls-on-connect",
                               "swaks-465")):
        out = subprocess.run(
            ["swaks", "--server", st.host, "--port", str(port), how,
             "--tls-verify", "--tls-ca-path", st["CA_FILE"],
             "--tls-sni", st.host, "--auth", "LOGIN",
             "--auth-user", "sender@example.test",
             "--auth-password", "sender-pw",
             "--from", "sender@example.test", "--to", "other@example.test",
             "--header", "Subject: %s" % marker, "--body", "via swaks"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert re.search(r"<~? *250 2\.0\.0 ", out.stdout), out.stdout
        wait_delivered(st, *u["other"], marker.encode())


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r.\r", b"\n.\r\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF"])
def test_smuggling_never_queued(spread, smuggle):
    """With a backend that queues: the refused message and the injected
    one never arrive, while a clean message sent after them does."""
    st, u = spread
    c = RawSMTP(st.host, st.SUBMISSIONS_PORT, tls_context=st.ssl_context())
    assert c.reply()[0] == 220
    c.ehlo()
    assert c.auth_plain(*u["sender"])[0] == 235
    tag = b"smuggle-%d" % len(smuggle) + smuggle[:1].replace(
        b"\n", b"n").replace(b"\r", b"r")
    c.expect("MAIL FROM:<sender@example.test>", 250)
    c.expect("RCPT TO:<same@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: outer " + tag + b"\r\n\r\nouter" + smuggle +
           b"MAIL FROM:<sender@example.test>\r\n"
           b"RCPT TO:<same@example.test>\r\n"
           b"DATA\r\n"
           b"Subject: injected " + tag + b"\r\n\r\ninjected\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and text[0].startswith("5.6.2 "), text
    # a clean message after it, to know when delivery has happened
    c.expect("MAIL FROM:<sender@example.test>", 250)
    c.expect("RCPT TO:<same@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: after " + tag + b"\r\n\r\nclean\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    wait_delivered(st, *u["same"], b"after " + tag)
    for m in inbox(st, *u["same"]):
        assert b"outer " + tag not in m
        assert b"injected " + tag not in m


def test_recipients_per_hour(stack_factory):
    """transport.max_recipients_per_hour: a user's submissions past it in
    the last hour get 450 4.7.1 and are not queued; up to it they go
    through, and other users keep their own count."""
    st = stack_factory(name="sendrate", settings=[
        "transport.max_recipients_per_hour=5"])
    sender, sender_pw = st.new_user("rate")
    other, other_pw = st.new_user("rateother")
    r1, r1_pw = st.new_user("ratercpt")
    r2, r2_pw = st.new_user("ratercpt")

    def message(n):
        return ("From: <%s>\r\nTo: <%s>, <%s>\r\nSubject: rate %d\r\n"
                "\r\nmessage %d\r\n" % (sender, r1, r2, n, n))

    s = smtplib.SMTP_SSL(st.host, st.SUBMISSIONS_PORT, timeout=30,
                         context=st.ssl_context())
    s.login(sender, sender_pw)
    assert s.sendmail(sender, [r1, r2], message(1)) == {}
    assert s.sendmail(sender, [r1, r2], message(2)) == {}
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(sender, [r1, r2], message(3))
    assert e.value.smtp_code == 450, e.value
    assert e.value.smtp_error.startswith(b"4.7.1 Sending limit reached"), \
        e.value
    # one more recipient fits exactly
    assert s.sendmail(sender, [r1], message(4)) == {}
    with pytest.raises(smtplib.SMTPDataError):
        s.sendmail(sender, [r2], message(5))
    s.quit()
    # another user is not held back by the first one's count
    o = smtplib.SMTP_SSL(st.host, st.SUBMISSIONS_PORT, timeout=30,
                         context=st.ssl_context())
    o.login(other, other_pw)
    assert o.sendmail(other, [r1, r2], "Subject: other\r\n\r\nx\r\n") == {}
    o.quit()
    # what was refused was not queued
    wait_for(lambda: len(inbox(st, r1, r1_pw)) == 4, timeout=30,
             what="r1's four messages")
    wait_for(lambda: len(inbox(st, r2, r2_pw)) == 3, timeout=30,
             what="r2's three messages")
    got = b"".join(inbox(st, r1, r1_pw)) + b"".join(inbox(st, r2, r2_pw))
    for n in (1, 2, 4):
        assert b"message %d" % n in got
    for n in (3, 5):
        assert b"message %d" % n not in got
    assert re.search(r"user=%s submission refused: 2 recipients with 4 in "
                     r"the last hour over transport.max_recipients_per_hour"
                     r"=5" % re.escape(sender), st.log("s1b1")), \
        st.log("s1b1")[-2000:]
