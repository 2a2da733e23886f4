"""Automatic replies (out of office, RFC 3834) from the directory: a user
whose entry has porticoAutoReplyText (and optionally
porticoAutoReplySubject, porticoAutoReplyStart, porticoAutoReplyEnd) has
each message delivered to it answered, from the null reverse path, by a
reply that goes through the backend's queue (to the smarthost for a
remote sender, into the INBOX for a local one); once per sender within
transport.auto_reply_interval, and never to what must not be answered
(the null sender, mailing lists, automatic messages, a message not
addressed to the user, outside the start and end).  The per-account
record of senders answered passes portico-admin check and goes with the
account."""

import base64
import datetime
import email
import email.policy
import email.utils
import html
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import wait_for
from test_admin import ldap_modify
from test_transport import (PortHold, Sink, admin, backend_metrics,
                            fetch_inbox, header_fields, inbox_when, lmtp,
                            queue_empty, queue_listing, submit)

INTERVAL = 3          # transport.auto_reply_interval, seconds
MAX_TEXT = 24000      # lmtp.auto_reply_max_size
MAX_FRAME = 65536     # limits.link_max_frame
METRIC = "portico_backend_auto_replies_total"

TEXT = ("Guten Tag,\n"
        "\n"
        "ich bin bis Montag nicht im Büro und lese meine E-Mails nicht.\n"
        "In dringenden Fällen wenden Sie sich bitte an Jürgen Groß.\n"
        "\n"
        "Viele Grüße\n"
        "Änne Müller")
SUBJECT = "Abwesend – zurück am Montag"

ATTRS = {"text": "porticoAutoReplyText",
         "subject": "porticoAutoReplySubject",
         "start": "porticoAutoReplyStart",
         "end": "porticoAutoReplyEnd"}


@pytest.fixture(scope="module")
def ar_stack(stack_factory):
    """One stack for the file: example.test is local (scripts/stack sets
    transport.local_domains), other domains go to a running smarthost
    (a Sink); a sender is answered again after INTERVAL seconds."""
    port = PortHold()
    st = stack_factory("autoreply", settings=[
        "transport.smarthost=127.0.0.1:%d" % port.port,
        "transport.retry_first=1s", "transport.retry_max=2s",
        "transport.auto_reply_interval=%ds" % INTERVAL,
        "lmtp.auto_reply_max_size=%d" % MAX_TEXT,
        "limits.link_max_frame=%d" % MAX_FRAME])
    st.sink = Sink(port, str(st.dir / "certs" / "mail.pem"),
                   str(st.dir / "certs" / "mail.key"))
    st.sink.start()
    try:
        yield st
    finally:
        st.sink.stop()
        st.down()


# ---- helpers -----------------------------------------------------------------

def set_auto_reply(st, user, **fields):
    """Replace the porticoAutoReply* attributes named (text, subject,
    start, end) of USER's entry; None removes one (a replace without a
    value, which is no error when the entry lacks it)."""
    changes = []
    for key, value in fields.items():
        attr = ATTRS[key]
        if changes:
            changes.append("-")
        changes.append("replace: " + attr)
        if value is not None:
            changes.append("%s:: %s" % (
                attr, base64.b64encode(value.encode()).decode()))
    dn = "uid=%s,%s" % (user, st["LDAP_PEOPLE_DN"])
    try:
        ldap_modify(st, dn, *changes)
    except subprocess.CalledProcessError as e:
        raise AssertionError("ldapmodify of %s %s: %s" % (
            user, fields, e.stderr.decode(errors="replace"))) from None


def gtime(offset):
    """LDAP GeneralizedTime OFFSET seconds from now."""
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + offset))


def message(mid, sender, to, subject="Hello", cc=None, extra=()):
    """A message (bytes, CRLF) with Message-ID <MID>; SUBJECT None: no
    Subject: field; EXTRA: more header lines."""
    lines = ["From: %s" % sender, "To: %s" % to]
    if cc is not None:
        lines.append("Cc: %s" % cc)
    if subject is not None:
        lines.append("Subject: %s" % subject)
    lines.append("Date: Mon, 23 Nov 2026 12:00:00 +0000")
    lines.append("Message-ID: <%s>" % mid)
    lines += list(extra)
    return ("\r\n".join(lines) +
            "\r\n\r\nA message for the auto-reply test.\r\n").encode()


def deliver(st, user, case, msg, mail_from):
    """Deliver MSG to USER over LMTP from MAIL_FROM; it must be taken."""
    got = lmtp(st, [user], msg, mail_from=mail_from)
    assert got[user][0] == 250, (case, got)


def replies_to(st, addr):
    """The messages the smarthost got for ADDR alone."""
    return [m for m in st.sink.messages if m[1] == [addr]]


