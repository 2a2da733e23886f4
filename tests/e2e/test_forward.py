"""Forwarding from the directory: a user whose entry has
porticoForwardAddress values has each message delivered to it sent on to
them, through the backend's queue (to the smarthost for a remote address,
by LMTP for a local one), from the account's address, with
Delivered-To: on top; the INBOX keeps a copy unless porticoForwardKeep is
FALSE, and always when the message is not forwarded (a loop, spam, a
directory value that is not an address).  A forward that fails comes back
to the account as a report."""

import re
import subprocess

import pytest

from conftest import wait_for
from test_admin import FE, admin as fe_admin, ldap_modify
from test_auto_reply import message, settle
from test_transport import (PortHold, Sink, backend_metrics, fetch_inbox,
                            header_fields, inbox_when, lmtp, queue_empty)

METRIC = "portico_backend_forwards_total"
MAX_ADDRESSES = 3     # lmtp.forward_max_addresses


@pytest.fixture(scope="module")
def fw_stack(stack_factory):
    """One stack for the file: example.test is local, other domains go to
    a running smarthost (a Sink; RCPT to bad* is refused)."""
    port = PortHold()
    st = stack_factory("forward", settings=[
        "transport.smarthost=127.0.0.1:%d" % port.port,
        "transport.retry_first=1s", "transport.retry_max=2s",
        "lmtp.forward_max_addresses=%d" % MAX_ADDRESSES])
    st.sink = Sink(port, str(st.dir / "certs" / "mail.pem"),
                   str(st.dir / "certs" / "mail.key"))
    st.sink.start()
    try:
        yield st
    finally:
        st.sink.stop()
        st.down()


def set_forward(st, user, addresses, keep=None):
    """USER's porticoForwardAddress values (none: removed) and
    porticoForwardKeep (None: removed)."""
    changes = ["replace: porticoForwardAddress"]
    changes += ["porticoForwardAddress: %s" % a for a in addresses]
    changes += ["-", "replace: porticoForwardKeep"]
    if keep is not None:
        changes.append("porticoForwardKeep: %s" % ("TRUE" if keep
                                                   else "FALSE"))
    dn = "uid=%s,%s" % (user, st["LDAP_PEOPLE_DN"])
    try:
        ldap_modify(st, dn, *changes)
    except subprocess.CalledProcessError as e:
        raise AssertionError("ldapmodify of %s: %s" % (
            user, e.stderr.decode(errors="replace"))) from None


def forward_line(st, user):
    """The forward line of portico-admin user USER."""
    p = fe_admin(st, FE, "user", user)
    assert p.returncode == 0, p.stderr
    m = re.search(r"\nforward       (.*)\n", p.stdout)
    assert m, p.stdout
    return m.group(1)


def deliver(st, user, msg, mail_from):
    got = lmtp(st, [user], msg, mail_from=mail_from)
    assert got[user][0] == 250, got


def ids(st, user):
    out = []
    for _, raw in fetch_inbox(st, user):
        v = header_fields(raw, b"Message-ID")
        out.append(v[0].decode() if v else None)
    return out


def drained(st):
    wait_for(lambda: queue_empty(st), timeout=30, interval=0.1,
             what="the queue to empty")


