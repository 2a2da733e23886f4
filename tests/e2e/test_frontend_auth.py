"""Frontend authentication policy: the authentication cache, the
brute-force penalty, privileged accounts marked in LDAP, hostile login
names on every protocol and mechanism, and LDAP failover.

One stack for the module:

    ldap.cache_size=1000, cache_ttl=300s, cache_negative_ttl=300s,
    limits.auth_penalty=1s, auth_penalty_max=2s,
    limits.auth_address_failures=6,
    frontend.trusted_networks=127.0.0.9,
    ldap.privileged_attribute=employeeType=administrator

What the frontend decided is read from its log (cache=hit|miss, "auth
penalty delay_ms=... failures=...", "auth address penalty delay_ms=...
address_failures=..."), not from timings.  Tests that fail logins from
untrusted addresses use addresses of their own, each with at most six
counted failures but for the spraying test's.
"""

import base64
import re
import subprocess

import pytest

from conftest import free_port, raw_client, read_until_tagged, wait_for

pytestmark = pytest.mark.daemons

TRUSTED = "127.0.0.9"


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="auth", settings=[
        "ldap.cache_size=1000",
        "ldap.cache_ttl=300s",
        "ldap.cache_negative_ttl=300s",
        "limits.auth_penalty=1s",
        "limits.auth_penalty_max=2s",
        "limits.auth_address_failures=6",
        "frontend.trusted_networks=" + TRUSTED,
        "ldap.privileged_attribute=employeeType=administrator",
    ])


def imap_login(st, user, pw, source="127.0.0.1", tag=b"a1"):
    """Logs in over IMAPS from SOURCE; returns the tagged line."""
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, source=source)
    try:
        assert f.readline().startswith(b"* OK")
        s.sendall(tag + b" LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (
            len(user.encode()), user.encode(), len(pw.encode()),
            pw.encode()))
        return read_until_tagged(f, tag)[-1]
    finally:
        s.close()


def log_lines(st, user, what):
    return [l for l in st.log("s1f1").splitlines()
            if ("user=%s " % user) in l and what in l]


def ldap_modify(st, ldif):
    subprocess.run(
        ["ldapmodify", "-x", "-H", st.LDAP_URI, "-D", st.LDAP_ADMIN_DN,
         "-w", st.LDAP_ADMIN_PASSWORD],
        input=ldif.encode(), check=True, capture_output=True, timeout=30)


def user_dn(user):
    return "uid=%s,%s" % (user, "ou=people,dc=example,dc=test")


# -- authentication cache -----------------------------------------------------

def test_cache_positive_entry(st):
    user, pw = st.new_user("cache")
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    assert len(log_lines(st, user, "authenticated cache=miss")) == 1
    assert len(log_lines(st, user, "authenticated cache=hit")) == 1
    # Another password is not answered from the entry of the right one.
    assert imap_login(st, user, pw + "x", TRUSTED).startswith(
        b"a1 NO [AUTHENTICATIONFAILED]")
    assert len(log_lines(st, user, "result=fail cache=miss")) == 1


def test_cache_negative_entry(st):
    user, pw = st.new_user("negcache")
    for _ in range(3):
        assert imap_login(st, user, "wrong", TRUSTED).startswith(
            b"a1 NO [AUTHENTICATIONFAILED]")
    assert len(log_lines(st, user, "result=fail cache=miss")) == 1
    assert len(log_lines(st, user, "result=fail cache=hit")) == 2
    # The right password is still checked with the directory.
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    assert len(log_lines(st, user, "authenticated cache=miss")) == 1


def test_cached_users_log_in_while_ldap_is_down(st):
    user, pw = st.new_user("cacheoutage")
    other, other_pw = st.new_user("nocache")
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    st.stop("ldap")
    try:
        assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
        assert imap_login(st, other, other_pw, TRUSTED).startswith(
            b"a1 NO [UNAVAILABLE]")
    finally:
        st.start("ldap")
    wait_for(lambda: imap_login(st, other, other_pw, TRUSTED).startswith(
        b"a1 OK"), timeout=20, interval=0.3, what="LDAP to come back")


# -- brute-force penalty ------------------------------------------------------