def settle(st, want, what):
    """Wait until the smarthost has WANT messages and the queue is empty
    (an auto-reply is queued with the delivery it answers, so once the
    queue is empty every reply of the deliveries so far has gone out);
    then it must have exactly WANT."""
    try:
        wait_for(lambda: len(st.sink.messages) >= want, timeout=30,
                 interval=0.1, what="smarthost")
        wait_for(lambda: queue_empty(st), timeout=30, interval=0.1,
                 what="queue")
    except AssertionError as e:
        raise AssertionError("%s: timed out waiting for the %s: want %d "
                             "message(s) at the smarthost, got %r; %s" % (
                                 what, str(e).rsplit(" ", 1)[-1], want,
                                 [m[1] for m in st.sink.messages],
                                 queue_listing(st))) from None
    got = [m[1] for m in st.sink.messages]
    assert len(got) == want, (what, got, queue_listing(st))


def norm(text):
    return text.replace("\r\n", "\n").rstrip()


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def check_reply(case, raw, account, sender, orig_mid, subject, text):
    """RAW (bytes, CRLF) is the auto-reply of ACCOUNT to SENDER for the
    message <ORIG_MID>, with SUBJECT and the body TEXT."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    try:
        head.decode("ascii")
    except UnicodeDecodeError:
        raise AssertionError("%s: header not ASCII (RFC 2047 expected): %r"
                             % (case, head)) from None
    for name in (b"From", b"To", b"Subject", b"Date", b"Message-ID",
                 b"In-Reply-To", b"References", b"Auto-Submitted",
                 b"MIME-Version", b"Content-Type"):
        assert len(header_fields(raw, name)) == 1, (case, name, head)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert email.utils.parseaddr(str(m["From"]))[1].lower() == \
        account.lower(), (case, m["From"])
    assert email.utils.parseaddr(str(m["To"]))[1].lower() == \
        sender.lower(), (case, m["To"])
    assert str(m["Subject"]) == subject, (case, m["Subject"], head)
    when = email.utils.parsedate_to_datetime(str(m["Date"]))
    if when.utcoffset() is None:        # "-0000": UTC, the zone unknown
        when = when.replace(tzinfo=datetime.timezone.utc)
    assert abs(when.timestamp() - time.time()) < 600, (case, m["Date"])
    mid = str(m["Message-ID"]).strip()
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid), (case, mid)
    assert mid != "<%s>" % orig_mid, case
    assert str(m["In-Reply-To"]).strip() == "<%s>" % orig_mid, \
        (case, m["In-Reply-To"])
    assert str(m["References"]).split()[-1] == "<%s>" % orig_mid, \
        (case, m["References"])
    assert str(m["Auto-Submitted"]).strip() == "auto-replied", \
        (case, m["Auto-Submitted"])
    assert str(m["MIME-Version"]).strip() == "1.0", (case, m["MIME-Version"])
    assert m.get_content_type() == "text/plain", (case, m["Content-Type"])
    assert m.get_content_charset() == "utf-8", (case, m["Content-Type"])
    if not text.isascii():
        assert str(m["Content-Transfer-Encoding"]).strip().lower() == \
            "base64", (case, m["Content-Transfer-Encoding"])
    assert norm(m.get_content()) == norm(text), (case, m.get_content())
    return m


def check_relayed(st, case, account, sender, orig_mid, subject, text,
                  index=-1):
    """The smarthost's reply number INDEX to SENDER: from <>, to SENDER
    alone, and as check_reply() says."""
    got = replies_to(st, sender)
    assert got, (case, [m[1] for m in st.sink.messages])
    mail_from, rcpts, data = got[index]
    assert mail_from in ("", "<>"), (case, mail_from)
    assert rcpts == [sender], (case, rcpts)
    return check_reply(case, crlf(data), account, sender, orig_mid, subject,
                       text)


def message_ids(st, user):
    """The Message-IDs of USER's INBOX, in UID order."""
    out = []
    for _, raw in fetch_inbox(st, user):
        ids = header_fields(raw, b"Message-ID")
        out.append(ids[0].decode() if ids else None)
    return out


def check_then_remove(st, mbox):
    """check --all is clean with the account's record of senders
    answered, remove takes the account, and check --all is clean after
    (no record of it left behind)."""
    for args in (("check", "--all"), ("remove", mbox, "--yes"),
                 ("check", "--all")):
        p = admin(st, "s1b1", *args)
        assert p.returncode == 0, (args, p.stdout + p.stderr)


# ---- remote senders ----------------------------------------------------------

