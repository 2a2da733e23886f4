"""Inbound LMTP (RFC 2033) through the frontend: trusted networks only,
recipients looked up in LDAP at RCPT, the message delivered by each
recipient's backend (Deliver on the link, several backends in parallel,
any site) and one reply per recipient, in order."""

import re
import subprocess
import time

import pytest

from conftest import ALICE, BOB, free_port
from smtp_client import RawSMTP, inbox

pytestmark = pytest.mark.daemons

MSG = (b"From: Sender <sender@remote.example>\r\n"
       b"To: list@example.test\r\n"
       b"Subject: lmtp test %s\r\n"
       b"\r\n"
       b"Hello.\r\n"
       b"..a line that began with a dot\r\n")


def lmtp(st, site=1, source=None):
    c = RawSMTP(st.host, st.port("lmtp", site=site), source=source)
    code, text = c.reply()
    assert code == 220 and text == ["s%df1 LMTP Portico ready" % site], text
    return c


def send(c, sender, rcpts, body, mail_params=""):
    """MAIL, RCPTs (each must be accepted), DATA: the replies after the
    content, one per recipient."""
    c.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250, "2.1.0")
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    return [c.reply() for _ in rcpts]


def deliver_with_id(st, rcpts, body, delivery_id):
    """One LMTP transaction under XDELIVERYID: the replies after DATA."""
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    replies = send(c, "sender@remote.example", rcpts, body,
                   " XDELIVERYID=%s" % delivery_id)
    c.expect("QUIT", 221)
    c.close()
    return replies


@pytest.fixture(scope="module")
def two_sites(stack_factory):
    st = stack_factory("lmtp2", sites=2)
    st.add_user(*ALICE, site=1)
    st.add_user(*BOB, site=2)
    st.add_user("carol@example.test", "carol-pw", site=1,
                aliases=["c.alias@example.test"])
    st.add_user("off@example.test", "off-pw", state="disabled")
    st.add_user("moving@example.test", "moving-pw", state="moving")
    return st


def test_untrusted_address_refused(stack):
    c = RawSMTP(stack.host, stack.LMTP_PORT, source="127.0.0.2")
    # in place of the greeting, its shape: "554 domain text" without an
    # enhanced code (RFC 2033 4.1, RFC 5321 4.3.1, RFC 2034 4)
    assert c.reply() == (554, ["s1f1 LMTP is not offered to your address"])
    assert c.reply() == (None, [])
    c.close()


def test_lhlo_and_commands(stack):
    c = lmtp(stack)
    c.expect("EHLO x", 500, "5.5.2")
    c.expect("HELO x", 500, "5.5.2")
    c.expect("MAIL FROM:<>", 503, "5.5.1")     # LHLO first
    code, text = c.cmd("LHLO mta.example")
    assert code == 250
    assert text[1:] == ["PIPELINING", "SIZE 52428800", "8BITMIME",
                        "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN",
                        "CHUNKING", "XDELIVERYID"]  # no STARTTLS, no AUTH
    c.expect("AUTH PLAIN AAAA", 500, "5.5.2")
    c.expect("STARTTLS", 500, "5.5.2")
    c.expect("RCPT TO:<%s>" % ALICE[0], 503, "5.5.1")
    c.expect("MAIL FROM:<>", 250, "2.1.0")       # bounces are welcome
    c.expect("DATA", 554, "5.5.1")
    c.expect("QUIT", 221, "2.0.0")
    c.close()


def test_recipients_checked_at_rcpt(two_sites):
    st = two_sites
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    c.expect("MAIL FROM:<sender@remote.example>", 250)
    text = c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    assert "nobody@example.test" in text[0]
    c.expect("RCPT TO:<off@example.test>", 550, "5.2.1")
    # being moved to another backend: deferred, not refused
    text = c.expect("RCPT TO:<moving@example.test>", 450, "4.2.1")
    assert "being moved" in text[0]
    c.expect("RCPT TO:<Postmaster>", 550, "5.1.1")
    c.expect("RCPT TO:<C.Alias@Example.Test>", 250, "2.1.5")
    c.expect("RCPT TO:<%s>" % ALICE[0], 250, "2.1.5")
    # pipelined lookups answer in order
    c.send("RCPT TO:<x1@example.test>\r\nRCPT TO:<%s>\r\n"
           "RCPT TO:<x2@example.test>\r\nNOOP\r\n" % BOB[0])
    assert [c.reply()[0] for _ in range(4)] == [550, 250, 550, 250]
    c.expect("RSET", 250)
    c.close()