@pytest.mark.daemons
def test_forward_to_a_remote_address(fw_stack):
    """Kept by default: the INBOX has the message, the smarthost gets the
    copy from the account's address with Delivered-To: and the
    delivery's Received: on top and the original after it, without the
    Return-Path; with porticoForwardKeep FALSE the INBOX stays empty.
    Two addresses and the account's own: one copy to the two, and the
    metric counts the forwards."""
    st = fw_stack
    user, _, _ = st.new_account("fwd")
    metric0 = backend_metrics(st)[METRIC]
    sink0 = len(st.sink.messages)
    target = "Far.Away@remote.test"
    assert forward_line(st, user) == "-"
    set_forward(st, user, [target])
    assert forward_line(st, user) == "to %s (a copy kept)" % target
    msg = message("fw-1@remote.test", "Sender <s1@remote.test>", user,
                  subject="Forward me")
    deliver(st, user, msg, "s1@remote.test")
    settle(st, sink0 + 1, "the forwarded copy")
    mail_from, rcpts, data = st.sink.messages[-1]
    assert mail_from == user and rcpts == [target], st.sink.messages[-1]
    assert data.startswith(b"Delivered-To: %s\r\nReceived: from "
                           % user.encode()), data[:300]
    assert b"Return-Path:" not in data, data[:300]
    assert data.endswith(msg), data
    assert ids(st, user) == ["<fw-1@remote.test>"]
    log = st.log("s1b1")
    assert re.search(r"forward queue=\S+ addresses=1 for=<%s> kept"
                     % re.escape(user), log), log[-2000:]

    # not kept; two addresses and the account's own, which gets
    # nothing
    other = "second@remote.test"
    set_forward(st, user, [target, other, user], keep=False)
    assert forward_line(st, user) == "to %s %s %s (no copy kept)" % (
        target, other, user)
    msg2 = message("fw-2@remote.test", "s2@remote.test", user)
    deliver(st, user, msg2, "s2@remote.test")
    settle(st, sink0 + 2, "one copy to both addresses")
    mail_from, rcpts, data = st.sink.messages[-1]
    assert mail_from == user and sorted(rcpts) == sorted([target, other]), \
        st.sink.messages[-1]
    assert data.endswith(msg2)
    assert ids(st, user) == ["<fw-1@remote.test>"], "not kept, yet stored"
    assert re.search(r"forward queue=\S+ addresses=2 for=<%s> not kept"
                     % re.escape(user), st.log("s1b1"))
    assert backend_metrics(st)[METRIC] - metric0 == 2


@pytest.mark.daemons
def test_forward_to_a_local_account_and_loops(fw_stack):
    """A forward to a local account reaches its INBOX by LMTP, with
    Delivered-To: naming the first; two accounts forwarding to each other
    without keeping a copy: the message goes round once and stays with
    the first, whose Delivered-To: shows the loop, and nothing is
    queued after."""
    st = fw_stack
    first, _, _ = st.new_account("fwloopa")
    second, _, _ = st.new_account("fwloopb")
    set_forward(st, first, [second])
    deliver(st, first, message("fw-local@remote.test", "s@remote.test",
                               first), "s@remote.test")
    [(_, raw)] = inbox_when(st, second, 1)
    assert header_fields(raw, b"Delivered-To") == [first.encode()], raw[:400]
    assert header_fields(raw, b"Return-Path") == [b"<%s>" % first.encode()]
    assert ids(st, first) == ["<fw-local@remote.test>"]

    set_forward(st, first, [second], keep=False)
    set_forward(st, second, [first], keep=False)
    deliver(st, first, message("fw-loop@remote.test", "s@remote.test",
                               first), "s@remote.test")
    got = inbox_when(st, first, 2)
    raw = got[-1][1]
    assert header_fields(raw, b"Message-ID") == [b"<fw-loop@remote.test>"]
    assert header_fields(raw, b"Delivered-To") == [second.encode(),
                                                    first.encode()], raw[:600]
    drained(st)
    assert ids(st, second) == ["<fw-local@remote.test>"]
    assert len(fetch_inbox(st, first)) == 2
    assert "forward for=<%s> none (kept): a forwarding loop" % first \
        in st.log("s1b1")


@pytest.mark.daemons
def test_what_is_not_forwarded_is_kept(fw_stack):
    """Not forwarded, and so kept even with porticoForwardKeep FALSE:
    spam, a message for an account whose directory entry has more
    addresses than lmtp.forward_max_addresses or a value that is not an
    address (the frontend says why), and one whose addresses are all the
    account's own."""
    st = fw_stack
    user, _, _ = st.new_account("fwkept")
    sink0 = len(st.sink.messages)
    cases = [
        ("spam", ["x@remote.test"], ["X-Spam-Flag: YES"],
         "marked as spam", "s1b1"),
        ("too-many", ["a@remote.test", "b@remote.test", "c@remote.test",
                      "d@remote.test"], [],
         "more porticoForwardAddress values than "
         "lmtp.forward_max_addresses", "s1f1"),
        ("not-an-address", ["no address here"], [],
         "a porticoForwardAddress that is not an address", "s1f1"),
        ("own", [user.upper()], [],
         "every forward address is the account's own", "s1b1"),
    ]
    want = []
    for case, addresses, extra, why, where in cases:
        set_forward(st, user, addresses, keep=False)
        mid = "fw-%s@remote.test" % case
        deliver(st, user, message(mid, "s@remote.test", user,
                                  extra=extra), "s@remote.test")
        want.append("<%s>" % mid)
        assert ids(st, user) == want, case
        assert why in st.log(where), (case, why)
    drained(st)
    assert len(st.sink.messages) == sink0, st.sink.messages[sink0:]