@pytest.mark.daemons
def test_auto_reply_to_remote_senders(ar_stack):
    """A user with a text and a Subject (not ASCII) in the directory: a
    remote sender gets one reply at the smarthost, from <>, with every
    header RFC 3834 asks for and the text as the body; the same sender
    (in any case) again gets none within transport.auto_reply_interval,
    another sender gets one, and after the interval the first one gets
    one again.  No reply to the null sender, list and automatic mail,
    mailer-daemons and list owners, a message not addressed to the user,
    the user's own mail, outside the start and end, or once the text is
    gone; without a Subject in the directory the reply's is "Auto: " and
    the original's.  Every message is in the INBOX all the same; the
    metric counts the replies; check --all is clean, also after the
    account's removal."""
    st = ar_stack
    user, _, mbox = st.new_account("ooo")
    sink0 = len(st.sink.messages)
    metrics = backend_metrics(st)
    assert METRIC in metrics, sorted(metrics)
    metric0 = metrics[METRIC]
    delivered = []              # (case, Message-ID) expected in the INBOX

    def send(case, mail_from, msg):
        deliver(st, user, case, msg, mail_from)
        delivered.append((case, "<%s@remote.test>" % case))

    set_auto_reply(st, user, text=TEXT, subject=SUBJECT)

    # 1. a remote sender: one reply; 2. the same sender again (its
    # address in other case): none; another sender: one
    s1, s2 = "sender.one@remote.test", "sender.two@remote.test"
    start = time.monotonic()
    send("first", s1, message(
        "first@remote.test", "Sender One <%s>" % s1,
        "Out Of Office <%s>" % user, subject="Meeting next week",
        extra=["References: <thread-0@remote.test>"]))
    send("repeat", s1.upper(), message(
        "repeat@remote.test", "Sender One <%s>" % s1, user,
        subject="Meeting next week, again"))
    repeat_done = time.monotonic()
    assert repeat_done - start < INTERVAL, \
        "too slow to test transport.auto_reply_interval"
    send("other-sender", s2, message(
        "other-sender@remote.test", s2, user, subject="Hi"))
    settle(st, sink0 + 2, "first sender, once, and another sender")
    assert len(replies_to(st, s1)) == 1, [m[1] for m in st.sink.messages]
    check_relayed(st, "first", user, s1, "first@remote.test", SUBJECT, TEXT)
    check_relayed(st, "other-sender", user, s2, "other-sender@remote.test",
                  SUBJECT, TEXT)

    # 3. what gets no reply, each from a sender of its own, then what
    # does (the barrier: their replies, then an empty queue)
    negatives = [
        ("null-sender", "", []),
        ("auto-generated", "autogen@remote.test",
         ["Auto-Submitted: auto-generated"]),
        ("auto-replied", "autoreplied@remote.test",
         ["Auto-Submitted: auto-replied"]),
        ("precedence-bulk", "bulk@remote.test", ["Precedence: bulk"]),
        ("precedence-list", "plist@remote.test", ["Precedence: list"]),
        ("precedence-junk", "junk@remote.test", ["Precedence: junk"]),
        ("list-id", "listid@remote.test",
         ["List-Id: A list <list.remote.test>"]),
        ("list-post", "listpost@remote.test",
         ["List-Post: <mailto:list@remote.test>"]),
        ("suppress-oof", "oof@remote.test",
         ["X-Auto-Response-Suppress: OOF"]),
        ("suppress-all", "suppressall@remote.test",
         ["X-Auto-Response-Suppress: All"]),
        ("spam-flag", "spamflag@remote.test", ["X-Spam-Flag: YES"]),
        ("spam-status", "spamstatus@remote.test",
         ["X-Spam-Status: Yes, score=12.3 required=5.0"]),
        ("mailer-daemon", "Mailer-Daemon@remote.test", []),
        ("owner", "owner-list@remote.test", []),
        ("request", "news-REQUEST@remote.test", []),
        ("listserv", "LISTSERV@remote.test", []),
        ("majordomo", "Majordomo@remote.test", []),
    ]
    for case, sender, extra in negatives:
        send(case, sender, message("%s@remote.test" % case,
                                   sender or "robot@remote.test", user,
                                   extra=extra))
    send("not-addressed", "notaddressed@remote.test", message(
        "not-addressed@remote.test", "notaddressed@remote.test",
        "someone-else@remote.test"))
    send("own-address", user, message("own-address@remote.test", user,
                                      user))
    positives = [
        ("in-cc", "incc@remote.test", message(
            "in-cc@remote.test", "incc@remote.test",
            "someone-else@remote.test", cc="Ooo <%s>" % user)),
        ("auto-submitted-no", "asno@remote.test", message(
            "auto-submitted-no@remote.test", "asno@remote.test", user,
            extra=["Auto-Submitted: no", "X-Spam-Flag: NO",
                   "X-Spam-Status: No, score=0.1 required=5.0"])),
        ("to-other-case", "othercase@remote.test", message(
            "to-other-case@remote.test", "othercase@remote.test",
            '"Office, Out Of" <%s>' % user.upper())),
    ]
    for case, sender, msg in positives:
        send(case, sender, msg)
    settle(st, sink0 + 2 + len(positives),
           "no reply to any of %s; one to each of %s" % (
               [c for c, _, _ in negatives] + ["not-addressed",
                                               "own-address"],
               [c for c, _, _ in positives]))
    for case, sender, _ in positives:
        assert len(replies_to(st, sender)) == 1, case
        check_relayed(st, case, user, sender, "%s@remote.test" % case,
                      SUBJECT, TEXT)

    # start and end: before the start, after the end none; between one
    set_auto_reply(st, user, start=gtime(86400))
    send("start-future", "startfuture@remote.test", message(
        "start-future@remote.test", "startfuture@remote.test", user))
    set_auto_reply(st, user, start=gtime(-2 * 86400), end=gtime(-86400))
    send("end-past", "endpast@remote.test", message(
        "end-past@remote.test", "endpast@remote.test", user))
    set_auto_reply(st, user, end=gtime(86400))
    send("in-window", "inwindow@remote.test", message(
        "in-window@remote.test", "inwindow@remote.test", user))
    set_auto_reply(st, user, start=None, end=None)
    settle(st, sink0 + 2 + len(positives) + 1,
           "none before the start (start-future) or after the end "
           "(end-past), one between them (in-window)")
    assert replies_to(st, "startfuture@remote.test") == [], "start-future"
    assert replies_to(st, "endpast@remote.test") == [], "end-past"
    check_relayed(st, "in-window", user, "inwindow@remote.test",
                  "in-window@remote.test", SUBJECT, TEXT)

    # a text over lmtp.auto_reply_max_size: off, and the frontend says
    # why; the text gone: off; back without a Subject: the default one
    set_auto_reply(st, user, text="x" * (MAX_TEXT + 1))
    send("text-too-long", "toolong@remote.test", message(
        "text-too-long@remote.test", "toolong@remote.test", user))
    assert "rcpt=<%s> automatic reply off: longer than " \
        "lmtp.auto_reply_max_size" % user in st.log("s1f1")
    set_auto_reply(st, user, text=None)
    send("text-removed", "textremoved@remote.test", message(
        "text-removed@remote.test", "textremoved@remote.test", user))
    set_auto_reply(st, user, text="Back on Monday.\nRegards", subject=None)
    send("default-subject", "defsubject@remote.test", message(
        "default-subject@remote.test", "defsubject@remote.test", user,
        subject="Quarterly\r\n report"))
    send("no-subject", "nosubject@remote.test", message(
        "no-subject@remote.test", "nosubject@remote.test", user,
        subject=None))
    settle(st, sink0 + 2 + len(positives) + 3,
           "none once the text is gone (text-removed), one each for "
           "default-subject and no-subject")
    assert replies_to(st, "textremoved@remote.test") == [], "text-removed"
    assert replies_to(st, "toolong@remote.test") == [], "text-too-long"
    check_relayed(st, "default-subject", user, "defsubject@remote.test",
                  "default-subject@remote.test", "Auto: Quarterly report",
                  "Back on Monday.\nRegards")
    check_relayed(st, "no-subject", user, "nosubject@remote.test",
                  "no-subject@remote.test", "Auto reply",
                  "Back on Monday.\nRegards")

    # 2. after the interval the first sender is answered again
    set_auto_reply(st, user, text=TEXT, subject=SUBJECT)
    rest = repeat_done + INTERVAL + 1 - time.monotonic()
    if rest > 0:
        time.sleep(rest)        # let the interval pass (not an assertion)
    send("after-interval", s1, message(
        "after-interval@remote.test", s1, user, subject="Still away?"))
    settle(st, sink0 + 2 + len(positives) + 4,
           "the first sender again after the interval (after-interval)")
    assert len(replies_to(st, s1)) == 2, [m[1] for m in st.sink.messages]
    check_relayed(st, "after-interval", user, s1,
                  "after-interval@remote.test", SUBJECT, TEXT)

    # every message delivered, and nothing else in the INBOX
    ids = message_ids(st, user)
    for case, mid in delivered:
        assert mid in ids, (case, ids)
    assert len(ids) == len(delivered), (ids, delivered)

    replies = len(st.sink.messages) - sink0
    assert replies == 2 + len(positives) + 4
    assert backend_metrics(st)[METRIC] - metric0 == replies
    assert "auto-reply" in st.log("s1b1")
    check_then_remove(st, mbox)


