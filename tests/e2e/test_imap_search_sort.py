"""SEARCH on decoded text, SORT (RFC 5256, RFC 5957) and THREAD
(ORDEREDSUBJECT, REFERENCES) through the frontend, with exact answers.

Messages are imported as an mbox so that each has a chosen INTERNALDATE
(the date of its "From " line)."""

import base64
import itertools
import re

import pytest

pytestmark = pytest.mark.daemons

_tags = itertools.count(1)


def raw(c, command):
    """Send COMMAND (bytes, literals written {n+}) on imaplib connection C;
    return (untagged lines, tagged line) without CRLF."""
    tag = b"S%d" % next(_tags)
    c.send(tag + b" " + command + b"\r\n")
    lines = []
    while True:
        line = c.readline()
        assert line, "connection closed after %r" % lines
        line = line.rstrip(b"\r\n")
        if line.startswith(tag + b" "):
            return lines, line[len(tag) + 1:]
        lines.append(line)


def lit(s):
    """A non-synchronizing literal of S (str, UTF-8)."""
    b = s.encode() if isinstance(s, str) else s
    return b"{%d+}\r\n" % len(b) + b


def ok(c, command, prefix):
    """The untagged PREFIX line of COMMAND, after checking it ended OK."""
    untagged, tagged = raw(c, command)
    assert tagged.startswith(b"OK"), (command, untagged, tagged)
    got = [u for u in untagged if u.startswith(prefix)]
    assert len(got) == 1, (command, untagged)
    return got[0].decode()


def search(c, criteria):
    return ok(c, b"SEARCH CHARSET UTF-8 " + criteria, b"* SEARCH")


def mk(headers, body="", ctype=None):
    """A message (bytes, LF line ends) from (name, value) pairs."""
    out = "".join("%s: %s\n" % (n, v) for n, v in headers)
    if ctype:
        out += "MIME-Version: 1.0\nContent-Type: %s\n" % ctype
    b = body.encode() if isinstance(body, str) else body
    return out.encode() + b"\n" + b


MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def mbox(msgs):
    """An mbox of (internaldate (y, m, d, hh, mm), message) pairs."""
    out = b""
    for (y, mo, d, hh, mi), m in msgs:
        out += (b"From sender@example.org Mon %s %2d %02d:%02d:00 %d\n" % (
            MONTHS[mo - 1].encode(), d, hh, mi, y)) + m
        if not m.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
    return out


def mailbox(stack, msgs, user=None):
    """A fresh user whose INBOX holds MSGS; returns a connection with INBOX
    selected."""
    user = user or stack.new_user("srt")
    stack.import_message(user[0], mbox(msgs))
    c = stack.imap(*user)
    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) == len(msgs), data
    return c


D = (2024, 1, 1, 0, 0)

# -- SEARCH on decoded text ----------------------------------------------------

B64_UTF8 = base64.b64encode(
    "Grüße aus München, bis bald am Strand.\n".encode()).decode()

DECODED = [
    (D, mk([("From", "=?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>"),
            ("To", '"Ann Smith" <ann@example.org>'),
            ("Subject", "=?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?="),
            ("Date", "Mon, 1 Jan 2024 23:30:00 -0500"),
            ("Content-Transfer-Encoding", "base64")],
           B64_UTF8 + "\n", "text/plain; charset=utf-8")),
    (D, mk([("From", "Bob <bob@example.net>"),
            ("Subject", "Quarterly report"),
            ("X-Custom", "yes"),
            ("Date", "Tue, 2 Jan 2024 08:00:00 +0000")],
           "--b1\n"
           "Content-Type: text/plain; charset=iso-8859-1\n"
           "Content-Transfer-Encoding: quoted-printable\n\n"
           "Un caf=E9 cr=E8me, s'il vous pla=EEt, et une tr=\n"
           "=E8s longue ligne.\n"
           "--b1\n"
           "Content-Type: application/octet-stream\n"
           "Content-Transfer-Encoding: base64\n\n"
           + base64.b64encode(b"secretword inside a binary").decode() +
           "\n--b1--\n", 'multipart/mixed; boundary="b1"')),
    (D, mk([("From", "ivan@example.ru"),
            ("Cc", "=?UTF-8?Q?=CE=9A=CF=8E=CF=83=CF=84=CE=B1=CF=82?= "
                   "<kostas@example.gr>"),
            ("Subject", "=?KOI8-R?B?8NLJ18XUIM3J0g==?=")],
           "ПРОВЕРКА связи\n".encode("windows-1251"),
           "text/plain; charset=windows-1251")),
    (D, mk([("From", "carol@example.com"), ("Subject", "fwd")],
           "--b2\n"
           "Content-Type: text/plain\n\nsee attached\n"
           "--b2\n"
           "Content-Type: message/rfc822\n\n"
           "From: dave@example.com\n"
           "Subject: Nested hello\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: quoted-printable\n\n"
           "Gr=C3=BC=C3=9Fe aus Z=C3=BCrich\n"
           "--b2--\n", 'multipart/mixed; boundary="b2"')),
]


