"""Certificates for mail clients: reloaded on SIGHUP without dropping
sessions, and chosen by SNI among several (tls.sni_dir).

The stack's frontend starts with an empty SNI directory; tests issue
certificates from the stack's own CA, drop them in place and send SIGHUP.
"""

import os
import signal
import socket
import subprocess

import pytest

from conftest import read_until_tagged, wait_for

pytestmark = pytest.mark.daemons


@pytest.fixture(scope="module")
def sni_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sni")


@pytest.fixture(scope="module")
def st(stack_factory, sni_dir):
    return stack_factory(name="tls", settings=["tls.sni_dir=%s" % sni_dir])


def issue(st, directory, stem, names):
    """A key and certificate (STEM.key, STEM.pem in DIRECTORY) for NAMES,
    signed by the stack's CA."""
    ca = st.dir / "ca"
    key, pem = directory / (stem + ".key.new"), directory / (stem + ".pem.new")
    csr, ext = directory / (stem + ".csr"), directory / (stem + ".ext")
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=%s\n" % ",".join(
                       ("IP:" if n[0].isdigit() else "DNS:") + n
                       for n in names))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True,
                                    timeout=60)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-out", str(key))
    run("openssl", "req", "-new", "-key", str(key), "-out", str(csr),
        "-subj", "/O=Portico test/CN=" + names[0])
    run("openssl", "x509", "-req", "-in", str(csr), "-CA",
        str(ca / "ca.pem"), "-CAkey", str(ca / "ca.key"), "-CAserial",
        str(ca / "ca.srl"), "-CAcreateserial", "-days", "30", "-sha256",
        "-extfile", str(ext), "-out", str(pem))
    csr.unlink()
    ext.unlink()
    # Key first, then the certificate, each replaced atomically.
    os.replace(key, directory / (stem + ".key"))
    os.replace(pem, directory / (stem + ".pem"))


def reloads(st):
    return st.log("s1f1").count("reload: certificates loaded")


def sighup(st):
    before = reloads(st)
    errors = st.log("s1f1").count("reload: certificates kept")
    pid = int((st.dir / "s1f1" / "pid").read_text())
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: reloads(st) > before or
             st.log("s1f1").count("reload: certificates kept") > errors,
             what="the frontend to reload")


def peer_cert(st, name, port=None):
    s = socket.create_connection((st.host, port or st.IMAPS_PORT),
                                 timeout=10)
    t = st.ssl_context().wrap_socket(s, server_hostname=name)
    cert = t.getpeercert()
    f = t.makefile("rb")
    assert f.readline().startswith(b"* OK")
    t.close()
    return cert


def sans(cert):
    return sorted(v for k, v in cert["subjectAltName"])


def test_sni_picks_the_certificate(st, sni_dir):
    issue(st, sni_dir, "a-mail.example.org", ["mail.example.org"])
    issue(st, sni_dir, "b-wild.example.net", ["*.example.net"])
    sighup(st)
    assert "certificates loaded count=3" in st.log("s1f1")
    assert sans(peer_cert(st, "mail.example.org")) == ["mail.example.org"]
    assert sans(peer_cert(st, "imap.example.net")) == ["*.example.net"]
    # No match (or no SNI): the default certificate.
    assert "localhost" in sans(peer_cert(st, "localhost"))
    # STARTTLS too.
    s = socket.create_connection((st.host, st.IMAP_PORT), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a STARTTLS\r\n")
    assert f.readline().startswith(b"a OK")
    t = st.ssl_context().wrap_socket(s, server_hostname="pop.example.net")
    assert sans(t.getpeercert()) == ["*.example.net"]
    # A login over it works as over any other.
    user, pw = st.new_user("sni")
    t.sendall(b"b LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    assert read_until_tagged(t.makefile("rb"), b"b")[-1].startswith(b"b OK")
    t.close()


def pop3_cert(st, name):
    s = socket.create_connection((st.host, st.POP3S_PORT), timeout=10)
    t = st.ssl_context().wrap_socket(s, server_hostname=name)
    cert = t.getpeercert()
    t.close()
    return cert


def test_sni_on_pop3(st, sni_dir):
    if not (sni_dir / "a-mail.example.org.pem").exists():
        issue(st, sni_dir, "a-mail.example.org", ["mail.example.org"])
        sighup(st)
    assert sans(pop3_cert(st, "mail.example.org")) == ["mail.example.org"]


def test_sighup_reloads_without_dropping_sessions(st):
    user, pw = st.new_user("reload")
    old = peer_cert(st, "localhost")
    # A session open across the reload.
    c = st.imap(user, pw)
    assert c.select("INBOX")[0] == "OK"
    certs = st.dir / "certs"
    saved = {n: (certs / n).read_bytes() for n in ("mail.pem", "mail.key")}
    try:
        issue(st, certs, "mail", ["localhost", "127.0.0.1"])
        sighup(st)
        new = peer_cert(st, "localhost")
        assert new["serialNumber"] != old["serialNumber"]
        # The open session did not notice.
        assert c.noop()[0] == "OK"
        assert c.select("INBOX")[0] == "OK"
        # A broken key: the reload is refused, the current set stays.
        (certs / "mail.key").write_text("not a key\n")
        sighup(st)
        assert "reload: certificates kept" in st.log("s1f1")
        assert peer_cert(st, "localhost")["serialNumber"] == \
            new["serialNumber"]
        assert c.noop()[0] == "OK"
    finally:
        for n, data in saved.items():
            (certs / n).write_bytes(data)
        sighup(st)
    c.logout()