def test_delivery_to_two_sites_one_reply_each(two_sites):
    st = two_sites
    before_a = len(inbox(st, *ALICE))
    before_b = len(inbox(st, *BOB))
    before_c = len(inbox(st, "carol@example.test", "carol-pw"))
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    body = MSG % b"two sites"
    replies = send(c, "sender@remote.example",
                   [BOB[0], ALICE[0], "c.alias@example.test"], body)
    for (code, text), who in zip(replies, [BOB[0], ALICE[0],
                                           "c.alias@example.test"]):
        assert code == 250, replies
        assert text[0].startswith("2.0.0 <%s> " % who), replies
    c.expect("QUIT", 221)
    c.close()
    for user, pw, before in ((ALICE[0], ALICE[1], before_a),
                             (BOB[0], BOB[1], before_b),
                             ("carol@example.test", "carol-pw", before_c)):
        msgs = inbox(st, user, pw)
        assert len(msgs) == before + 1, user
        m = msgs[-1]
        # The message as sent (dot-unstuffed), below the backend's
        # Return-Path and Received lines.
        assert m.endswith(body), m
        assert m.startswith(b"Return-Path: <sender@remote.example>\r\n"), m


def test_one_copy_per_mailbox(two_sites):
    """A user's own address and an alias of it (and the same address
    twice) in one transaction: one copy in the INBOX, a 250 for each
    recipient.  Under a delivery id a retry finds every one of them
    delivered."""
    st = two_sites
    carol = ("carol@example.test", "carol-pw")
    before_c = len(inbox(st, *carol))
    before_a = len(inbox(st, *ALICE))
    body = MSG % b"one copy"
    rcpts = [carol[0], "c.alias@example.test", ALICE[0],
             "C.Alias@Example.Test"]
    did = "s8b8.%016X.%d" % (int(time.time() * 1000), int(time.time()))
    for attempt in (1, 2):
        replies = deliver_with_id(st, rcpts, body, did)
        for (code, text), who in zip(replies, rcpts):
            assert code == 250, replies
            assert text[0].startswith("2.0.0 <%s> " % who), replies
            assert ("Already delivered" in text[0]) == (attempt == 2), \
                replies
    msgs = inbox(st, *carol)
    assert len(msgs) == before_c + 1, len(msgs) - before_c
    assert msgs[-1].endswith(body)
    assert len(inbox(st, *ALICE)) == before_a + 1


def test_delivery_id_stores_each_recipient_once(two_sites):
    """A retry under the same XDELIVERYID (Portico's queue after a crash
    that lost the reply) gets 250 for each recipient already stored, and
    no second copy; another recipient of the retry, or another id, is a
    new delivery.  Both sites' backends keep the records."""
    st = two_sites
    carol = ("carol@example.test", "carol-pw")
    before = {u: len(inbox(st, u, p)) for u, p in (ALICE, BOB, carol)}
    body = MSG % b"delivery id"
    did = "s9b9.%016X.%d" % (int(time.time() * 1000), int(time.time()))

    def deliver(rcpts, delivery_id):
        return deliver_with_id(st, rcpts, body, delivery_id)

    first = deliver([ALICE[0], BOB[0]], did)
    for (code, text), who in zip(first, (ALICE[0], BOB[0])):
        assert code == 250 and text[0].startswith("2.0.0 <%s> " % who) \
            and "Already delivered" not in text[0], first
    # The retry: both again, and carol, whom the first attempt missed.
    again = deliver([ALICE[0], BOB[0], carol[0]], did)
    for (code, text), who in zip(again[:2], (ALICE[0], BOB[0])):
        assert (code, text) == (250, ["2.0.0 <%s> %s Already delivered"
                                      % (who, did)]), again
    assert again[2][0] == 250 and "Already" not in again[2][1][0], again
    # A third time: everyone is known now.
    third = deliver([carol[0], ALICE[0]], did)
    assert [r[1][0].endswith("Already delivered") for r in third] == \
        [True, True], third
    # Another id is another message.
    other = deliver([ALICE[0]], did + "x")
    assert other[0][0] == 250 and "Already" not in other[0][1][0], other
    after = {u: inbox(st, u, p) for u, p in (ALICE, BOB, carol)}
    assert len(after[ALICE[0]]) == before[ALICE[0]] + 2
    assert len(after[BOB[0]]) == before[BOB[0]] + 1
    assert len(after[carol[0]]) == before[carol[0]] + 1
    for msgs in after.values():
        assert msgs[-1].endswith(body)
    # Each backend logged the retries it recognised.
    assert st.log("s1b1").count("delivery=%s duplicate" % did) == 3
    assert st.log("s2b1").count("delivery=%s duplicate" % did) == 1
    # Bad ids are refused at MAIL, the session goes on.
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    c.expect("MAIL FROM:<a@remote.example> XDELIVERYID=a/b", 501, "5.5.4")
    c.expect("MAIL FROM:<a@remote.example> XDELIVERYID=" + "x" * 65, 501,
             "5.5.4")
    c.expect("MAIL FROM:<a@remote.example> XDELIVERYID=", 501, "5.5.4")
    c.expect("MAIL FROM:<a@remote.example> XDELIVERYID=ok", 250, "2.1.0")
    c.expect("QUIT", 221)
    c.close()