@pytest.fixture(scope="module")
def decoded(stack):
    c = mailbox(stack, DECODED)
    yield c
    c.logout()


def L(s):
    """A search needle, sent as a literal."""
    return ("lit", s)


@pytest.mark.parametrize("criteria,expect", [
    # header fields: encoded words decoded, case folded beyond ASCII
    (["SUBJECT", L("été")], "1"),
    (["SUBJECT", L("ÉTÉ À paris")], "1"),
    (["SUBJECT", L("привет")], "3"),
    (["SUBJECT", L("ПРИВЕТ МИР")], "3"),
    (["SUBJECT", "nested"], ""),
    # address fields: display names and addresses
    (["FROM", L("jörg")], "1"),
    (["FROM", L("MÜLLER")], "1"),
    (["FROM", "joerg@EXAMPLE.org"], "1"),
    (["TO", L("ann smith")], "1"),
    (["TO", "ann@example.org"], "1"),
    (["CC", L("κώστας")], "3"),
    (["CC", "kostas@example.gr"], "3"),
    (["BCC", "kostas"], ""),
    (["HEADER", "X-Custom", '""'], "2"),
    (["HEADER", "Subject", L("été")], "1"),
    # text parts: base64, quoted-printable (soft breaks), charsets
    (["BODY", L("münchen")], "1"),
    (["BODY", L("GRÜSSE")], ""),
    (["BODY", L("café crème")], "2"),
    (["BODY", L("très longue")], "2"),
    (["BODY", L("проверка СВЯЗИ")], "3"),
    (["BODY", L("zürich")], "4"),
    # the header of a nested message is body text
    (["BODY", L("nested hello")], "4"),
    # parts that are not text are not searched
    (["BODY", "secretword"], ""),
    (["TEXT", "secretword"], ""),
    # TEXT: the header as written and decoded, and the body
    (["TEXT", L("=?UTF-8?B?w4l0")], "1"),
    (["TEXT", L("été")], "1"),
    (["TEXT", "quarterly"], "2"),
    (["TEXT", L("zürich")], "4"),
    (["BODY", "quarterly"], ""),
    (["OR", "BODY", L("münchen"), "CC", L("Κώστας")], "1 3"),
    (["NOT", "TEXT", L("ü")], "2 3"),
    # the Date field as written, time and zone disregarded
    (["SENTON", "1-Jan-2024"], "1"),
    (["SENTBEFORE", "2-Jan-2024"], "1"),
    (["SENTSINCE", "2-Jan-2024"], "2"),
])
def test_search_decoded(decoded, criteria, expect):
    line = b" ".join(lit(a[1]) if isinstance(a, tuple) else a.encode()
                     for a in criteria)
    got = search(decoded, line)
    assert got == ("* SEARCH " + expect).rstrip(), criteria