@pytest.mark.daemons
def test_a_forward_that_fails_comes_back(fw_stack):
    """A forward the next hop refuses: the account gets the report in its
    INBOX.  Without a copy kept, the report returns the whole message
    even over transport.dsn_return_limit (50 KB): it is the only copy;
    with one kept, a message that large comes back as its header
    only."""
    st = fw_stack
    big = "".join("line %05d of a message larger than the limit\r\n" % i
                  for i in range(2000)).encode()
    assert len(big) > 50 * 1024
    for keep in (False, True):
        user, _, _ = st.new_account("fwbad")
        set_forward(st, user, ["bad-target@remote.test"], keep=keep)
        msg = message("fw-bad@remote.test", "s@remote.test", user,
                      subject="Lost?") + big
        deliver(st, user, msg, "s@remote.test")
        got = inbox_when(st, user, 2 if keep else 1)
        raw = got[-1][1]
        assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
        assert b"multipart/report" in raw and \
            b"bad-target@remote.test" in raw, raw[:2000]
        assert b"Message-ID: <fw-bad@remote.test>" in raw
        if keep:
            assert b"Content-Type: text/rfc822-headers" in raw, keep
            assert big not in raw
            assert ids(st, user)[0] == "<fw-bad@remote.test>"
        else:
            assert b"Content-Type: message/rfc822" in raw, raw[:3000]
            assert big in raw, "the only copy came back cut"
        drained(st)


@pytest.mark.daemons
def test_portico_admin_forward(fw_stack):
    """portico-admin forward: bad arguments exit 2 and change nothing;
    --to sets the addresses (a copy kept), --no-keep drops the copy,
    without a change it shows the state, --off removes both; the mail
    follows each change."""
    from test_admin import password_file
    st = fw_stack
    user, _, _ = st.new_account("fwadmin")
    creds = ["--bind-dn", st.LDAP_ADMIN_DN, "--password-file",
             password_file(st)]

    def fwd(*args):
        return fe_admin(st, FE, "forward", user, *creds, *args)

    for args in (["--to", "not an address"], ["--to", user.upper()],
                 ["--to", "x@remote.test", "--to", "X@remote.test"],
                 ["--to", "a@r.test", "--to", "b@r.test", "--to", "c@r.test",
                  "--to", "d@r.test"],
                 ["--no-keep"], ["--off", "--to", "x@remote.test"],
                 ["--to"], ["--bogus", "x"]):
        p = fwd(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert forward_line(st, user) == "-", args
    p = fe_admin(st, FE, "forward", user, "--to", "x@remote.test")
    assert p.returncode == 2 and "--bind-dn DN" in p.stderr, p.stderr

    p = fwd("--to", "one@remote.test", "--to", "two@remote.test")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "%s: forwarded to one@remote.test, " \
        "two@remote.test (a copy kept)\n" % user, p.stdout
    assert forward_line(st, user) == \
        "to one@remote.test two@remote.test (a copy kept)"
    sink0 = len(st.sink.messages)
    deliver(st, user, message("fwadm-1@remote.test", "s@remote.test",
                              user), "s@remote.test")
    settle(st, sink0 + 1, "the copy to both")
    assert sorted(st.sink.messages[-1][1]) == ["one@remote.test",
                                               "two@remote.test"]
    assert ids(st, user) == ["<fwadm-1@remote.test>"]

    p = fwd("--to", "one@remote.test", "--no-keep")
    assert p.returncode == 0 and p.stdout == \
        "%s: forwarded to one@remote.test (no copy kept)\n" % user, p.stdout
    assert fwd().stdout == p.stdout
    deliver(st, user, message("fwadm-2@remote.test", "s@remote.test",
                              user), "s@remote.test")
    settle(st, sink0 + 2, "the copy, not kept")
    assert st.sink.messages[-1][1] == ["one@remote.test"]
    assert ids(st, user) == ["<fwadm-1@remote.test>"]

    p = fwd("--off")
    assert p.returncode == 0 and p.stdout == "%s: not forwarded\n" % user
    assert forward_line(st, user) == "-"
    deliver(st, user, message("fwadm-3@remote.test", "s@remote.test",
                              user), "s@remote.test")
    drained(st)
    assert len(st.sink.messages) == sink0 + 2
    assert ids(st, user) == ["<fwadm-1@remote.test>",
                             "<fwadm-3@remote.test>"]


def page_forward(page):
    """The settings page's forwarding section: (state, text)."""
    import html
    m = re.search(r'<p id="forward-state" data-state="(\w+)">(.*?)</p>',
                  page, re.S)
    assert m, page
    return m.group(1), html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))


