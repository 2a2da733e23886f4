"""Tests of scripts/stack itself: layout, environment, lifecycle."""

import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE, BOB, REPO, run_stack

PROTOS = ("IMAP", "IMAPS", "POP3", "POP3S")
REQUIRED_KEYS = ("FRONTEND_HOST", "IMAP_PORT", "IMAPS_PORT", "POP3_PORT",
                 "POP3S_PORT", "LDAP_URI", "CA_FILE", "STACK_DIR",
                 "LDAP_BASE_DN", "LDAP_ADMIN_DN", "LDAP_ADMIN_PASSWORD",
                 "SITE1_FE1_IMAP_PORT", "SITE1_FE1_IMAPS_PORT",
                 "SITE1_FE1_POP3_PORT", "SITE1_FE1_POP3S_PORT")


def accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def greeting(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=10) as s:
        s.settimeout(10)
        return s.recv(512)


def canonical(key):
    """The per-frontend name of a port key: IMAP_PORT -> SITE1_FE1_IMAP_PORT,
    SITE2_POP3_PORT -> SITE2_FE1_POP3_PORT; other keys unchanged."""
    m = re.fullmatch(r"(IMAP|IMAPS|POP3|POP3S|HTTP|HTTPS|SUBMISSION|"
                     r"SUBMISSIONS|LMTP)_PORT", key)
    if m:
        return "SITE1_FE1_%s_PORT" % m.group(1)
    m = re.fullmatch(r"SITE(\d+)_(IMAP|IMAPS|POP3|POP3S|HTTP|HTTPS|"
                     r"SUBMISSION|SUBMISSIONS|LMTP)_PORT", key)
    if m:
        return "SITE%s_FE1_%s_PORT" % (m.group(1), m.group(2))
    return key


def check_ports(env):
    """Every *_PORT is a port number; keys sharing a port are aliases."""
    by_port = {}
    for key, value in env.items():
        if key.endswith("_PORT"):
            assert isinstance(value, int) and 0 < value < 65536, key
            by_port.setdefault(value, set()).add(canonical(key))
    for port, names in by_port.items():
        assert len(names) == 1, "port %d used by %s" % (port, sorted(names))
    return set(by_port)