def test_i18nlevel_1_every_script(stack):
    """I18NLEVEL=1 (RFC 5255): i;unicode-casemap (RFC 5051) in every
    script, outside the BMP too, with compatibility forms: SEARCH matches
    across case and forms, SORT orders as folded."""
    msgs = [
        (D, mk([("From", "a@example.am"),
                ("Subject", "=?UTF-8?B?" + base64.b64encode(
                    "Բարի ՀԱՅ օր".encode()).decode() + "?=")],
               "Ꭰ Cherokee, 𐐨𐐯 Deseret, Ⰰ Glagolitic\n",
               "text/plain; charset=utf-8")),
        (D, mk([("From", "b@example.jp"),
                ("Subject", "=?UTF-8?B?" + base64.b64encode(
                    "ｆｕｌｌ width ﬁle".encode()).decode() + "?=")],
               "plain text\n", "text/plain; charset=utf-8")),
        (D, mk([("From", "c@example.org"), ("Subject", "zeta")],
               "nothing here\n")),
    ]
    c = mailbox(stack, msgs)
    typ, data = c.capability()
    assert "I18NLEVEL=1" in data[0].decode().split(), data
    for needle, expect in (("հայ", "1"), ("ԲԱՐԻ", "1"),
                           ("FULL WIDTH FILE", "2"), ("Ｆile", "2")):
        assert search(c, b"SUBJECT " + lit(needle)) == \
            "* SEARCH " + expect, needle
    for needle, expect in (("ꭰ cherokee", "1"), ("𐐀𐐇", "1"),
                           ("ⰰ glagolitic", "1"), ("ꭰ𐐀", "")):
        assert search(c, b"BODY " + lit(needle)) == \
            ("* SEARCH " + expect).rstrip(), needle
    # SORT (SUBJECT) compares the folded subjects: FULL < ZETA < Բ
    assert ok(c, b"SORT (SUBJECT) UTF-8 ALL", b"* SORT") == "* SORT 2 3 1"
    c.logout()

def test_search_utf8_accept_without_charset(stack):
    c = mailbox(stack, DECODED[:2])
    _, tagged = raw(c, b"ENABLE UTF8=ACCEPT")
    assert tagged.startswith(b"OK")
    assert ok(c, 'SEARCH SUBJECT "été à"'.encode(), b"* SEARCH") == \
        "* SEARCH 1"
    assert ok(c, 'SEARCH BODY "CAFÉ"'.encode(), b"* SEARCH") == "* SEARCH 2"
    c.logout()


def test_search_charsets(decoded):
    assert ok(decoded, b"SEARCH CHARSET US-ASCII FROM bob", b"* SEARCH") == \
        "* SEARCH 2"
    _, tagged = raw(decoded, b"SEARCH CHARSET KOI8-R FROM bob")
    assert tagged == b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
    # ESEARCH still works on decoded keys
    assert ok(decoded, b"SEARCH RETURN (COUNT MIN) CHARSET UTF-8 BODY "
              + lit("ü"), b"* ESEARCH").endswith("MIN 1 COUNT 2")


# -- the work bound ----------------------------------------------------------

@pytest.fixture(scope="module")
def small(stack_factory):
    return stack_factory(name="small", settings=[
        "limits.search_max_bytes=4k"])


def test_search_budget(small):
    big = "x" * 8000 + " needle\n"
    c = mailbox(small, [
        (D, mk([("From", "a@example.org"), ("Subject", "one")], "short\n")),
        (D, mk([("From", "b@example.org"), ("Subject", "two")], big)),
    ])
    # no message text read: always fine
    assert ok(c, b"SEARCH LARGER 1000", b"* SEARCH") == "* SEARCH 2"
    assert ok(c, b"SEARCH FROM b@", b"* SEARCH") == "* SEARCH 2"
    for cmd in (b"SEARCH BODY needle", b"UID SEARCH TEXT needle",
                b"SEARCH OR FLAGGED BODY needle"):
        _, tagged = raw(c, cmd)
        assert tagged.startswith(b"NO [LIMIT] "), tagged
    # the session goes on
    assert ok(c, b"SEARCH 1 BODY short", b"* SEARCH") == "* SEARCH 1"
    c.logout()


def test_sort_thread_budget(small):
    # 4 envelopes of 1500 bytes and more
    c = mailbox(small, [(D, mk([("Subject", "s%d " % i + "y" * 1500)],
                               "b\n")) for i in range(4)])
    for cmd in (b"SORT (SUBJECT) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL",
                b"THREAD ORDEREDSUBJECT UTF-8 ALL"):
        _, tagged = raw(c, cmd)
        assert tagged.startswith(b"NO [LIMIT] "), tagged
    assert ok(c, b"SORT (REVERSE ARRIVAL SIZE) UTF-8 ALL",
              b"* SORT") == "* SORT 1 2 3 4"
    c.logout()


# -- SORT -----------------------------------------------------------------------