# ---- a local sender ----------------------------------------------------------

@pytest.mark.daemons
def test_auto_reply_to_local_sender_no_loop(ar_stack):
    """A user of the stack submits a message to one whose automatic
    reply is on: the reply reaches the sender's INBOX through the queue,
    with Return-Path: <> and Auto-Submitted: auto-replied; the sender's
    own automatic reply does not answer it (no loop), so the other INBOX
    holds the original alone.  The metric counts the one reply; check
    --all is clean before and after the account's removal."""
    st = ar_stack
    away, _, away_mbox = st.new_account("oooaway")
    local, local_pw = st.new_user("ooolocal")
    set_auto_reply(st, away, text="Out until Friday.")
    set_auto_reply(st, local, text="I am away too.",
                   subject="Also away")
    sink0 = len(st.sink.messages)
    metric0 = backend_metrics(st)[METRIC]

    orig = message("local-1@example.test", local, away,
                   subject="Lunch on Friday?").replace(
                       b"A message for the auto-reply test.",
                       b"Shall we?")
    submit(st, local, local_pw, [away], orig)
    [(size, raw)] = inbox_when(st, local, 1)
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
    check_reply("local sender", raw, away, local, "local-1@example.test",
                "Auto: Lunch on Friday?", "Out until Friday.")
    # the sender's reply, had there been one, was queued with the
    # delivery of this one: an empty queue means it would be delivered
    wait_for(lambda: queue_empty(st), timeout=30, interval=0.1,
             what="the queue to empty")
    assert message_ids(st, away) == ["<local-1@example.test>"], \
        "the local sender's auto-reply answered the auto-reply"
    assert len(fetch_inbox(st, local)) == 1
    assert len(st.sink.messages) == sink0, st.sink.messages[sink0:]
    assert backend_metrics(st)[METRIC] - metric0 == 1

    check_then_remove(st, away_mbox)