def test_penalty_grows_per_address_and_user(st):
    user, pw = st.new_user("penalty")
    src = "127.0.0.21"

    def attempt(password):
        return imap_login(st, user, password, src)

    assert attempt("w1").startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert not log_lines(st, user, "auth penalty")
    # The same wrong password again (a client retrying what it stored)
    # is delayed but not counted again.
    assert attempt("w1").startswith(b"a1 NO")
    assert attempt("w1").startswith(b"a1 NO")
    assert len(log_lines(st, user, "delay_ms=1000 failures=1")) == 2
    # A new guess counts: the delay doubles, up to the ceiling (2s).
    assert attempt("w2").startswith(b"a1 NO")
    assert attempt("w3").startswith(b"a1 NO")
    assert attempt(pw).startswith(b"a1 OK")
    assert len(log_lines(st, user, "delay_ms=2000 failures=2")) == 1
    assert len(log_lines(st, user, "delay_ms=2000 failures=3")) == 1
    # Success forgets the failures.
    n = len(log_lines(st, user, "auth penalty"))
    assert attempt(pw).startswith(b"a1 OK")
    assert len(log_lines(st, user, "auth penalty")) == n
    # POP3 shares the count (it is per address and login).
    assert attempt("w4").startswith(b"a1 NO")
    s, f = raw_client(st, st.POP3S_PORT, tls=True, source=src)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS w5\r\n" % user.encode())
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"-ERR [AUTH]")
    s.close()
    assert len(log_lines(st, user, "auth penalty")) == n + 1


def test_penalty_spares_other_users_and_addresses(st):
    victim, vpw = st.new_user("victim")
    neighbour, npw = st.new_user("neighbour")
    src = "127.0.0.22"
    for pw in ("x1", "x2"):
        assert imap_login(st, victim, pw, src).startswith(b"a1 NO")
    assert log_lines(st, victim, "auth penalty")
    # Another user behind the same address (NAT, webmail): no delay.
    assert imap_login(st, neighbour, npw, src).startswith(b"a1 OK")
    assert not log_lines(st, neighbour, "auth penalty")
    # The same user from another address: no delay either.
    n = len(log_lines(st, victim, "auth penalty"))
    assert imap_login(st, victim, vpw, "127.0.0.23").startswith(b"a1 OK")
    assert len(log_lines(st, victim, "auth penalty")) == n


def test_trusted_networks_are_not_penalised(st):
    user, pw = st.new_user("trusted")
    for i in range(4):
        assert imap_login(st, user, "bad%d" % i, TRUSTED).startswith(
            b"a1 NO")
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    assert not log_lines(st, user, "auth penalty")


# -- privileged accounts marked in the directory ------------------------------

def test_privileged_attribute_refused_everywhere(st):
    user, pw = st.new_user("boss")
    ldap_modify(st, "dn: %s\nchangetype: modify\nadd: employeeType\n"
                "employeeType: Administrator\n" % user_dn(user))
    line = imap_login(st, user, pw, TRUSTED)
    assert line.startswith(b"a1 NO [AUTHORIZATIONFAILED]"), line
    assert b"cannot use POP3/IMAP4" in line
    s, f = raw_client(st, st.POP3S_PORT, tls=True, source=TRUSTED)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(), pw.encode()))
    assert f.readline().startswith(b"+OK")
    line = f.readline()
    assert line.startswith(b"-ERR [AUTH]") and b"POP3/IMAP4" in line, line
    s.close()


def test_refused_accounts_however_spelled(st):
    """A refused account (frontend.refused_accounts) stays refused however
    its name is spelled for the directory ("root ", " ROOT"), and when
    the login is an address of its entry: the entry's uid and address
    are checked as well as the name typed.  A name with white space
    around it is the name without it (RFC 4518 2.6.1) for every user."""
    alias = "toor-%d@example.test" % len(st.users)
    st.add_user("root", "Root-pw-1", aliases=[alias])
    for login in ("root", "root ", " ROOT", "root\t", alias, alias + " "):
        line = imap_login(st, login, "Root-pw-1", TRUSTED)
        assert line.startswith(b"a1 NO [AUTHORIZATIONFAILED]"), (login, line)
    assert log_lines(st, alias, "privileged account (directory)")
    user, pw = st.new_user("spaced")
    assert imap_login(st, "  " + user + " ", pw, TRUSTED).startswith(b"a1 OK")
    assert log_lines(st, user, "authenticated")
    # control characters never make a login name (nor a log line)
    line = imap_login(st, user + "\nforged", pw, TRUSTED)
    assert line.startswith(b"a1 NO"), line
    assert not [l for l in st.log("s1f1").splitlines()
                if l.startswith("forged")]