def pad(n):
    return ("p" * 70 + "\n") * (n // 71)


SORTMSGS = [
    # 1
    ((2024, 1, 5, 0, 0),
     mk([("Date", "Tue, 02 Jan 2024 10:00:00 +0000"),
         ("From", '"Zed" <carol@example.org>'), ("To", "bob@example.org"),
         ("Subject", "Re: Beta")], pad(3000))),
    # 2: 09:00 -0500 is 14:00 UTC, after 1 and 4
    ((2024, 1, 4, 0, 0),
     mk([("Date", "Tue, 02 Jan 2024 09:00:00 -0500"),
         ("From", "Ann <dave@example.org>"),
         ("To", "=?UTF-8?Q?=C3=89mile?= <alice@example.org>"),
         ("Subject", "alpha")], pad(1000))),
    # 3: no Date: INTERNALDATE
    ((2024, 1, 1, 0, 0),
     mk([("From", "=?UTF-8?Q?=C3=89lodie?= <eve@example.org>"),
         ("Subject", "[list] Fwd: gamma (fwd)")], pad(5000))),
    # 4
    ((2024, 1, 6, 0, 0),
     mk([("Date", "Tue, 02 Jan 2024 10:00:00 +0000"),
         ("From", "bob@example.org"), ("To", "x@example.org"),
         ("Cc", "zoe@example.org"), ("Subject", "BETA")], pad(2000))),
    # 5: unreadable Date: INTERNALDATE
    ((2023, 12, 31, 0, 0),
     mk([("Date", "yesterday"), ("X-Note", "no From, To or Subject")],
        pad(4000))),
]


@pytest.fixture(scope="module")
def sortbox(stack):
    user = stack.new_user("sort")
    # a first message, expunged, so that UIDs differ from numbers
    stack.import_message(user[0], mbox([(D, mk([("Subject", "gone")]))]))
    c = stack.imap(*user)
    c.select("INBOX")
    c.store("1", "+FLAGS", "\\Deleted")
    c.expunge()
    c.logout()
    c = mailbox(stack, SORTMSGS, user=user)
    yield c
    c.logout()


@pytest.mark.parametrize("criteria,expect", [
    ("SUBJECT", "5 2 1 4 3"),
    ("REVERSE SUBJECT", "3 1 4 2 5"),
    ("DATE", "5 3 1 4 2"),
    ("REVERSE DATE", "2 1 4 3 5"),
    ("ARRIVAL", "5 3 2 1 4"),
    ("FROM", "5 4 1 2 3"),
    ("DISPLAYFROM", "5 2 4 3 1"),
    ("TO", "3 5 2 1 4"),
    ("DISPLAYTO", "3 5 1 2 4"),
    ("CC", "1 2 3 5 4"),
    ("SIZE", "2 4 1 5 3"),
    ("REVERSE SIZE", "3 5 1 4 2"),
    ("SUBJECT REVERSE ARRIVAL", "5 2 4 1 3"),
    ("SUBJECT DATE", "5 2 1 4 3"),
])
def test_sort(sortbox, criteria, expect):
    got = ok(sortbox, b"SORT (%s) UTF-8 ALL" % criteria.encode(), b"* SORT")
    assert got == "* SORT " + expect
    # UID SORT: the same order, in UIDs (one more than the numbers)
    got = ok(sortbox, b"UID SORT (%s) US-ASCII ALL" % criteria.encode(),
             b"* SORT")
    assert got == "* SORT " + " ".join(str(int(n) + 1)
                                       for n in expect.split())


def test_sort_with_criteria_and_errors(sortbox):
    assert ok(sortbox, b"SORT (SUBJECT) UTF-8 NOT FROM bob", b"* SORT") == \
        "* SORT 5 2 1 3"
    assert ok(sortbox, b"SORT (SUBJECT) UTF-8 FROM nobody", b"* SORT") == \
        "* SORT"
    assert ok(sortbox, b"SORT (DISPLAYFROM) UTF-8 FROM " + lit("élodie"),
              b"* SORT") == "* SORT 3"
    imaplib_typ, data = sortbox.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert imaplib_typ == "OK" and data == [b"2 1 4 3 5"]
    for bad in (b"SORT (FOO) UTF-8 ALL", b"SORT (REVERSE) UTF-8 ALL",
                b"SORT SUBJECT UTF-8 ALL", b"SORT () UTF-8 ALL",
                b"SORT (SUBJECT) UTF-8", b"SORT (SUBJECT) UTF-8 BOGUS"):
        _, tagged = raw(sortbox, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)
    _, tagged = raw(sortbox, b"SORT (SUBJECT) ISO-8859-1 ALL")
    assert tagged.startswith(b"NO [BADCHARSET")


def test_esort(sortbox):
    """ESORT (RFC 5267): SORT RETURN (...) answers with an ESEARCH in the
    sort's order: MIN the sort's first message, MAX its last, ALL with
    ranges only where the order ascends by one, COUNT, MODSEQ; SAVE makes
    the matches $ (RFC 5182), MAX alone the last of the sort."""
    def esort(command):
        untagged, tagged = raw(sortbox, command)
        assert tagged.startswith(b"OK"), (command, untagged, tagged)
        assert len(untagged) == 1, untagged
        m = re.fullmatch(rb'\* ESEARCH \(TAG "S\d+"\)(.*)', untagged[0])
        assert m, untagged
        return m.group(1).decode()

    # (CC): 1 2 3 5 4
    assert esort(b"SORT RETURN (MIN MAX COUNT ALL) (CC) UTF-8 ALL") == \
        " MIN 1 MAX 4 COUNT 5 ALL 1:3,5,4"
    # UIDs are the numbers plus one
    assert esort(b"UID SORT RETURN (ALL) (CC) UTF-8 ALL") == \
        " UID ALL 2:4,6,5"
    # (REVERSE DATE): 2 1 4 3 5; RETURN () is ALL
    assert esort(b"SORT RETURN () (REVERSE DATE) UTF-8 ALL") == \
        " ALL 2,1,4,3,5"
    assert esort(b"SORT RETURN (MIN) (REVERSE DATE) UTF-8 NOT 2") == \
        " MIN 1"
    # nothing matches: MIN, MAX and ALL say nothing, COUNT 0
    assert esort(b"SORT RETURN (MIN MAX ALL COUNT) (SUBJECT) UTF-8 "
                 b"FROM nobody") == " COUNT 0"
    # SAVE alone answers nothing but the tagged OK; $ is a set
    untagged, tagged = raw(sortbox, b"SORT RETURN (SAVE) (REVERSE ARRIVAL) "
                           b"UTF-8 SUBJECT beta")
    assert tagged.startswith(b"OK") and untagged == [], untagged
    assert search(sortbox, b"$") == "* SEARCH 1 4"
    # with MAX alone, $ is the last of the sort: (REVERSE ARRIVAL) is
    # 4 1 2 3 5
    assert esort(b"SORT RETURN (SAVE MAX) (REVERSE ARRIVAL) UTF-8 ALL") == \
        " MAX 5"
    assert search(sortbox, b"$") == "* SEARCH 5"
    # CONDSTORE: MODSEQ of the matches
    untagged, _ = raw(sortbox, b"FETCH 1:* (MODSEQ)")
    top = max(int(u.decode().split("MODSEQ (")[1].rstrip(")"))
              for u in untagged)
    assert esort(b"SORT RETURN (COUNT) (SUBJECT) UTF-8 MODSEQ 1") == \
        " COUNT 5 MODSEQ %d" % top
    for bad in (b"SORT RETURN (BOGUS) (SUBJECT) UTF-8 ALL",
                b"SORT RETURN ALL (SUBJECT) UTF-8 ALL",
                b"SORT RETURN (ALL) (SUBJECT) UTF-8",
                b"SORT RETURN (ALL)"):
        _, tagged = raw(sortbox, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)


def test_capabilities(stack):
    c = stack.imap(*stack.new_user("caps"))
    typ, data = c.capability()
    caps = data[0].decode().split()
    for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES"):
        assert caps.count(cap) == 1, cap
    c.logout()


# -- base subjects, through ORDEREDSUBJECT ---------------------------------------

def test_base_subject(stack):
    subjects = [
        "hello",                         # 1
        "Re: [list] Fwd: hello (fwd)",   # 2
        "[fwd: Re: hello]",              # 3
        "RE:   hello  ",                 # 4
        "Re[2]: hello",                  # 5
        "[blob]",                        # 6: only a blob: kept
        "re: [blob]",                    # 7
        "Fw: Hello\tWorld",              # 8
        "hello world",                   # 9
        "=?UTF-8?Q?R=C3=A9sum=C3=A9?=",  # 10
        "Re: RÉSUMÉ",                    # 11: encoded in UTF-8 below
        "Re: Re:",                       # 12: empty base subject
        "",                              # 13
        "[a] [b]",                       # 14: the last blob is kept
        "[b]",                           # 15
    ]
    msgs = []
    for i, s in enumerate(subjects):
        h = [("Date", "Mon, 01 Jan 2024 10:%02d:00 +0000" % i)]
        m = mk(h, "b\n")
        m = ("Subject: %s\n" % s).encode() + m
        msgs.append((D, m))
    c = mailbox(stack, msgs)
    got = ok(c, b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"* THREAD")
    assert got == ("* THREAD (1 (2)(3)(4)(5))(6 7)(8 9)(10 11)(12 13)"
                   "(14 15)")
    c.logout()


# -- THREAD -------------------------------------------------------------------------

def tmsg(mid, subject, day, hour, refs=None, irt=None):
    h = [("Date", "Mon, %02d Jan 2024 %02d:00:00 +0000" % (day, hour)),
         ("From", "x@example.org"), ("Subject", subject)]
    if mid:
        h.append(("Message-ID", mid))
    if refs:
        h.append(("References", refs))
    if irt:
        h.append(("In-Reply-To", irt))
    return (D, mk(h, "b\n"))


THREADMSGS = [
    tmsg("<1@x>", "A", 1, 10),                                    # 1
    tmsg("<2@x>", "Re: A", 1, 12, refs="<1@x>"),                  # 2
    tmsg("<3@x>", "Re: A", 1, 13, refs="<1@x>\n <2@x>"),          # 3
    tmsg("<4@x>", "Re: A", 1, 11, irt="<1@x>"),                   # 4
    tmsg("<5@x>", "B", 2, 0, refs="<missing@x>"),                 # 5
    tmsg("<6@x>", "Re: B", 2, 1, refs="(c) <missing@x>"),         # 6
    tmsg("<7@x>", "C", 3, 0),                                     # 7
    tmsg("<8@x>", "Re: C", 3, 1),                                 # 8
    tmsg('<"quoted"@x>', "F", 4, 0),                              # 9
    tmsg("<10@x>", "Re: F", 4, 1, refs="<quoted@x>"),             # 10
    tmsg("<1@x>", "D", 5, 0),                                     # 11
    tmsg("<12@x>", "E", 6, 1, refs="<13@x>"),                     # 12
    tmsg("<13@x>", "Re: E", 6, 0, refs="<12@x>"),                 # 13
    tmsg("<14@x>", "Re: B", 2, 2),                                # 14
    tmsg("<15@x>", "G", 7, 0),                                    # 15
    tmsg(None, "G", 7, 1),                                        # 16
]


@pytest.fixture(scope="module")
def threadbox(stack):
    c = mailbox(stack, THREADMSGS)
    yield c
    c.logout()


def test_thread_references(threadbox):
    got = ok(threadbox, b"THREAD REFERENCES UTF-8 ALL", b"* THREAD")
    assert got == ("* THREAD (1 (4)(2 3))((5)(6)(14))(7 8)(9 10)(11)(13 12)"
                   "((15)(16))")
    typ, data = threadbox.uid("THREAD", "REFERENCES", "UTF-8", "1:4")
    assert typ == "OK" and data == [b"(1 (4)(2 3))"]
    # without message 1, a dummy holds its two replies
    got = ok(threadbox, b"THREAD REFERENCES UTF-8 2:4", b"* THREAD")
    assert got == "* THREAD ((4)(2 3))"
    got = ok(threadbox, b"THREAD REFERENCES UTF-8 SUBJECT nothing",
             b"* THREAD")
    assert got == "* THREAD"


def test_thread_orderedsubject(threadbox):
    got = ok(threadbox, b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"* THREAD")
    assert got == ("* THREAD (1 (4)(2)(3))(5 (6)(14))(7 8)(9 10)(11)"
                   "(13 12)(15 16)")
    got = ok(threadbox, b"THREAD ORDEREDSUBJECT US-ASCII 5:8", b"* THREAD")
    assert got == "* THREAD (5 6)(7 8)"
    for bad in (b"THREAD FOO UTF-8 ALL", b"THREAD REFERENCES UTF-8",
                b"THREAD (REFERENCES) UTF-8 ALL"):
        _, tagged = raw(threadbox, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)


def test_uid_thread_numbers(stack):
    user = stack.new_user("uthr")
    stack.import_message(user[0], mbox([tmsg("<0@x>", "zero", 1, 0)]))
    c = stack.imap(*user)
    c.select("INBOX")
    c.store("1", "+FLAGS", "\\Deleted")
    c.expunge()
    c.logout()
    c = mailbox(stack, THREADMSGS[:4], user=user)
    typ, data = c.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"(2 (5)(3 4))"]
    typ, data = c.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"(2 (5)(3)(4))"]
    c.logout()


