"""The backend against a frontend that says wrong things on the link:
parked sessions taken up with states no backend wrote (Open.resume), a
stream opened twice, a protocol it does not know.  Each is refused on
its stream with a clear code, or the session ends with a clear BYE; the
link, the backend and the account's mail stay as they were.

The peer is this file's own: a TLS client with the stack's frontend link
certificate that speaks the link's frames (proto/link.proto), encoded
and decoded here with the protobuf wire format (varints and
length-delimited fields).  A session it parks and takes up as the real
frontend would is the control that the peer is right.

A stack of its own.
"""

import os
import re
import socket
import ssl
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import CMD_TIMEOUT

pytestmark = pytest.mark.daemons


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="linkpeer",
                         settings=["http.metrics_networks=127.0.0.1/32"])


# ---- the protobuf wire format ------------------------------------------------

def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def vfield(num, value):
    return varint(num << 3) + varint(value)


def bfield(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def decode(data):
    """{field number: [values]}: ints for varints, bytes for the rest."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise AssertionError("wire type %d" % wire)
        out.setdefault(num, []).append(value)
    return out


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# Frame's fields (proto/link.proto)
HELLO, OPEN, OPENED, REFUSED, DATA, CREDIT, CLOSE = 2, 3, 4, 5, 6, 7, 8
PARK, PARKED = 17, 19
NAMES = {2: "hello", 3: "open", 4: "opened", 5: "refused", 6: "data",
         7: "credit", 8: "close", 13: "drain", 14: "ping", 15: "pong",
         16: "forget", 17: "park", 18: "watch", 19: "parked"}


MODSEQ = 1


def imap_park(selected=True, idle_tag="t1", mbox_name="INBOX",
              uidvalidity=0, modseq=None, uidnext=1, runs=(), between=False,
              mbox_id=0, version=1):
    """An ImapPark (what Park.state carries); modseq: MODSEQ, that of the
    last account()."""
    if modseq is None:
        modseq = MODSEQ
    m = vfield(1, version) + vfield(2, int(selected))
    if idle_tag:
        m += bfield(4, idle_tag)
    if mbox_id:
        m += vfield(5, mbox_id)
    if selected:
        m += bfield(6, mbox_name) + vfield(7, uidvalidity) + \
            vfield(8, modseq) + vfield(9, uidnext)
    if runs:
        m += bfield(11, b"".join(varint(v) for v in runs))
    if between:
        m += vfield(15, 1)
    return m


class Peer:
    """A link to the stack's backend as a frontend."""

    def __init__(self, st, port=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(st.dir / "ca" / "ca.pem"))
        ctx.check_hostname = False
        ctx.load_cert_chain(str(st.dir / "certs" / "s1f1-link.pem"),
                            str(st.dir / "certs" / "s1f1-link.key"))
        raw = socket.create_connection(
            (st.host, port or int(st.SITE1_BE1_LINK_PORT)), timeout=15)
        self.s = ctx.wrap_socket(raw)
        self.buf = b""
        self.send(0, HELLO, bfield(1, "frontend") + bfield(2, "peer") +
                  bfield(3, "portico-link/5") + vfield(4, 1))
        while self.frame()[1] != "hello":
            pass   # (the kicks the backend remembers come first)

    def send(self, stream, kind, body):
        f = vfield(1, stream) + bfield(kind, body)
        self.s.sendall(struct.pack(">I", len(f)) + f)

    def frame(self):
        """(stream, kind, {fields of the body})."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    f = decode(self.buf[4:4 + n])
                    self.buf = self.buf[4 + n:]
                    kind = next(k for k in f if k != 1)
                    return (f.get(1, [0])[0], NAMES.get(kind, kind),
                            decode(f[kind][0]))
            data = self.s.recv(65536)
            assert data, "the backend closed the link"
            self.buf += data

    def on(self, stream):
        """The next frame of stream (pings and others' frames skipped)."""
        while True:
            got, kind, body = self.frame()
            if got == stream:
                return kind, body

    def open(self, stream, user, mailbox_id, resume=b"", auth_age_ms=0):
        self.send(stream, OPEN,
                  vfield(1, 1) + bfield(2, user) + bfield(3, mailbox_id) +
                  bfield(4, "127.0.0.1:1") + bfield(7, "peer%d" % stream) +
                  bfield(8, "L%d" % stream) + vfield(9, 1 << 20) +
                  (bfield(17, resume) if resume else b"") +
                  (vfield(18, auth_age_ms) if auth_age_ms else b""))
        return self.on(stream)

    def data(self, stream, text):
        self.send(stream, DATA, bfield(1, text))

    def text(self, stream, until):
        """Data of stream up to a line that starts with until."""
        out = b""
        while not re.search(rb"(^|\n)" + re.escape(until) + rb"[^\n]*\n",
                            out):
            kind, body = self.on(stream)
            if kind == "close":
                return out, body[1][0].decode() if 1 in body else ""
            assert kind in ("data", "credit"), (kind, body, out)
            out += body.get(1, [b""])[0] if kind == "data" else b""
        return out, None

    def close(self):
        self.s.close()


def account(st, prefix):
    """A user with three messages, the third flagged: (login, password,
    mailbox id, UIDVALIDITY, UIDNEXT, the INBOX's id in the store); its
    HIGHESTMODSEQ goes to MODSEQ, what the states below show."""
    user, pw, mbox = st.new_account(prefix)
    c = st.imap(user, pw)
    for i in range(3):
        c.append("INBOX", "(\\Flagged)" if i == 2 else None, None,
                 b"Subject: %d\r\n\r\nx\r\n" % i)
    typ, data = c.status("INBOX",
                         "(UIDVALIDITY UIDNEXT HIGHESTMODSEQ MAILBOXID)")
    c.logout()
    m = re.search(rb"UIDVALIDITY (\d+) UIDNEXT (\d+) HIGHESTMODSEQ (\d+) "
                  rb"MAILBOXID \(F([0-9a-f]+)", data[0])
    assert m, data
    global MODSEQ
    MODSEQ = int(m.group(3))
    return (user, pw, mbox, int(m.group(1)), int(m.group(2)),
            int(m.group(4), 16))


def refused(st, code):
    """portico_backend_streams_refused_total{code=CODE} of the backend."""
    url = "http://%s:%s/metrics" % (st.host, st.SITE1_BE1_HTTP_PORT)
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('portico_backend_streams_refused_total'
                               '{code="%s"} ' % code):
                return int(line.split()[1])
    raise AssertionError("no refusals of %s in the metrics" % code)


def intact(st, user, pw):
    """The account through the real frontend: its three messages with the
    third flagged."""
    c = st.imap(user, pw)
    try:
        assert c.select("INBOX") == ("OK", [b"3"])
        typ, data = c.fetch("1:*", "(FLAGS)")
        assert [re.sub(rb"^\d+ ", b"", d) for d in data] == [
            b"(FLAGS ())", b"(FLAGS ())", b"(FLAGS (\\Flagged))"], data
    finally:
        c.logout()


def test_resume_as_a_frontend_would(st):
    """The control: an IMAP session in IDLE with the INBOX selected, taken
    up from a state such as the backend writes, answers DONE with the
    IDLE's tag and goes on; between commands, it answers the next
    command and hears what changed."""
    user, pw, mbox, uidvalidity, uidnext, inbox = account(st, "peerok")
    peer = Peer(st)
    try:
        state = imap_park(idle_tag="idle7", uidvalidity=uidvalidity,
                          uidnext=uidnext, runs=(1, 3))
        assert peer.open(1, user, mbox, state)[0] == "opened"
        peer.data(1, "DONE\r\n")
        assert peer.text(1, b"idle7 ")[0] == b"idle7 OK IDLE terminated\r\n"
        peer.data(1, "f FETCH 3 (FLAGS)\r\n")
        out, _ = peer.text(1, b"f ")
        assert out.startswith(b"* 3 FETCH (FLAGS (\\Flagged))\r\nf OK"), out
        # between commands, with a view of two messages: the third is new
        state = imap_park(idle_tag="", between=True, uidvalidity=uidvalidity,
                          uidnext=uidnext - 1, runs=(1, 2),
                          modseq=MODSEQ - 1)
        assert peer.open(3, user, mbox, state)[0] == "opened"
        peer.data(3, "n NOOP\r\n")
        out, _ = peer.text(3, b"n ")
        assert out.startswith(b"* 3 EXISTS\r\n"), out
        assert b"n OK" in out, out
        # a folder renamed while parked: found by its id in the account
        state = imap_park(idle_tag="", between=True, mbox_name="Old name",
                          mbox_id=inbox, uidvalidity=uidvalidity,
                          uidnext=uidnext, runs=(1, 3))
        assert peer.open(5, user, mbox, state)[0] == "opened"
        peer.data(5, "f FETCH 1:* (FLAGS)\r\n")
        out, _ = peer.text(5, b"f ")
        assert out.count(b" FETCH (FLAGS ") == 3, out
        assert b"f OK" in out, out
    finally:
        peer.close()
    intact(st, user, pw)


def test_resume_refuses_states_no_backend_wrote(st):
    """States that do not decode, of another version, with a tag that is
    not one (it would put a line of its own before the client), or whose
    view names UIDs the mailbox never gave, are refused with CLIENTBUG on
    their stream; the link goes on (a good state after them is taken up)
    and the mail is untouched."""
    user, pw, mbox, uidvalidity, uidnext, _ = account(st, "peerbad")
    clientbug = refused(st, "CLIENTBUG")
    peer = Peer(st)
    try:
        bad = {
            "garbage": b"\xff\xff\xff\xff",
            "version": imap_park(version=9, uidvalidity=uidvalidity,
                                 uidnext=uidnext, runs=(1, 3)),
            "tag with a line": imap_park(idle_tag="t\r\n* BYE x",
                                         uidvalidity=uidvalidity,
                                         uidnext=uidnext, runs=(1, 3)),
            "no tag in IDLE": imap_park(idle_tag="", uidvalidity=uidvalidity,
                                        uidnext=uidnext, runs=(1, 3)),
            "tag between commands": imap_park(
                idle_tag="t1", between=True, uidvalidity=uidvalidity,
                uidnext=uidnext, runs=(1, 3)),
            "no name": imap_park(mbox_name="", uidvalidity=uidvalidity,
                                 uidnext=uidnext, runs=(1, 3)),
            # 100,000 UIDs the mailbox never gave
            "UIDs beyond UIDNEXT": imap_park(
                uidvalidity=uidvalidity, uidnext=uidnext + 100000,
                runs=(1, uidnext + 99999)),
            "runs out of order": imap_park(uidvalidity=uidvalidity,
                                           uidnext=uidnext,
                                           runs=(3, 1, 1, 1)),
            "a run beyond UIDNEXT": imap_park(uidvalidity=uidvalidity,
                                              uidnext=uidnext,
                                              runs=(1, uidnext)),
            "half a run": imap_park(uidvalidity=uidvalidity,
                                    uidnext=uidnext, runs=(1,)),
        }
        stream = 1
        for what, state in bad.items():
            kind, body = peer.open(stream, user, mbox, state)
            assert kind == "refused", (what, kind, body)
            assert body[1] == [b"CLIENTBUG"], (what, body)
            assert body[2] == [b"Parked session not readable"], (what, body)
            stream += 2
        # the same stream twice
        good = imap_park(uidvalidity=uidvalidity, uidnext=uidnext,
                         runs=(1, 3))
        assert peer.open(stream, user, mbox, good)[0] == "opened"
        kind, body = peer.open(stream, user, mbox, good)
        assert (kind, body[1]) == ("refused", [b"CLIENTBUG"]), body
        assert body[2] == [b"stream in use"], body
        # a protocol the backend does not know
        peer.send(stream + 2, OPEN, vfield(1, 7) + bfield(2, user) +
                  bfield(3, mbox))
        kind, body = peer.on(stream + 2)
        assert (kind, body[2]) == ("refused", [b"unknown protocol"]), body
        # the link still carries the good session
        peer.data(stream, "DONE\r\n")
        assert peer.text(stream, b"t1 ")[0] == b"t1 OK IDLE terminated\r\n"
    finally:
        peer.close()
    assert "Parked session not readable" in st.log("s1b1")
    # counted for the operator: ten states, a stream in use, a protocol
    assert refused(st, "CLIENTBUG") - clientbug == len(bad) + 2
    intact(st, user, pw)


def test_resume_of_a_mailbox_not_in_the_account(st):
    """A state whose mailbox the account does not have (by name, nor by
    id: another account's, after a move) ends the session with BYE
    [NONEXISTENT], as for a mailbox deleted while parked; the other
    account's mail is untouched."""
    user, pw, mbox, uidvalidity, uidnext, inbox = account(st, "peerown")
    other, other_pw, _, _, _, other_inbox = account(st, "peerother")
    peer = Peer(st)
    try:
        for stream, state in (
                # another account's INBOX, by id
                (1, imap_park(mbox_name="NoSuchFolder", mbox_id=other_inbox,
                              uidvalidity=uidvalidity, uidnext=uidnext,
                              runs=(1, 3))),
                (3, imap_park(uidvalidity=uidvalidity + 1,
                              mbox_id=other_inbox, uidnext=uidnext,
                              runs=(1, 3))),
                # an id no mailbox has
                (5, imap_park(mbox_name="NoSuchFolder",
                              mbox_id=inbox + (1 << 40),
                              uidvalidity=uidvalidity, uidnext=uidnext,
                              runs=(1, 3)))):
            assert peer.open(stream, user, mbox, state)[0] == "opened"
            out, reason = peer.text(stream, b"* BYE")
            assert out == b"* BYE [NONEXISTENT] Selected mailbox was " \
                b"deleted\r\n", out
    finally:
        peer.close()
    intact(st, user, pw)
    intact(st, other, other_pw)


BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))