def test_penalty_counts_spellings_as_one(st):
    """The brute-force penalty is per address and login name as the
    directory compares it: white space around the name changes nothing."""
    user, pw = st.new_user("spellpen")
    src = "127.0.0.24"
    assert imap_login(st, user, "w1", src).startswith(b"a1 NO")
    assert imap_login(st, " " + user, "w2", src).startswith(b"a1 NO")
    assert imap_login(st, user + "  ", "w3", src).startswith(b"a1 NO")
    assert len(log_lines(st, user, "delay_ms=1000 failures=1")) == 1
    assert len(log_lines(st, user, "delay_ms=2000 failures=2")) == 1


def test_penalty_shared_by_uid_and_mail_address(st):
    """A failure whose login found the directory entry counts for the
    entry too: the uid and a mail address of one account share a count
    once each has failed from the address (two spellings are not twice
    the guesses)."""
    n = len(st.users)
    alias = "shared-alias-%d@example.test" % n
    user, pw = st.new_user("shared", aliases=[alias])
    src = "127.0.0.25"
    assert imap_login(st, user, "w1", src).startswith(b"a1 NO")
    assert imap_login(st, alias, "w2", src).startswith(b"a1 NO")
    # each spelling failed once; the entry twice
    assert imap_login(st, user, "w3", src).startswith(b"a1 NO")
    assert len(log_lines(st, user, "delay_ms=2000 failures=2")) == 1
    assert imap_login(st, alias, "w4", src).startswith(b"a1 NO")
    assert len(log_lines(st, alias, "delay_ms=2000 failures=3")) == 1
    # the same guess under the other spelling does not count again
    assert imap_login(st, user, "w4", src).startswith(b"a1 NO")
    assert len(log_lines(st, user, "delay_ms=2000 failures=4")) == 1
    assert imap_login(st, alias, "w5", src).startswith(b"a1 NO")
    assert len(log_lines(st, alias, "delay_ms=2000 failures=4")) == 1


def test_spraying_one_address_is_slowed(st):
    """One password tried on many logins from one address: beyond
    limits.auth_address_failures (6 here) failures every login from the
    address waits, the right password too, and a success does not reset
    the count; trusted_networks are exempt, other addresses untouched."""
    user, pw = st.new_user("sprayed")
    n = len(st.users)
    src = "127.0.0.26"

    def spray(i, source):
        login = "spray%d-%d@example.test" % (n, i)
        assert imap_login(st, login, "Winter-2024", source).startswith(
            b"a1 NO [AUTHENTICATIONFAILED]")
        return login

    def held(kind):
        import urllib.request
        url = "http://%s:%s/metrics" % (st.host, st.HTTP_PORT)
        want = 'portico_frontend_auth_penalties_total{kind="%s"} ' % kind
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(want):
                    return float(line.split()[1])
        raise AssertionError("no %s in the metrics" % want)

    before = held("address"), held("login")
    logins = [spray(i, src) for i in range(6)]
    assert not [l for l in st.log("s1f1").splitlines()
                if "client=%s:" % src in l and "penalty" in l]
    # the same wrong password again on one login does not count
    assert imap_login(st, logins[0], "Winter-2024", src).startswith(b"a1 NO")
    assert imap_login(st, user, pw, src).startswith(b"a1 OK")
    assert not log_lines(st, user, "auth address penalty")
    # the seventh counted failure puts the address beyond 6
    spray(6, src)
    assert imap_login(st, user, pw, src).startswith(b"a1 OK")
    assert len(log_lines(st, user, "auth address penalty delay_ms=1000 "
                         "address_failures=7 failures=0")) == 1
    # the success did not lower the count: the next login still waits
    last = spray(7, src)
    assert len(log_lines(st, last, "auth address penalty delay_ms=1000 "
                         "address_failures=7")) == 1
    # another address, and the trusted one however much it fails, do not
    assert imap_login(st, user, pw, "127.0.0.27").startswith(b"a1 OK")
    for i in range(20, 30):
        spray(i, TRUSTED)
    assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
    assert len(log_lines(st, user, "penalty")) == 1
    # the metrics count the two logins the address held back, and the
    # pair's for the repeated password
    assert held("address") == before[0] + 2
    assert held("login") >= before[1] + 1


# -- hostile login names -------------------------------------------------------

