"""The frontend's directory over TLS: StartTLS on ldap:// (ldap.starttls)
and ldaps://, the directory's certificate verified (ldap.tls_ca_file),
the handshake driven by the event loop without blocking it, and
portico-admin reaching the directory the same way.

Stacks of their own (scripts/stack --ldap-tls): slapd offers StartTLS and
ldaps://, its certificate from the stack's CA.
"""

import imaplib
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import CMD_TIMEOUT, raw_client, read_until_tagged

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                           Path(__file__).resolve().parents[2] / "build"))

# A CA bundle without the stack's test CA.
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def starttls(stack_factory):
    return stack_factory(name="ldap-starttls", ldap_tls="starttls")


@pytest.fixture(scope="module")
def ldaps(stack_factory):
    return stack_factory(name="ldap-ldaps", ldap_tls="ldaps")


def user_binds(st):
    """(conn, ssf) of every BIND slapd logged for a user or the service
    account: what the frontend sent."""
    log = st.log("ldap")
    return re.findall(r'conn=(\d+) op=\d+ BIND dn="((?:uid|cn)=[^"]*,'
                      r'ou=(?:people|services)[^"]*)" mech=SIMPLE '
                      r'bind_ssf=\d+ ssf=(\d+)', log)


def check_encrypted(st, user, pw, scheme):
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    binds = user_binds(st)
    users = [b for b in binds if user.split("@")[0] in b[1]
             or "ou=people" in b[1]]
    assert users, st.log("ldap")[-3000:]
    # every bind the frontend made went over TLS (ssf 0 is clear text)
    assert all(int(ssf) > 0 for _, _, ssf in binds), binds
    log = st.log("s1f1")
    assert re.search(r"ldap uri=%s://127\.0\.0\.1:\d+/ conn=auth\d+ "
                     r"connected tls=TLSv1\.[23]" % scheme, log), log[-2000:]
    assert re.search(r"ldap uri=%s://127\.0\.0\.1:\d+/ conn=search\d+ "
                     r"connected tls=TLSv1\.[23]" % scheme, log), log[-2000:]


def test_starttls(starttls):
    st = starttls
    user, pw = st.new_user("starttls")
    check_encrypted(st, user, pw, "ldap")
    assert "oid=1.3.6.1.4.1.1466.20037" in st.log("ldap")


def test_ldaps(ldaps):
    st = ldaps
    user, pw = ldaps.new_user("ldaps")
    check_encrypted(st, user, pw, "ldaps")
    assert "oid=1.3.6.1.4.1.1466.20037" not in st.log("ldap")


def test_admin_over_tls(starttls, ldaps):
    """portico-admin reads the directory with the frontend's TLS
    settings (libldap's own TLS)."""
    for st in (starttls, ldaps):
        p = subprocess.run([str(BUILD / "portico-admin"), "-c",
                            str(st.dir / "s1f1/frontend.ini"), "backends"],
                           capture_output=True, text=True,
                           timeout=CMD_TIMEOUT)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "1 backends, 0 failing" in p.stdout, p.stdout


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_certificate_not_trusted(stack_factory, mode):
    """A directory whose certificate does not verify is not used: logins
    get a temporary failure, and no password goes to it."""
    st = stack_factory(name="ldap-untrusted-" + mode, ldap_tls=mode,
                       settings=["ldap.tls_ca_file=" + SYSTEM_CAS,
                                 "ldap.retry_interval=1s"])
    user, pw = st.new_user("untrusted")
    c = st.imap()
    with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
        c.login(user, pw)
    c.logout()
    log = st.log("s1f1")
    # (slapd sends its chain with the CA: "self-signed certificate in
    # certificate chain"; without it "unable to get local issuer")
    assert re.search(r'ldap uri=\S+ error="TLS: certificate of 127\.0\.0\.1:'
                     r' (self-signed certificate in certificate chain|'
                     r'unable to get local issuer certificate)"', log), \
        log[-3000:]
    assert "connected" not in "".join(
        line for line in log.splitlines() if "ldap uri=" in line), log
    assert user_binds(st) == [], user_binds(st)
    # portico-admin refuses it too
    p = subprocess.run([str(BUILD / "portico-admin"), "-c",
                        str(st.dir / "s1f1/frontend.ini"), "backends"],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert p.returncode != 0, p.stdout
    assert "portico-admin: LDAP" in p.stderr, p.stderr


def test_handshake_does_not_block_the_loop(stack_factory):
    """The first directory in ldap.uris accepts connections and never
    answers the TLS handshake: the frontend's loop goes on serving its
    clients meanwhile, the handshake times out after ldap.timeout, and
    the next URI serves the logins."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        hang = "ldaps://127.0.0.1:%d/" % silent.getsockname()[1]
        st = stack_factory(name="ldap-hang", ldap_tls="ldaps",
                           settings=["frontend.workers=1",
                                     "ldap.timeout=3s"])
        real = re.search(r"^uris = (\S+)$",
                         (st.dir / "s1f1/frontend.ini").read_text(),
                         re.M).group(1)
        # restart the frontend with the silent directory first
        st.stop("s1f1")
        ini = st.dir / "s1f1/frontend.ini"
        ini.write_text(ini.read_text().replace(
            "uris = %s" % real, "uris = %s %s" % (hang, real)))
        st.start("s1f1")
        user, pw = st.new_user("hang")
        s, f = raw_client(st, st.IMAP_PORT, timeout=10)
        assert f.readline().startswith(b"* OK")
        # a login: its search waits on the silent directory's handshake
        lg = st.imap()
        lg.sock.settimeout(30)
        result = {}

        def login():
            try:
                lg.login(user, pw)
                result["r"] = "ok"
            except imaplib.IMAP4.error as e:
                result["r"] = str(e)

        lt = threading.Thread(target=login)
        lt.start()
        time.sleep(0.5)
        # meanwhile the same loop answers another client at once
        for i in range(5):
            t0 = time.monotonic()
            s.sendall(b"n%d NOOP\r\n" % i)
            line = read_until_tagged(f, b"n%d" % i)[-1]
            assert line.startswith(b"n%d OK" % i), line
            assert time.monotonic() - t0 < 1.0
            time.sleep(0.2)
        lt.join(30)
        assert "r" in result
        s.close()
        # the silent directory was given up; the next one serves
        st.wait_for_login(user, pw, timeout=30)
        log = st.log("s1f1")
        assert re.search(r'ldap uri=%s error="TLS handshake timeout"'
                         % re.escape(hang), log), log[-3000:]
        assert held, "the frontend never connected to the silent directory"
    finally:
        stop.set()
        t.join(5)
        for c in held:
            c.close()
        silent.close()