# ---- the settings page -------------------------------------------------------

def page_post(st, fields):
    """POST /settings over HTTPS with FIELDS: (status, page text)."""
    from test_http_settings import https, request
    body = urllib.parse.urlencode(fields)
    status, _, page = request(https(st), "POST", "/settings", body, {
        "Content-Type": "application/x-www-form-urlencoded"})
    return status, page.decode()


def page_auto_reply(page):
    """The settings page's automatic reply section: its state, message,
    form values."""
    m = re.search(r'<section id="auto-reply">(.*?)</section>', page, re.S)
    assert m, page
    sec = m.group(1)

    def find(rx):
        f = re.search(rx, sec, re.S)
        return html.unescape(f.group(1)) if f else None
    return {
        "state": find(r'id="auto-reply-state" data-state="(\w+)"'),
        "said": find(r'id="auto-reply-state"[^>]*>(.*?)</p>'),
        "message": find(r'id="auto-reply-message">(.*?)</p>'),
        "on": 'id="ar-on" value="on" checked' in sec,
        "subject": find(r'id="ar-subject"[^>]* value="([^"]*)"'),
        "text": find(r'<textarea id="ar-text"[^>]*>(.*?)</textarea>'),
        "start": find(r'id="ar-start"[^>]* value="([^"]*)"'),
        "end": find(r'id="ar-end"[^>]* value="([^"]*)"'),
        "login": find(r'name="user" value="([^"]*)"'),
    }


def ldap_auto_reply(st, user):
    """The porticoAutoReply* attributes of USER's entry, as slapd has
    them (name -> decoded value)."""
    out = subprocess.run(
        ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H",
         st.LDAP_URI, "-D", st.LDAP_ADMIN_DN, "-w", st.LDAP_ADMIN_PASSWORD,
         "-b", st["LDAP_PEOPLE_DN"], "(mail=%s)" % user] +
        list(ATTRS.values()), capture_output=True, check=True,
        timeout=30).stdout.decode()
    got = {}
    for line in out.splitlines():
        if line.startswith("porticoAutoReply"):
            name, sep, value = line.partition(":")
            if value.startswith(": "):
                value = base64.b64decode(value[2:]).decode()
            else:
                value = value[1:]
            got[name] = value
    return got


@pytest.mark.daemons
def test_auto_reply_on_the_settings_page(ar_stack):
    """A user signs in on the settings page and sees the automatic reply
    off; switches it on with a text (not ASCII), a subject and the days
    it covers, confirming with the password: the directory has the four
    attributes (the days as GeneralizedTime, the last one whole), the page
    shows them, and a message delivered then is answered with them.  A
    wrong password changes nothing; bad days and an empty text are
    refused with their message; switched off, the attributes are gone and
    the next sender gets no reply."""
    st = ar_stack
    user, pw = st.new_user("oooweb")
    status, page = page_post(st, {"user": user, "password": pw})
    assert status == 200, page
    ar = page_auto_reply(page)
    assert (ar["state"], ar["on"], ar["login"], ar["message"]) == \
        ("off", False, user, None), ar

    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=1)
    last = today + datetime.timedelta(days=6)
    text = "Ich bin im Urlaub.\r\nGrüße aus Köln"
    form = {"action": "auto-reply", "user": user, "password": pw,
            "auto_reply": "on", "subject": "Urlaub – bis %s" % last,
            "text": text, "start": first.isoformat(),
            "end": last.isoformat()}

    # refusals: nothing changes
    for case, change, status_want, said in [
            ("wrong password", {"password": pw + "x"}, 403,
             "The mail address or the password is wrong."),
            ("last day before the first",
             {"start": last.isoformat(), "end": first.isoformat()}, 400,
             "The last day comes before the first."),
            ("not a day", {"end": "24.12.2026"}, 400,
             "Give the dates as YYYY-MM-DD."),
            ("last day over", {"start": "", "end": "2020-01-01"}, 400,
             "The last day is over already."),
            ("empty text", {"text": " \r\n"}, 400,
             "Write the text of the automatic reply."),
            ("subject of two lines", {"subject": "a\r\nBcc: x@y.test"},
             400, "The subject is too long, or has more than one line.")]:
        status, page = page_post(st, dict(form, **change))
        assert status == status_want, (case, status, page)
        assert html.escape(said, quote=False) in page, (case, page)
        assert ldap_auto_reply(st, user) == {}, case

    status, page = page_post(st, form)
    assert status == 200, page
    ar = page_auto_reply(page)
    assert ar["message"] == "Your automatic reply is saved.", ar
    assert (ar["state"], ar["on"], ar["subject"], ar["start"], ar["end"]) == \
        ("on", True, form["subject"], first.isoformat(), last.isoformat()), \
        ar
    assert ar["text"].replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert "from %s until %s" % (first, last) in ar["said"], ar
    day_after = last + datetime.timedelta(days=1)
    assert ldap_auto_reply(st, user) == {
        "porticoAutoReplyText": text,
        "porticoAutoReplySubject": form["subject"],
        "porticoAutoReplyStart": first.strftime("%Y%m%d000000Z"),
        "porticoAutoReplyEnd": day_after.strftime("%Y%m%d000000Z")}
    # signed in again, the page shows the same
    status, page = page_post(st, {"user": user, "password": pw})
    again = page_auto_reply(page)
    assert (again["state"], again["subject"], again["end"]) == \
        ("on", form["subject"], last.isoformat()), again
    assert st.log("s1f1").count("auto-reply on") >= 1

    # the reply goes out with what the page set
    sink0 = len(st.sink.messages)
    sender = "web-sender@remote.test"
    deliver(st, user, "web", message("web@remote.test", sender, user),
            sender)
    settle(st, sink0 + 1, "the reply the page set up")
    check_relayed(st, "web", user, sender, "web@remote.test",
                  form["subject"], text)

    # off: the attributes go, and the next sender gets nothing
    status, page = page_post(st, {"action": "auto-reply", "user": user,
                                  "password": pw})
    assert status == 200, page
    ar = page_auto_reply(page)
    assert (ar["message"], ar["state"], ar["on"]) == \
        ("Your automatic reply is off.", "off", False), ar
    assert ldap_auto_reply(st, user) == {}
    deliver(st, user, "web-off", message("web-off@remote.test",
                                         "off@remote.test", user),
            "off@remote.test")
    barrier = "web-barrier@remote.test"
    set_auto_reply(st, user, text="Barrier.")
    deliver(st, user, "web-barrier", message(
        "web-barrier@remote.test", barrier, user), barrier)
    settle(st, sink0 + 2, "nothing while off (web-off), then the barrier")
    assert replies_to(st, "off@remote.test") == []