def ldap_modify(st, dn, *changes):
    ldif = "dn: %s\nchangetype: modify\n%s\n" % (dn, "\n".join(changes))
    subprocess.run(
        ["ldapmodify", "-x", "-H", st.LDAP_URI, "-D", st.LDAP_ADMIN_DN,
         "-w", st.LDAP_ADMIN_PASSWORD],
        input=ldif.encode(), check=True, capture_output=True, timeout=30)


def test_directory_quota_applies_to_deliveries(two_sites):
    """The recipient's porticoQuotaMessages reaches its backend with the
    delivery (in the other site too), without a login of the user: a
    second message is over it; without the attribute the backend's
    limits apply again."""
    st = two_sites
    user, pw = st.new_user("lmtpquota", site=2)
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    ldap_modify(st, dn, "add: porticoQuotaMessages",
                "porticoQuotaMessages: 1")
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    assert send(c, "sender@remote.example", [user],
                MSG % b"q1")[0][0] == 250
    c.expect("MAIL FROM:<sender@remote.example>", 250)
    c.expect("RCPT TO:<%s>" % user, 250)
    c.expect("DATA", 354)
    c.send(MSG % b"q2" + b".\r\n")
    code, text = c.reply()
    assert (code, text[0][:6]) == (452, "4.2.2 "), (code, text)
    ldap_modify(st, dn, "delete: porticoQuotaMessages")
    assert send(c, "sender@remote.example", [user],
                MSG % b"q3")[0][0] == 250
    c.close()
    assert len(inbox(st, user, pw)) == 2


def test_backend_down_fails_only_its_recipients(two_sites):
    st = two_sites
    st.stop("s2b1")
    try:
        c = lmtp(st)
        c.cmd("LHLO mta.example")
        replies = send(c, "", [ALICE[0], BOB[0]], MSG % b"half")
        assert replies[0][0] == 250, replies
        assert replies[1][0] == 451 and \
            replies[1][1][0].startswith("4.4.1 "), replies
        c.close()
    finally:
        st.start("s2b1")
    # The frontend's attempt to reach s2b1 while it was down failed; the
    # next one is not made before frontend.link_retry_interval (1s).
    time.sleep(1.0)
    assert inbox(st, *ALICE)[-1].endswith(MSG % b"half")
    assert not inbox(st, *BOB) or \
        not inbox(st, *BOB)[-1].endswith(MSG % b"half")


