"""One event loop per core: frontend.workers loops share the ports
(SO_REUSEPORT), the limits, the penalty and the authentication cache;
SIGHUP reaches every loop and SIGTERM stops them all cleanly."""

import os
import re
import signal
import socket

import pytest

from conftest import raw_client, read_until_tagged, wait_for

pytestmark = pytest.mark.daemons

WORKERS = 3


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="workers", settings=[
        "frontend.workers=%d" % WORKERS,
        "limits.max_connections_per_user=3",
        "ldap.cache_size=100",
    ])


def workers_seen(st):
    return set(re.findall(r"worker=(\d+) connected", st.log("s1f1")))


def raw_login(st, user, pw):
    """LOGIN and LOGOUT over IMAPS; the lines read."""
    s, f = raw_client(st, st.IMAPS_PORT, tls=True)
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\nb LOGOUT\r\n" % (user.encode(),
                                                    pw.encode()))
    lines = read_until_tagged(f, b"b")
    s.close()
    return lines


def login_workers(st, user):
    """The loops that authenticated user's sessions."""
    log = st.log("s1f1")
    loop = dict(re.findall(r"session=(\w+) \S+ protocol=\w+ worker=(\d+) "
                           r"connected", log))
    return {loop.get(sid) for sid in re.findall(
        r"session=(\w+) \S+ user=%s authenticated" % re.escape(user), log)}


def test_cached_logins_on_every_loop_while_ldap_is_down(st):
    """One loop's lookup of the backend's entry serves every loop: with
    LDAP stopped right after one login, a cached login succeeds on loops
    that never read the entry themselves."""
    wait_for(lambda: "workers=%d ready" % WORKERS in st.log("s1f1"),
             what="every loop to start")
    user, pw = st.new_user("loops")
    assert any(l.startswith(b"a OK") for l in raw_login(st, user, pw))
    st.stop("ldap")
    try:
        for _ in range(60):
            lines = raw_login(st, user, pw)
            assert any(l.startswith(b"a OK") for l in lines), lines
            if len(login_workers(st, user)) == WORKERS:
                break
        assert len(login_workers(st, user)) == WORKERS, \
            login_workers(st, user)
    finally:
        st.start("ldap")
    other, other_pw = st.new_user("loopsback")
    wait_for(lambda: any(l.startswith(b"a OK")
                         for l in raw_login(st, other, other_pw)),
             timeout=20, interval=0.3, what="LDAP to come back")


def test_connections_spread_over_the_loops(st):
    # (The ports accept before the last loop has started.)
    wait_for(lambda: "workers=%d ready" % WORKERS in st.log("s1f1"),
             what="every loop to start")
    user, pw = st.new_user("spread")
    for _ in range(30):
        s, f = raw_client(st, st.IMAPS_PORT, tls=True)
        assert f.readline().startswith(b"* OK")
        s.sendall(b"a LOGIN %s %s\r\nb LOGOUT\r\n" % (user.encode(),
                                                      pw.encode()))
        lines = read_until_tagged(f, b"b")
        assert any(l.startswith(b"a OK") for l in lines), lines
        s.close()
    assert len(workers_seen(st)) >= 2, workers_seen(st)
    # One cache for all loops: a single directory bind for 30 logins.
    log = st.log("s1f1")
    assert log.count("user=%s authenticated cache=miss" % user) == 1


def test_limits_are_shared_by_the_loops(st):
    user, pw = st.new_user("shared")
    held, refused = [], None
    try:
        for _ in range(12):
            s, f = raw_client(st, st.IMAPS_PORT, tls=True)
            assert f.readline().startswith(b"* OK")
            s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
            line = read_until_tagged(f, b"a")[-1]
            if line.startswith(b"a OK"):
                held.append(s)
            else:
                refused = line
                s.close()
                break
        assert len(held) == 3, (len(held), refused)
        assert refused.startswith(b"a NO [LIMIT]"), refused
    finally:
        for s in held:
            s.close()


def test_sighup_reaches_every_loop(st):
    pid = int((st.dir / "s1f1" / "pid").read_text())
    before = st.log("s1f1").count("reload: certificates loaded")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: st.log("s1f1").count("reload: certificates loaded")
             > before, what="the reload")
    for _ in range(12):
        s, f = raw_client(st, st.IMAPS_PORT, tls=True)
        assert f.readline().startswith(b"* OK")
        s.close()


def test_sigterm_says_goodbye_on_every_loop(st):
    user, pw = st.new_user("bye")
    clients = []
    for _ in range(9):
        s, f = raw_client(st, st.IMAPS_PORT, tls=True)
        assert f.readline().startswith(b"* OK")
        clients.append((s, f))
    st.stop("s1f1")
    try:
        for s, f in clients:
            s.settimeout(10)
            line = f.readline()
            assert line.startswith(b"* BYE [UNAVAILABLE]"), line
            s.close()
        log = st.log("s1f1")
        assert log.rstrip().endswith("stopped"), log[-500:]
    finally:
        st.start("s1f1")
    st.wait_for_login(user, pw)