@pytest.mark.daemons
def test_forwarding_on_the_settings_page(fw_stack):
    """A signed-in user sees where the mail goes: not forwarded; forwarded
    to two addresses with a copy kept, or without; and, after saving an
    automatic reply, both the reply as saved and the forwarding."""
    from test_auto_reply import page_auto_reply, page_post
    st = fw_stack
    user, pw = st.new_user("fwweb")

    def page():
        status, text = page_post(st, {"user": user, "password": pw})
        assert status == 200, text
        return text

    assert page_forward(page()) == ("off", "Your mail is not forwarded.")
    set_forward(st, user, ["one@remote.test", "two@remote.test"])
    assert page_forward(page()) == (
        "on", "Your mail is forwarded to one@remote.test and "
        "two@remote.test; a copy stays here.")
    set_forward(st, user, ["one@remote.test"], keep=False)
    assert page_forward(page()) == (
        "on", "Your mail is forwarded to one@remote.test; no copy stays "
        "here (only what cannot be forwarded).")
    # a value that is not an address: not forwarded, and the page says so
    set_forward(st, user, ["one@remote.test", "not one"], keep=False)
    assert page_forward(page())[0] == "off"
    set_forward(st, user, ["one@remote.test"], keep=False)
    status, text = page_post(st, {"action": "auto-reply", "user": user,
                                  "password": pw, "auto_reply": "on",
                                  "text": "Away."})
    assert status == 200, text
    ar = page_auto_reply(text)
    assert (ar["state"], ar["message"]) == \
        ("on", "Your automatic reply is saved."), ar
    assert page_forward(text)[0] == "on"


@pytest.mark.daemons
def test_forward_remote_off(fw_stack):
    """With transport.forward_remote = no (applied at a reload), a copy
    goes only to the local addresses, the remote ones left out and
    logged; an account forwarding only to remote addresses keeps its
    mail, however porticoForwardKeep is set.  Back on, the remote address
    gets its copy again."""
    from test_ops import ConfigEdit, reload
    st = fw_stack
    user, _, _ = st.new_account("fwlocal")
    local, _, _ = st.new_account("fwlocaltarget")
    sink0 = len(st.sink.messages)
    edit = ConfigEdit(st, "s1b1", "backend")
    try:
        edit.append("[transport]\nforward_remote = no\n")
        new = reload(st, "s1b1")
        assert "setting=transport.forward_remote changed" in new, new
        set_forward(st, user, ["out@remote.test", local], keep=False)
        deliver(st, user, message("fwrem-1@remote.test", "s@remote.test",
                                  user), "s@remote.test")
        [(_, raw)] = inbox_when(st, local, 1)
        assert header_fields(raw, b"Message-ID") == [b"<fwrem-1@remote.test>"]
        assert ids(st, user) == [], "forwarded locally, not kept"
        assert "forward for=<%s>: 1 remote address left out " \
            "(transport.forward_remote off)" % user in st.log("s1b1")
        set_forward(st, user, ["out@remote.test"], keep=False)
        deliver(st, user, message("fwrem-2@remote.test", "s@remote.test",
                                  user), "s@remote.test")
        assert ids(st, user) == ["<fwrem-2@remote.test>"]
        assert "forward for=<%s> none (kept): every forward address is " \
            "remote, and transport.forward_remote is off" % user \
            in st.log("s1b1")
        drained(st)
        assert len(st.sink.messages) == sink0, st.sink.messages[sink0:]
    finally:
        edit.restore()
    deliver(st, user, message("fwrem-3@remote.test", "s@remote.test",
                              user), "s@remote.test")
    settle(st, sink0 + 1, "the remote copy, forward_remote on again")
    assert st.sink.messages[-1][1] == ["out@remote.test"]
    assert ids(st, user) == ["<fwrem-2@remote.test>"]