INJECTIONS = ["*", "a*)(uid=*", "*)(objectClass=*", "\\2a"]


@pytest.mark.parametrize("login", INJECTIONS)
def test_pop3_filter_injection(st, login):
    user, pw = st.new_user("pinj")
    s, f = raw_client(st, st.POP3S_PORT, tls=True, source=TRUSTED)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (login.encode(), pw.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"-ERR [AUTH] Authentication failed")
    s.sendall(b"NOOP\r\n")
    assert f.readline().startswith(b"-ERR")   # not logged in
    s.close()


def plain(authz, authc, pw):
    return base64.b64encode(b"%s\0%s\0%s" % (authz, authc, pw))


@pytest.mark.parametrize("login", INJECTIONS)
def test_authenticate_plain_filter_injection(st, login):
    user, pw = st.new_user("ainj")
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, source=TRUSTED)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 AUTHENTICATE PLAIN " + plain(b"", login.encode(),
                                                pw.encode()) + b"\r\n")
    line = read_until_tagged(f, b"a1")[-1]
    assert line.startswith(b"a1 NO [AUTHENTICATIONFAILED]"), line
    # POP3 AUTH PLAIN too.
    p, pf = raw_client(st, st.POP3S_PORT, tls=True, source=TRUSTED)
    assert pf.readline().startswith(b"+OK")
    p.sendall(b"AUTH PLAIN " + plain(b"", login.encode(), pw.encode())
              + b"\r\n")
    assert pf.readline().startswith(b"-ERR [AUTH]")
    p.close()
    s.close()


def test_nul_bytes_in_login_names(st):
    user, pw = st.new_user("nul")
    u, p = user.encode(), pw.encode()
    # POP3 USER with a NUL: refused, never cut at the NUL.
    s, f = raw_client(st, st.POP3S_PORT, tls=True, source=TRUSTED)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER " + u + b"\0junk\r\n")
    assert f.readline().startswith(b"-ERR")
    s.sendall(b"USER " + u + b"\r\nPASS " + p + b"\0\r\n")
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"-ERR")
    s.sendall(b"NOOP\r\n")
    assert f.readline().startswith(b"-ERR")
    s.close()
    # AUTHENTICATE PLAIN: a fourth field (NUL inside a value) is malformed.
    s, f = raw_client(st, st.IMAPS_PORT, tls=True, source=TRUSTED)
    assert f.readline().startswith(b"* OK")
    resp = base64.b64encode(b"\0" + u + b"\0x\0" + p)
    s.sendall(b"a1 AUTHENTICATE PLAIN " + resp + b"\r\n")
    assert read_until_tagged(f, b"a1")[-1].startswith(b"a1 BAD")
    # AUTHENTICATE LOGIN: a user name with a NUL is malformed.
    s.sendall(b"a2 AUTHENTICATE LOGIN\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(base64.b64encode(u + b"\0*") + b"\r\n")
    assert read_until_tagged(f, b"a2")[-1].startswith(b"a2 BAD")
    # LOGIN with a NUL in a literal.
    s.sendall(b"a3 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
              % (len(u) + 2, u + b"\0*", len(p), p))
    line = read_until_tagged(f, b"a3")[-1]
    assert line.startswith(b"a3 NO") or line.startswith(b"a3 BAD"), line
    s.sendall(b"a4 NOOP\r\n")
    assert read_until_tagged(f, b"a4")[-1].startswith(b"a4 OK")
    s.close()


# -- LDAP failover ------------------------------------------------------------

def test_ldap_failover_to_the_second_uri(st):
    """The first URI points at a dead port: logins go through the second,
    at once, and the frontend logs the failover."""
    ini = st.dir / "s1f1" / "frontend.ini"
    text = ini.read_text()
    dead = "ldap://127.0.0.1:%d/" % free_port()
    new = re.sub(r"(?m)^uris = (.*)$",
                 lambda m: "uris = %s %s" % (dead, m.group(1)), text,
                 count=1)
    assert new != text
    st.stop("s1f1")
    ini.write_text(new)
    try:
        st.start("s1f1")
        user, pw = st.new_user("failover")
        for _ in range(3):
            assert imap_login(st, user, pw, TRUSTED).startswith(b"a1 OK")
        assert "ldap uri=%s error=" % dead in st.log("s1f1")
    finally:
        st.stop("s1f1")
        ini.write_text(text)
        st.start("s1f1")