def stack_pids(directory):
    """Processes whose command line mentions DIRECTORY."""
    d = str(Path(directory).resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if d.encode() in cmd and state != "Z":
            pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------------------
# without daemons

def test_help_documents_every_command():
    out = run_stack("--help").stdout
    for cmd in ("up", "run", "down", "stop", "start", "adduser", "import",
                "status"):
        assert re.search(r"\b%s\b" % cmd, out), cmd
    for cmd in ("up", "run", "down", "stop", "start", "adduser", "import"):
        assert run_stack(cmd, "--help").returncode == 0


def test_usage_error_is_one_line():
    p = run_stack("frobnicate", check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith("stack: error:")


def test_commands_on_missing_dir_fail_cleanly(tmp_path):
    missing = tmp_path / "nothing-here"
    for args in (("stop", missing, "ldap"), ("start", missing, "s1b1"),
                 ("adduser", missing, "x@example.test", "pw"),
                 ("import", missing, "x@example.test", __file__)):
        p = run_stack(*args, check=False)
        assert p.returncode == 1, args
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("stack: error:"), \
            p.stderr
    # down of nothing is not an error
    assert run_stack("down", missing).returncode == 0


def test_schema_loads_in_slapd(tmp_path):
    conf = tmp_path / "slapd.conf"
    (tmp_path / "data").mkdir()
    conf.write_text(
        "include /etc/ldap/schema/core.schema\n"
        "include /etc/ldap/schema/cosine.schema\n"
        "include /etc/ldap/schema/inetorgperson.schema\n"
        "include %s\n"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        "database mdb\nsuffix dc=example,dc=test\n"
        "directory %s\n" % (REPO / "config/ldap/portico.schema",
                            tmp_path / "data"))
    p = subprocess.run(["/usr/sbin/slaptest", "-u", "-f", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------------------
# with daemons

@pytest.mark.daemons
def test_env_has_every_key_with_distinct_ports(stack):
    for key in REQUIRED_KEYS:
        assert key in stack, key
    assert stack.FRONTEND_HOST == "127.0.0.1"
    assert Path(stack.STACK_DIR) == stack.dir.resolve()
    assert Path(stack.CA_FILE).is_file()
    assert stack.LDAP_URI.startswith("ldap://127.0.0.1:")
    ports = check_ports(stack.env)
    assert len(ports) >= 5       # ldap, backend link, 4 frontend ports
    assert stack.IMAP_PORT == stack.SITE1_FE1_IMAP_PORT
    assert stack.IMAPS_PORT == stack.port("imaps")
    # stack.env is shell-sourceable
    out = subprocess.run(
        ["bash", "-c", 'set -eu; . "$1"; echo "$IMAPS_PORT $LDAP_BASE_DN"',
         "-", str(stack.dir / "stack.env")],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(stack.IMAPS_PORT), stack.LDAP_BASE_DN]


@pytest.mark.daemons
def test_every_frontend_port_answers(stack):
    assert greeting(stack.IMAP_PORT).startswith(b"* OK")
    assert greeting(stack.POP3_PORT).startswith(b"+OK")
    for port, hello in ((stack.IMAPS_PORT, b"* OK"),
                        (stack.POP3S_PORT, b"+OK")):
        ctx = stack.ssl_context()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.settimeout(10)
                assert t.recv(512).startswith(hello)


@pytest.mark.daemons
def test_certificate_is_checked_against_the_stack_ca(stack):
    # the system trust store does not know the test CA
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", stack.IMAPS_PORT),
                                  timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(s, server_hostname="localhost")


@pytest.mark.daemons
def test_imported_messages_are_in_alice_inbox(stack):
    c = stack.imap(*ALICE)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 2
    finally:
        c.logout()
    c = stack.imap(*BOB)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 0
    finally:
        c.logout()


@pytest.mark.daemons
def test_import_message_helper_takes_bytes(stack):
    user, password = stack.new_user("importer")
    msg = (b"From: a@example.org\r\nTo: %s\r\nSubject: bytes\r\n"
           b"Message-ID: <bytes-1@example.org>\r\n\r\nbody\r\n"
           % user.encode())
    out = stack.import_message(user, msg, mailbox="Archive")
    assert "imported 1" in out
    c = stack.imap(user, password)
    try:
        typ, data = c.select("Archive", readonly=True)
        assert typ == "OK" and int(data[0]) == 1
    finally:
        c.logout()


@pytest.mark.daemons
def test_adduser_of_existing_user_fails_clearly(stack):
    p = run_stack("adduser", stack.dir, ALICE[0], "other", check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "already exists" in lines[0] and ALICE[0] in lines[0]
    # alice's password is unchanged
    stack.imap(*ALICE).logout()


@pytest.mark.daemons
def test_adduser_on_unknown_backend_fails_clearly(stack):
    for opts in (("--site", "9"), ("--backend", "7")):
        p = run_stack("adduser", stack.dir, "nobody@example.test", "pw",
                      *opts, check=False)
        assert p.returncode != 0
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "no backend" in lines[0], p.stderr


@pytest.mark.daemons
def test_import_for_unknown_user_fails_clearly(stack):
    p = run_stack("import", stack.dir, "ghost@example.test",
                  REPO / "tests/e2e/data/plain.eml", check=False)
    assert p.returncode != 0
    assert "ghost@example.test" in p.stderr.strip().splitlines()[-1]


@pytest.mark.daemons
def test_stop_and_start_a_backend(stack):
    port = stack.SITE1_BE1_LINK_PORT
    stack.stop("s1b1")
    try:
        assert not accepts(port)
    finally:
        stack.start("s1b1")
    assert accepts(port)
    # the frontend finds the backend again by itself
    stack.wait_for_login(*ALICE)


@pytest.mark.daemons
def test_stop_and_start_ldap(stack):
    port = int(stack.LDAP_URI.rstrip("/").rsplit(":", 1)[1])
    stack.stop("ldap")
    try:
        assert not accepts(port)
        # a second stop is harmless
        stack.stop("ldap")
    finally:
        stack.start("ldap")
    assert accepts(port)
    # data survived the restart: alice still exists
    p = run_stack("adduser", stack.dir, ALICE[0], "x", check=False)
    assert "already exists" in p.stderr
    # and the frontend uses LDAP again by itself
    stack.wait_for_login(*ALICE)


@pytest.mark.daemons
def test_stop_unknown_service_fails(stack):
    p = run_stack("stop", stack.dir, "s9b9", check=False)
    assert p.returncode != 0 and "s9b9" in p.stderr


@pytest.mark.daemons
def test_two_stacks_run_side_by_side(stack, stack_factory):
    other = stack_factory("second")
    try:
        ports = check_ports(stack.env)
        other_ports = check_ports(other.env)
        assert not ports & other_ports
        assert other.CA_FILE != stack.CA_FILE
        for st in (stack, other):
            assert greeting(st.IMAP_PORT).startswith(b"* OK")
        other.add_user(*ALICE)      # the same login, another directory
        other.imap(*ALICE).logout()
    finally:
        other.down()
    # stopping the second stack left the first alone
    stack.imap(*ALICE).logout()


@pytest.mark.daemons
def test_down_leaves_no_process_behind(stack_factory):
    st = stack_factory("downtest")
    assert stack_pids(st.dir), "nothing of the stack is running"
    p = run_stack("down", st.dir)
    assert p.returncode == 0
    assert stack_pids(st.dir) == []
    assert not list(st.dir.glob("*/pid"))
    for key, port in st.env.items():
        if key.endswith("_PORT"):
            assert not accepts(port), key
    # idempotent
    assert run_stack("down", st.dir).returncode == 0


@pytest.mark.daemons
def test_two_sites_write_site2_variables(stack_factory):
    st = stack_factory("sites", sites=2, frontends_per_site=2)
    try:
        for proto in PROTOS:
            assert "SITE2_%s_PORT" % proto in st
            assert st["SITE2_%s_PORT" % proto] == \
                st["SITE2_FE1_%s_PORT" % proto]
            for site in (1, 2):
                for fe in (1, 2):
                    assert "SITE%d_FE%d_%s_PORT" % (site, fe, proto) in st
            assert "SITE1_%s_PORT" % proto not in st
        assert "SITE3_IMAP_PORT" not in st
        assert "SITE2_BE1_LINK_PORT" in st
        check_ports(st.env)
        assert greeting(st.SITE2_IMAP_PORT).startswith(b"* OK")
        assert greeting(st.SITE2_FE2_POP3_PORT).startswith(b"+OK")
        # a user of site 1 logs in through site 2 and vice versa
        u1, p1 = st.new_user("siteone", site=1)
        u2, p2 = st.new_user("sitetwo", site=2)
        st.imap(u1, p1, site=2).logout()
        st.imap(u2, p2, site=1, frontend=2).logout()
    finally:
        st.down()
