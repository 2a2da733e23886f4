"""Honest capabilities and honest failures after the frontend said yes.

Before login a client sees a subset of what it sees after login (apart
from STARTTLS, AUTH=, LOGINDISABLED and SASL-IR); the tagged OK of the
login carries the backend's real list.  A login the frontend accepts but
no backend can serve gets NO [UNAVAILABLE] with a reason, never an OK
followed by a broken session.
"""

import poplib
import re
import subprocess

import pytest

from conftest import ALICE, raw_client, read_until_tagged

pytestmark = pytest.mark.daemons

PRELOGIN_ONLY = ("STARTTLS", "LOGINDISABLED", "SASL-IR")


def caps_of(line):
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
    assert m, line
    return set(m.group(1).decode().upper().split())


def prelogin_subset(pre, post):
    return {c for c in pre if c not in PRELOGIN_ONLY
            and not c.startswith("AUTH=")} - post


def test_prelogin_capabilities_are_a_subset(stack):
    # Greeting, CAPABILITY before STARTTLS, after STARTTLS, on implicit
    # TLS; then the login's OK and CAPABILITY after login.
    s, f = raw_client(stack, stack.IMAP_PORT)
    greeting = caps_of(f.readline())
    s.sendall(b"a CAPABILITY\r\n")
    plain = caps_of(read_until_tagged(f, b"a")[0])
    s.close()
    s, f = raw_client(stack, stack.IMAPS_PORT, tls=True)
    tls_greeting = caps_of(f.readline())
    s.sendall(b"b CAPABILITY\r\n")
    tls = caps_of(read_until_tagged(f, b"b")[0])
    s.sendall(b"c LOGIN %s %s\r\n" % tuple(x.encode() for x in ALICE))
    ok = read_until_tagged(f, b"c")[-1]
    assert ok.startswith(b"c OK [CAPABILITY "), ok
    login_ok = caps_of(ok)
    s.sendall(b"d CAPABILITY\r\n")
    post = caps_of(read_until_tagged(f, b"d")[0])
    s.close()
    assert login_ok == post
    for pre in (greeting, plain, tls_greeting, tls):
        assert prelogin_subset(pre, post) == set(), (pre, post)
        assert "IMAP4REV1" in pre
    assert "STARTTLS" in plain and "LOGINDISABLED" in plain
    assert "STARTTLS" not in tls and "AUTH=PLAIN" in tls


def ldap_modify(st, user, attr, value):
    dn = "uid=%s,ou=people,dc=example,dc=test" % user
    subprocess.run(
        ["ldapmodify", "-x", "-H", st.LDAP_URI, "-D", st.LDAP_ADMIN_DN,
         "-w", st.LDAP_ADMIN_PASSWORD],
        input=("dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n"
               % (dn, attr, attr, value)).encode(),
        check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize("attr,value", [
    ("porticoMailboxServer", "s9b9"),            # no such backend
    ("porticoMailboxId", "0123456789abcdef"),    # mailbox not provisioned
], ids=["unknown-backend", "unprovisioned-mailbox"])
def test_login_no_backend_can_serve(stack, attr, value):
    user, pw = stack.new_user("nobackend")
    ldap_modify(stack, user, attr, value)
    s, f = raw_client(stack, stack.IMAPS_PORT, tls=True)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    line = read_until_tagged(f, b"a1")[-1]
    assert re.match(rb"a1 NO \[UNAVAILABLE\] \S.*\r\n", line), line
    # Still a usable pre-login connection.
    s.sendall(b"a2 NOOP\r\n")
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 OK")
    s.close()
    p = stack.pop3()
    p.user(user)
    # (an IMAP code from the backend is SYS/TEMP in POP3: RFC 3206)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\] \S"):
        p.pass_(pw)
    p.quit()
