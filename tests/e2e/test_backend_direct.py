"""The backend's direct IMAP listener (backend.direct_imap_listen): for
benchmarks and tests only, off by default, loopback only; LOGIN takes a
mailbox id and the shared backend.direct_imap_password; after it, the
same IMAP engine as sessions through a frontend, on the same store."""

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, free_port, read_until_tagged, run_stack

pytestmark = pytest.mark.daemons

SECRET = "direct-secret-for-tests"
MESSAGE = (b"From: a@example.test\r\nTo: b@example.test\r\n"
           b"Subject: direct\r\n\r\nbody through the direct listener\r\n")


def backend_bin():
    build = Path(os.environ.get("PORTICO_BUILD", REPO / "build"))
    return build / "portico-backend"


def listening_ports(pid):
    """TCP ports PID listens on (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def add_user(st, user, password):
    out = run_stack("adduser", st.dir, user, password).stdout
    st.users[user] = password
    return re.search(r"mailbox (\S+) on", out).group(1)


class Direct:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")
        self.n = 0

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"d%d" % self.n
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            assert self.f.readline().startswith(b"+")
            self.sock.sendall(literal + b"\r\n")
        lines = read_until_tagged(self.f, tag)
        return lines[:-1], lines[-1][len(tag) + 1:].rstrip(b"\r\n")

    def close(self):
        self.sock.close()


def test_off_by_default(stack):
    """The default stack's backend listens on its link port and its
    metrics/health port only."""
    pid = int((stack.dir / "s1b1" / "pid").read_text())
    ini = (stack.dir / "s1b1" / "backend.ini").read_text()
    link_port = int(re.search(r"link_listen = [\d.]+:(\d+)", ini).group(1))
    http_port = int(re.search(r"http_listen = [\d.]+:(\d+)", ini).group(1))
    assert "direct_imap" not in ini
    assert listening_ports(pid) == {link_port, http_port}
    assert "direct IMAP listener" not in stack.log("s1b1")


@pytest.mark.parametrize("listen, password, message", [
    ("0.0.0.0:{port}", SECRET, "must be a loopback address"),
    ("192.0.2.1:{port}", SECRET, "must be a loopback address"),
    ("127.0.0.1:{port}", "", "needs backend.direct_imap_password"),
])
def test_refused_settings(tmp_path, listen, password, message):
    ini = tmp_path / "backend.ini"
    ini.write_text(
        "[backend]\nid = b1\nstore_dir = %s\nlink_listen = 127.0.0.1:%d\n"
        "direct_imap_listen = %s\ndirect_imap_password = %s\n"
        % (tmp_path / "store", free_port(),
           listen.format(port=free_port()), password))
    res = subprocess.run([str(backend_bin()), "-c", str(ini)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert message in res.stderr + res.stdout
    assert not (tmp_path / "store").exists()


@pytest.fixture(scope="module")
def direct_stack(stack_factory):
    port = free_port()
    st = stack_factory(name="direct", settings=[
        "backend.direct_imap_listen=127.0.0.1:%d" % port,
        "backend.direct_imap_password=" + SECRET])
    st.direct_port = port
    return st


def test_login_select_fetch(direct_stack):
    st = direct_stack
    user, pw = "direct1@example.test", "direct1-pw"
    mbid = add_user(st, user, pw)
    st.import_message(user, MESSAGE)
    d = Direct(st.direct_port)
    try:
        assert d.f.readline().startswith(b"* OK ")
        untagged, res = d.cmd(b"CAPABILITY")
        assert res.startswith(b"OK")
        assert untagged[0].startswith(b"* CAPABILITY IMAP4rev1")
        _, res = d.cmd(b"SELECT INBOX")
        assert res.startswith(b"BAD")
        # wrong password, unknown mailbox, the login name instead of the
        # mailbox id: refused, the connection stays
        _, res = d.cmd(b'LOGIN %s "wrong"' % mbid.encode())
        assert res.startswith(b"NO [AUTHENTICATIONFAILED]")
        _, res = d.cmd(b'LOGIN 00000000deadbeef "%s"' % SECRET.encode())
        assert res.startswith(b"NO [AUTHENTICATIONFAILED]")
        _, res = d.cmd(b'LOGIN "%s" "%s"' % (user.encode(), pw.encode()))
        assert res.startswith(b"NO [AUTHENTICATIONFAILED]")
        _, res = d.cmd(b"LOGIN onlyone")
        assert res.startswith(b"BAD")
        _, res = d.cmd(b'LOGIN %s "%s"' % (mbid.encode(), SECRET.encode()))
        assert res.startswith(b"OK [CAPABILITY IMAP4rev1"), res
        untagged, res = d.cmd(b"SELECT INBOX")
        assert res.startswith(b"OK [READ-WRITE]")
        assert b"* 1 EXISTS\r\n" in untagged
        untagged, res = d.cmd(b"FETCH 1 BODY.PEEK[]")
        assert res.startswith(b"OK")
        data = b"".join(untagged)
        assert data.startswith(b"* 1 FETCH (BODY[] {%d}\r\n" % len(MESSAGE))
        assert MESSAGE in data
        untagged, res = d.cmd(b"LOGOUT")
        assert res.startswith(b"OK")
        assert untagged[0].startswith(b"* BYE")
        assert d.f.readline() == b""
    finally:
        d.close()


def test_same_store_and_notifications(direct_stack):
    """An APPEND through the direct listener reaches an IDLE session
    through the frontend, and the other way round."""
    st = direct_stack
    user, pw = "direct2@example.test", "direct2-pw"
    mbid = add_user(st, user, pw)
    d = Direct(st.direct_port)
    c = st.imap(user, pw)
    try:
        d.f.readline()
        _, res = d.cmd(b'LOGIN %s "%s"' % (mbid.encode(), SECRET.encode()))
        assert res.startswith(b"OK")
        untagged, res = d.cmd(b"SELECT INBOX")
        assert b"* 0 EXISTS\r\n" in untagged
        # the frontend session appends; the direct one sees it on NOOP
        typ, _ = c.append("INBOX", None, None, MESSAGE)
        assert typ == "OK"
        untagged, res = d.cmd(b"NOOP")
        assert b"* 1 EXISTS\r\n" in untagged
        # the direct session idles; the frontend session appends
        d.n += 1
        d.sock.sendall(b"d%d IDLE\r\n" % d.n)
        assert d.f.readline().startswith(b"+")
        typ, _ = c.append("INBOX", None, None, MESSAGE)
        assert typ == "OK"
        assert d.f.readline() == b"* 2 EXISTS\r\n"
        d.sock.sendall(b"DONE\r\n")
        assert d.f.readline().startswith(b"d%d OK" % d.n)
        # the direct session appends; the frontend session sees it
        _, res = d.cmd(b"APPEND INBOX", literal=MESSAGE)
        assert res.startswith(b"OK [APPENDUID")
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        typ, data = c.fetch("3", "(BODY.PEEK[])")
        assert data[0][1] == MESSAGE
        _, res = d.cmd(b"LOGOUT")
        assert res.startswith(b"OK")
    finally:
        d.close()
        c.logout()