def test_thread_long_chains(stack):
    # 1500 messages, each a reply to the one before: no recursion limit
    n = 1500
    msgs = [tmsg("<c%d@x>" % i, "chain", 1 + i // 600, (i // 25) % 24,
                 refs="<c%d@x>" % (i - 1) if i else None)
            for i in range(n)]
    c = mailbox(stack, msgs)
    got = ok(c, b"THREAD REFERENCES UTF-8 ALL", b"* THREAD")
    assert got == "* THREAD (" + " ".join(str(i + 1) for i in range(n)) + ")"
    c.logout()
    # a comb: odd messages chained, each even one a leaf beside the next
    # odd one, so the answer nests n / 2 levels deep
    msgs = []
    for i in range(n):
        k = i + 1
        if k == 1:
            msgs.append(tmsg("<m1@x>", "comb", 1, 0))
        elif k % 2 == 0:
            msgs.append(tmsg("<m%d@x>" % k, "Re: comb", 1 + k // 600, 1,
                             refs="<m%d@x>" % (k - 1)))
        else:
            msgs.append(tmsg("<m%d@x>" % k, "Re: comb", 1 + k // 600, 2,
                             refs="<m%d@x>" % (k - 2)))
    c = mailbox(stack, msgs)
    got = ok(c, b"THREAD REFERENCES UTF-8 ALL", b"* THREAD")
    # odd k (not the last) has children k+1 (earlier) and k+2
    expect, close = "", 0
    k = 1
    while True:
        kids = [x for x in (k + 1, k + 2) if x <= n]
        if len(kids) == 2:
            expect += "%d (%d)(" % (k, k + 1)
            close += 1
            k += 2
        elif len(kids) == 1:
            expect += "%d %d" % (k, k + 1)
            break
        else:
            expect += "%d" % k
            break
    assert got == "* THREAD (" + expect + ")" * close + ")"
    c.logout()