def test_login_checked_before_a_kick_opens_nothing(st):
    """An Open whose login the directory checked before the account was
    kicked (Open.auth_age_ms) is refused with UNAVAILABLE, so that a
    login in flight when an operator disables and kicks an account does
    not open a session after the kick; one checked since, one of another
    account, and a parked session taken up (no age) open as before."""
    user, pw, mbox, uidvalidity, uidnext, _ = account(st, "peerkick")
    other, _, other_mbox, _, _, _ = account(st, "peerkeep")
    p = subprocess.run([str(BUILD / "portico-admin"), "-c",
                        str(st.dir / "s1b1" / "backend.ini"), "kick", mbox],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stderr
    time.sleep(0.05)
    unavailable = refused(st, "UNAVAILABLE")
    peer = Peer(st)
    try:
        kind, body = peer.open(1, user, mbox, auth_age_ms=30000)
        assert kind == "refused", (kind, body)
        assert body[1] == [b"UNAVAILABLE"], body
        assert body[2] == [b"Sessions ended by an administrator; log in "
                           b"again"], body
        assert peer.open(3, other, other_mbox,
                         auth_age_ms=30000)[0] == "opened"
        assert peer.text(3, b"L3 ")[0].startswith(b"L3 OK [CAPABILITY ")
        assert peer.open(5, user, mbox, auth_age_ms=1)[0] == "opened"
        assert peer.text(5, b"L5 ")[0].startswith(b"L5 OK [CAPABILITY ")
        state = imap_park(uidvalidity=uidvalidity, uidnext=uidnext,
                          runs=(1, 3))
        assert peer.open(7, user, mbox, state)[0] == "opened"
    finally:
        peer.close()
    assert "open refused: the login was checked 30000 ms ago, before a " \
        "kick" in st.log("s1b1")
    assert refused(st, "UNAVAILABLE") - unavailable == 1
    # through the real frontend: a login after the kick is let in
    c = st.imap(user, pw)
    assert c.select("INBOX") == ("OK", [b"3"])
    c.logout()


DELIVER = 10


def test_deliver_with_an_automatic_reply_beyond_its_bounds(st):
    """A Deliver whose recipient carries an automatic reply beyond what a
    frontend sends (over 512 addresses, a subject over 1024 bytes) is
    refused with CLIENTBUG on its stream, before any byte
    of the message; the link goes on and the account's mail is
    untouched."""
    user, pw, mbox, uidvalidity, uidnext, _ = account(st, "peerar")
    clientbug = refused(st, "CLIENTBUG")

    def rcpt(**extra):
        r = bfield(1, user) + bfield(2, mbox) + bfield(10, "Away.")
        for num, values in extra.items():
            for v in values:
                r += bfield(int(num[1:]), v)
        return r
    bad = {
        "addresses": rcpt(f14=["a%d@example.test" % i for i in range(513)]),
        "subject": rcpt(f11=["s" * 1025]),
    }
    deliver_refused(st, user, mbox, bad, b"automatic reply beyond its "
                    b"bounds")
    assert refused(st, "CLIENTBUG") - clientbug == len(bad)
    intact(st, user, pw)


def deliver_refused(st, user, mbox, bad, reason):
    """Each Deliver of one recipient in BAD ({what: its Recipient}) is
    refused with CLIENTBUG and REASON on its stream; the link still
    opens a session for USER after them."""
    peer = Peer(st)
    try:
        stream = 1
        for what, r in bad.items():
            peer.send(stream, DELIVER, bfield(1, "someone@remote.test") +
                      bfield(2, r) + bfield(4, "peer%d" % stream) +
                      vfield(6, 1 << 20))
            kind, body = peer.on(stream)
            assert kind == "refused", (what, kind, body)
            assert body[1] == [b"CLIENTBUG"], (what, body)
            assert body[2] == [reason], (what, body)
            stream += 2
        # the link still opens a session
        kind, body = peer.open(stream, user, mbox)
        assert kind == "opened", (kind, body)
    finally:
        peer.close()


def test_deliver_with_forward_addresses_beyond_their_bounds(st):
    """A Deliver whose recipient is to be forwarded to more addresses
    than any lmtp.forward_max_addresses allows (64), to one longer than a
    path or without '@', is refused with CLIENTBUG on its stream before
    any byte of the message; the link goes on and the account's mail is
    untouched."""
    user, pw, mbox, uidvalidity, uidnext, _ = account(st, "peerfw")
    clientbug = refused(st, "CLIENTBUG")

    def rcpt(addresses):
        r = bfield(1, user) + bfield(2, mbox)
        for a in addresses:
            r += bfield(15, a)
        return r
    bad = {
        "many": rcpt(["f%d@remote.test" % i for i in range(65)]),
        "long": rcpt(["l" * 300 + "@remote.test"]),
        "no at": rcpt(["nobody"]),
    }
    deliver_refused(st, user, mbox, bad,
                    b"forward addresses beyond their bounds")
    assert refused(st, "CLIENTBUG") - clientbug == len(bad)
    intact(st, user, pw)