def data_for_two(st):
    """An LMTP session at DATA's 354, for alice and carol."""
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    c.expect("MAIL FROM:<sender@remote.example>", 250)
    c.expect("RCPT TO:<%s>" % ALICE[0], 250)
    c.expect("RCPT TO:<carol@example.test>", 250)
    c.expect("DATA", 354)
    return c


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r.\r", b"\n.\r\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF"])
def test_smuggling_refused_per_recipient(two_sites, smuggle):
    st = two_sites
    before = inbox(st, *ALICE)
    c = data_for_two(st)
    c.send(b"Subject: first\r\n\r\nfirst" + smuggle +
           b"MAIL FROM:<evil@remote.example>\r\n"
           b"RCPT TO:<" + ALICE[0].encode() + b">\r\n"
           b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
    for _ in range(2):
        code, text = c.reply()
        assert code == 550 and text[0].startswith("5.6.2 "), text
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.close()
    assert inbox(st, *ALICE) == before


def test_nul_refused_per_recipient(two_sites):
    """A NUL byte in the content: 550 5.6.0 for each recipient, nothing
    delivered (IMAP could not serve it, RFC 3501 4.3)."""
    st = two_sites
    before = inbox(st, *ALICE)
    c = data_for_two(st)
    c.send(b"Subject: nul\r\n\r\nbefore\0after\r\n.\r\n")
    for _ in range(2):
        assert c.reply() == (550, ["5.6.0 Message contains NUL "
                                   "characters"])
    assert c.cmd("NOOP") == (250, ["2.0.0 OK"])
    c.close()
    assert inbox(st, *ALICE) == before


def test_bdat_delivery(two_sites):
    st = two_sites
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    c.expect("MAIL FROM:<sender@remote.example> BODY=8BITMIME", 250)
    c.expect("RCPT TO:<%s>" % ALICE[0], 250)
    c.expect("RCPT TO:<%s>" % BOB[0], 250)
    body = MSG % b"bdat \xc3\xa9"
    half = len(body) // 2
    c.send(b"BDAT %d\r\n" % half + body[:half])
    assert c.reply() == (250, ["2.0.0 %d octets received" % half])
    c.send(b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
    assert [c.reply()[0] for _ in range(2)] == [250, 250]
    c.close()
    assert inbox(st, *ALICE)[-1].endswith(body)
    assert inbox(st, *BOB)[-1].endswith(body)


def test_large_message_streams(two_sites):
    """A message several times the link window goes through whole."""
    st = two_sites
    line = b"0123456789" * 7 + b"abcdefgh\r\n"
    body = b"Subject: large\r\n\r\n" + line * 40000      # 3.2 MB
    c = lmtp(st)
    c.cmd("LHLO mta.example")
    replies = send(c, "sender@remote.example", [ALICE[0], BOB[0]], body)
    assert [r[0] for r in replies] == [250, 250], replies
    c.close()
    assert inbox(st, *ALICE)[-1].endswith(body)
    assert inbox(st, *BOB)[-1].endswith(body)


# ---- a real MTA: Debian's Postfix relaying a domain to the LMTP listener --

MASTER_CF = """\
127.0.0.1:{smtp} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
lmtp      unix - - n - - lmtp
smtp      unix - - n - - smtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mta.example.net
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = example.test
transport_maps = inline:{{ example.test=lmtp:inet:127.0.0.1:{lmtp} }}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
lmtp_host_lookup = native
smtp_host_lookup = native
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
biff = no
"""


@pytest.fixture
def postfix(two_sites):
    """A Postfix instance of its own (postfix -c DIR) on a free loopback
    port, relaying example.test to the stack's LMTP listener."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path
    if shutil.which("postfix") is None:
        pytest.fail("postfix is not installed (scripts/deps.sh)")
    # Postfix's daemons run as the postfix user: a directory they can
    # reach (pytest's are private to root).
    d = Path(tempfile.mkdtemp(prefix="portico-postfix-"))
    d.chmod(0o755)
    (d / "queue").mkdir()
    (d / "data").mkdir()
    shutil.chown(d / "data", "postfix")
    port = free_port()
    (d / "main.cf").write_text(MAIN_CF.format(
        dir=d, lmtp=two_sites.port("lmtp")))
    (d / "master.cf").write_text(MASTER_CF.format(smtp=port))
    try:
        out = subprocess.run(["postfix", "-c", str(d), "start"],
                             capture_output=True, text=True, timeout=60)
        log = d / "maillog"
        assert out.returncode == 0, out.stdout + out.stderr + (
            log.read_text() if log.exists() else "")
        yield port, d
    finally:
        subprocess.run(["postfix", "-c", str(d), "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(d, ignore_errors=True)


def test_postfix_delivers_through_lmtp(two_sites, postfix):
    import smtplib
    from conftest import wait_for
    st = two_sites
    port, d = postfix
    before_a = len(inbox(st, *ALICE))
    before_b = len(inbox(st, *BOB))
    body = (b"From: Remote <remote@elsewhere.example>\r\n"
            b"To: alice@example.test, bob@example.test\r\n"
            b"Subject: via postfix\r\n"
            b"Message-ID: <postfix-lmtp-1@elsewhere.example>\r\n"
            b"\r\n"
            b"Relayed by Postfix.\r\n"
            b".leading dot\r\n")
    s = wait_for(lambda: _smtp_or_none(port), timeout=30,
                 what="postfix listening")
    s.ehlo("elsewhere.example")
    refused = s.sendmail("remote@elsewhere.example",
                         [ALICE[0], "bob@example.test"], body)
    assert refused == {}
    s.quit()

    def delivered():
        a, b = inbox(st, *ALICE), inbox(st, *BOB)
        return len(a) > before_a and len(b) > before_b and (a, b)
    try:
        a, b = wait_for(delivered, timeout=60, interval=0.5,
                        what="delivery through Postfix")
    except AssertionError:
        print((d / "maillog").read_text())
        raise
    for msgs in (a, b):
        m = msgs[-1]
        assert b"Subject: via postfix\r\n" in m
        assert m.endswith(b"\r\nRelayed by Postfix.\r\n.leading dot\r\n")
        assert b"Return-Path: <remote@elsewhere.example>" in m
    log = (d / "maillog").read_text()
    assert re.search(r"to=<alice@example\.test>.*relay=127\.0\.0\.1"
                     r"\[127\.0\.0\.1\]:%d.*status=sent" % st.port("lmtp"),
                     log), log


def _smtp_or_none(port):
    import smtplib
    try:
        return smtplib.SMTP("127.0.0.1", port, timeout=10)
    except OSError:
        return None