# ---- portico-admin auto-reply -----------------------------------------------

@pytest.mark.daemons
def test_portico_admin_auto_reply(ar_stack, tmp_path):
    """A helpdesk sets a user's automatic reply with portico-admin
    auto-reply (the operator's directory account): the four attributes,
    `user` shows it, a message gets the reply; bad arguments change
    nothing and exit 2; --off takes it away."""
    from test_admin import FE, admin as fe_admin, password_file
    st = ar_stack
    user, _ = st.new_user("ooohelp")
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st)]
    text = tmp_path / "away.txt"
    text.write_text("Sie ist krank; Vertretung: Jörg.\n", encoding="utf-8")
    last = (datetime.datetime.now(datetime.timezone.utc).date() +
            datetime.timedelta(days=2))

    bad_text = tmp_path / "latin1.txt"
    bad_text.write_bytes("Jörg".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n")
    for case, args, said in [
            ("not UTF-8", ["--text-file", bad_text], "is not UTF-8"),
            ("empty", ["--text-file", empty], "is empty"),
            ("no such file", ["--text-file", tmp_path / "none"],
             "cannot be read"),
            ("day", ["--text-file", text, "--until", "2026-02-30"],
             "are days, YYYY-MM-DD"),
            ("over", ["--text-file", text, "--until", "2020-01-01"],
             "is over already"),
            ("order", ["--text-file", text, "--from", str(last),
                       "--until", str(last - datetime.timedelta(days=1))],
             "comes before --from"),
            ("subject", ["--text-file", text, "--subject", "a\nb"],
             "one line of UTF-8"),
            ("subject alone", ["--subject", "x"], "go with --text-file")]:
        p = fe_admin(st, FE, "auto-reply", user, *creds, *args)
        assert p.returncode == 2 and said in p.stderr, (case, p.returncode,
                                                        p.stderr)
        assert ldap_auto_reply(st, user) == {}, case
    p = fe_admin(st, FE, "auto-reply", user, *creds, "--off", "--subject",
                 "x")
    assert p.returncode != 0, p.stdout

    p = fe_admin(st, FE, "auto-reply", user, *creds, "--text-file", text,
                 "--subject", "Abwesend", "--until", str(last))
    assert p.returncode == 0, p.stderr
    day_after = (last + datetime.timedelta(days=1)).strftime(
        "%Y%m%d000000Z")
    assert p.stdout == "%s: automatic reply on until %s, subject " \
        "Abwesend\n" % (user, day_after), p.stdout
    assert ldap_auto_reply(st, user) == {
        "porticoAutoReplyText": "Sie ist krank; Vertretung: Jörg.\n",
        "porticoAutoReplySubject": "Abwesend",
        "porticoAutoReplyEnd": day_after}
    shown = fe_admin(st, FE, "user", user).stdout
    assert re.search(r"^auto-reply +on until %s$" % day_after, shown,
                     re.M), shown

    sink0 = len(st.sink.messages)
    sender = "helpdesk-case@remote.test"
    deliver(st, user, "helpdesk", message("helpdesk@remote.test", sender,
                                          user), sender)
    settle(st, sink0 + 1, "the reply portico-admin set up")
    check_relayed(st, "helpdesk", user, sender, "helpdesk@remote.test",
                  "Abwesend", "Sie ist krank; Vertretung: Jörg.")

    p = fe_admin(st, FE, "auto-reply", user, *creds, "--off")
    assert (p.returncode, p.stdout) == (
        0, "%s: automatic reply off\n" % user), (p.stdout, p.stderr)
    assert ldap_auto_reply(st, user) == {}
    assert re.search(r"^auto-reply +off$", fe_admin(st, FE, "user",
                                                     user).stdout, re.M)


@pytest.mark.daemons
def test_auto_replies_of_one_delivery_within_the_frame(ar_stack):
    """Two recipients of one delivery whose automatic replies together are
    over half of limits.link_max_frame: the first keeps its reply, the
    second gets none and the frontend says why; both get the message, and
    the link goes on (a later delivery is answered)."""
    st = ar_stack
    first, _, _ = st.new_account("ooobig1")
    second, _, _ = st.new_account("ooobig2")
    big = "Lange Abwesenheitsnotiz. " * (20000 // 25)
    assert MAX_FRAME // 2 < 2 * len(big) < MAX_TEXT * 2
    set_auto_reply(st, first, text=big)
    set_auto_reply(st, second, text=big)
    sink0 = len(st.sink.messages)
    sender = "big@remote.test"
    msg = message("big@remote.test", sender, "%s, %s" % (first, second))
    got = lmtp(st, [first, second], msg, mail_from=sender)
    assert got[first][0] == 250 and got[second][0] == 250, got
    settle(st, sink0 + 1, "one reply of the two (the frame's budget)")
    check_relayed(st, "big", first, sender, "big@remote.test",
                  "Auto: Hello", big)
    assert "rcpt=<%s> automatic reply off: the automatic replies of this " \
        "delivery's recipients are more than half of " \
        "limits.link_max_frame" % second in st.log("s1f1")
    for user in (first, second):
        assert message_ids(st, user) == ["<big@remote.test>"], user
    # alone, the second one's reply goes
    other = "big-alone@remote.test"
    deliver(st, second, "big-alone", message("big-alone@remote.test",
                                             other, second), other)
    settle(st, sink0 + 2, "the second one's reply, alone")
    check_relayed(st, "big-alone", second, other, "big-alone@remote.test",
                  "Auto: Hello", big)


# ---- the record goes with the account ----------------------------------------

def pb_varint(data, off):
    val = shift = 0
    while True:
        b = data[off]
        off += 1
        val |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return val, off


def pb_put_varint(val):
    out = bytearray()
    while True:
        b = val & 0x7f
        val >>= 7
        out.append(b | (0x80 if val else 0))
        if not val:
            return bytes(out)


def pb_fields(data):
    """[(number, wire type, value)] of a packed protobuf message (varints
    as ints, length-delimited fields as bytes)."""
    off, out = 0, []
    while off < len(data):
        key, off = pb_varint(data, off)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, off = pb_varint(data, off)
        elif wt == 2:
            n, off = pb_varint(data, off)
            val = data[off:off + n]
            off += n
        elif wt == 1:
            val, off = data[off:off + 8], off + 8
        elif wt == 5:
            val, off = data[off:off + 4], off + 4
        else:
            raise AssertionError("wire type %d" % wt)
        out.append((num, wt, val))
    assert off == len(data)
    return out


def pb_pack(fields):
    out = bytearray()
    for num, wt, val in fields:
        out += pb_put_varint(num << 3 | wt)
        if wt == 0:
            out += pb_put_varint(val)
        elif wt == 2:
            out += pb_put_varint(len(val)) + val
        else:
            out += val
    return bytes(out)


ACCOUNT_MAGIC = b"PORTICO-ACCOUNT 1\n"


def account_records(blob):
    """The packed AccountRecords of an export --account stream."""
    assert blob.startswith(ACCOUNT_MAGIC)
    off, out = len(ACCOUNT_MAGIC), []
    while off < len(blob):
        n = int.from_bytes(blob[off:off + 4], "big")
        out.append(blob[off + 4:off + 4 + n])
        off += 4 + n
    assert off == len(blob)
    return out


def account_header(blob):
    """The header's fields {number: value} (AccountRecord field 1)."""
    [(num, _, header)] = pb_fields(account_records(blob)[0])
    assert num == 1
    return {n: v for n, _, v in pb_fields(header)}


def account_with_replied(blob, replied):
    """The stream BLOB with the header's auto_replied (field 12) REPLIED,
    and an end record whose SHA-256 agrees."""
    import hashlib
    records = account_records(blob)
    [(_, _, header)] = pb_fields(records[0])
    fields = [f for f in pb_fields(header) if f[0] != 12]
    fields.append((12, 2, replied))
    records[0] = pb_pack([(1, 2, pb_pack(fields))])
    framed = [len(r).to_bytes(4, "big") + r for r in records]
    digest = hashlib.sha256(ACCOUNT_MAGIC + b"".join(framed[:-1])).digest()
    [(num, _, end)] = pb_fields(records[-1])
    assert num == 4
    end = pb_pack([f if f[0] != 3 else (3, 2, digest)
                   for f in pb_fields(end)])
    framed[-1] = (len(end) + 2).to_bytes(4, "big") + pb_pack([(4, 2, end)])
    return ACCOUNT_MAGIC + b"".join(framed)


def sender_hash(addr):
    import hashlib
    return hashlib.sha256(addr.lower().encode()).digest()[:8]


def replied_entries(pairs):
    return b"".join(h + int(t).to_bytes(8, "big") for h, t in pairs)


def auto_replied_line(st, mbox):
    p = admin(st, "s1b1", "show", mbox)
    assert p.returncode == 0, p.stderr
    m = re.search(rb"\nauto-replied    (.*)\n", p.stdout)
    assert m, p.stdout
    return m.group(1).decode()


@pytest.mark.daemons
def test_auto_replied_senders_go_with_the_account(ar_stack, tmp_path):
    """The senders an account's automatic reply answered go with it:
    show counts them, export --account carries them (a hash of each
    address and the time), import --account takes them into the new
    account, of a sender twice the later reply; a sender answered is not
    answered again by the moved account within the interval, another is.
    A record that is not a list of entries is not taken, and said so; the
    rest of the account is."""
    st = ar_stack
    src, _, src_mbox = st.new_account("ooomove")
    set_auto_reply(st, src, text="Moving house.")
    assert auto_replied_line(st, src_mbox) == "-"
    sink0 = len(st.sink.messages)
    s1, s2 = "mover.one@remote.test", "Mover.Two@remote.test"
    t0 = int(time.time())
    for i, s in enumerate((s1, s2)):
        deliver(st, src, "move-%d" % i,
                message("move-%d@remote.test" % i, s, src), s)
    settle(st, sink0 + 2, "the two senders answered")
    t1 = int(time.time())
    line = auto_replied_line(st, src_mbox)
    assert re.fullmatch(r"2 senders, the last at \d{4}-\d\d-\d\d "
                        r"\d\d:\d\d:\d\d UTC", line), line

    # export: the header's auto_replied, both senders, oldest first
    path = tmp_path / "src.account"
    p = admin(st, "s1b1", "export", src_mbox, "--account", path)
    assert p.returncode == 0, p.stderr
    blob = path.read_bytes()
    replied = account_header(blob).get(12, b"")
    assert len(replied) == 32, replied
    entries = [(replied[i:i + 8], int.from_bytes(replied[i + 8:i + 16],
                                                 "big"))
               for i in range(0, 32, 16)]
    assert [h for h, _ in entries] == [sender_hash(s1), sender_hash(s2)]
    assert all(t0 <= t <= t1 for _, t in entries), (t0, entries, t1)
    assert entries[0][1] <= entries[1][1]

    # import: the same record in the new account
    _, _, copy_mbox = st.new_account("ooocopy")
    p = admin(st, "s1b1", "import", copy_mbox, "--account", path)
    assert p.returncode == 0, p.stderr
    assert auto_replied_line(st, copy_mbox) == line

    # a sender twice (the later reply is kept) and one more, replied to
    # just now: the moved account answers neither, and a new sender
    s3, s4 = "mover.three@remote.test", "mover.four@remote.test"
    # (the entries are of now: the import and the deliveries must come
    # within INTERVAL of it; on a host too slow for that, again)
    for attempt in range(3):
        moved, _, moved_mbox = st.new_account("ooomoved")
        set_auto_reply(st, moved, text="Moved and away.")
        path2 = tmp_path / ("fresh%d.account" % attempt)
        now = int(time.time())
        path2.write_bytes(account_with_replied(blob, replied_entries(
            [(sender_hash(s1), now - 1000), (sender_hash(s3), now),
             (sender_hash(s1), now)])))
        p = admin(st, "s1b1", "import", moved_mbox, "--account", path2)
        assert p.returncode == 0, p.stderr
        sink1 = len(st.sink.messages)
        for i, s in enumerate((s1.upper(), s3, s4)):
            deliver(st, moved, "moved-%d" % i,
                    message("moved-%d@remote.test" % i, s, moved), s)
        if time.time() - now < INTERVAL - 0.5:
            break
        wait_for(lambda: queue_empty(st), timeout=30, interval=0.1,
                 what="the queue to empty")
    else:
        raise AssertionError("too slow to test "
                             "transport.auto_reply_interval")
    settle(st, sink1 + 1, "only the new sender answered")
    assert st.sink.messages[-1][1] == [s4], st.sink.messages[sink1:]
    # the two imported (one sender twice) and the new one
    assert auto_replied_line(st, moved_mbox).startswith("3 senders, ")

    # a record that is not a list of entries: not taken, said so
    bad, _, bad_mbox = st.new_account("ooobad")
    path3 = tmp_path / "bad.account"
    path3.write_bytes(account_with_replied(blob, b"\x01" * 20))
    p = admin(st, "s1b1", "import", bad_mbox, "--account", path3)
    assert p.returncode == 0, p.stderr
    assert b"the senders answered by the automatic reply are not a list " \
        b"of entries; not taken" in p.stderr, p.stderr
    assert p.stdout.startswith(b"imported 2 messages in "), p.stdout
    assert auto_replied_line(st, bad_mbox) == "-"
    for mbox in (src_mbox, copy_mbox, moved_mbox, bad_mbox):
        p = admin(st, "s1b1", "check", mbox)
        assert p.returncode == 0, (mbox, p.stdout + p.stderr)