def test_thread_dummies_merge_by_subject(stack):
    c = mailbox(stack, [
        tmsg("<t1@x>", "Topic", 2, 0, refs="<m1@x>"),
        tmsg("<t2@x>", "Other", 2, 1, refs="<m1@x>"),
        tmsg("<t3@x>", "Re: Topic", 3, 0, refs="<m2@x>"),
        tmsg("<t4@x>", "Zzz", 3, 1, refs="<m2@x>"),
        tmsg("<t5@x>", "Zzz", 4, 0),
    ])
    # two dummies with the thread subject "Topic": the children of the
    # later one join the earlier one's
    got = ok(c, b"THREAD REFERENCES UTF-8 ALL", b"* THREAD")
    assert got == "* THREAD ((1)(2)(3)(4))(5)"
    c.logout()


def test_sort_thread_with_saved_result_and_modseq(sortbox):
    _, tagged = raw(sortbox, b"SEARCH RETURN (SAVE) SUBJECT beta")
    assert tagged.startswith(b"OK")
    assert ok(sortbox, b"SORT (REVERSE ARRIVAL) UTF-8 $", b"* SORT") == \
        "* SORT 4 1"
    assert ok(sortbox, b"THREAD ORDEREDSUBJECT UTF-8 $", b"* THREAD") == \
        "* THREAD (1 4)"
    # CONDSTORE: the highest MODSEQ of the matches (RFC 7162 3.1.5)
    _, tagged = raw(sortbox, b"STORE 2 +FLAGS (\\Flagged)")
    assert tagged.startswith(b"OK")
    untagged, tagged = raw(sortbox, b"FETCH 2 (MODSEQ)")
    modseq = untagged[0].decode().split("MODSEQ (")[1].rstrip(")")
    assert ok(sortbox, b"SORT (SUBJECT) UTF-8 MODSEQ 1", b"* SORT") == \
        "* SORT 5 2 1 4 3 (MODSEQ %s)" % modseq
