"""Connectivity probes (issue #7 point 5): the portico-probe CLI against a
real stack, and the probes a frontend runs on a schedule (settings
[probe]) with their results in /metrics and the log.

The CLI runs against the session's stack (STARTTLS and implicit TLS on
IMAP, POP3 and submission; plain-text logins refused) and against a
two-site stack started here with plain-text logins allowed and

    probe.interval = 1, probe.users = <one account per site>,
    probe.password_file = <a line for one account, a shared password>

so that its frontends probe every site's backend each second.
"""

import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import DATA, SANITIZER_MARKS, free_port, wait_for

pytestmark = pytest.mark.daemons

BUILD = Path(os.environ.get("PORTICO_BUILD",
                            Path(__file__).resolve().parents[2] / "build"))
PROBE = BUILD / "portico-probe"

# The steps each probe makes, in order, by protocol and TLS mode.
STEPS = {
    ("imap", "implicit"): ["connect", "tls", "greeting", "login", "select",
                           "fetch", "logout"],
    ("imap", "starttls"): ["connect", "greeting", "starttls", "tls",
                           "login", "select", "fetch", "logout"],
    ("imap", "none"): ["connect", "greeting", "login", "select", "fetch",
                       "logout"],
    ("pop3", "implicit"): ["connect", "tls", "greeting", "login", "stat",
                           "top", "logout"],
    ("pop3", "starttls"): ["connect", "greeting", "starttls", "tls",
                           "login", "stat", "top", "logout"],
    ("pop3", "none"): ["connect", "greeting", "login", "stat", "top",
                       "logout"],
    ("submission", "implicit"): ["connect", "tls", "greeting", "ehlo",
                                 "login", "mail", "rcpt", "data",
                                 "logout"],
    ("submission", "starttls"): ["connect", "greeting", "ehlo", "starttls",
                                 "tls", "ehlo", "login", "mail", "rcpt",
                                 "data", "logout"],
    ("submission", "none"): ["connect", "greeting", "ehlo", "login", "mail",
                             "rcpt", "data", "logout"],
}
LIGHT = {
    "imap": ["connect", "tls", "greeting", "login", "logout"],
    "pop3": ["connect", "tls", "greeting", "login", "logout"],
    "submission": ["connect", "tls", "greeting", "ehlo", "login", "logout"],
}
PORT_NAME = {("imap", "implicit"): "imaps", ("imap", "starttls"): "imap",
             ("imap", "none"): "imap",
             ("pop3", "implicit"): "pop3s", ("pop3", "starttls"): "pop3",
             ("pop3", "none"): "pop3",
             ("submission", "implicit"): "submissions",
             ("submission", "starttls"): "submission",
             ("submission", "none"): "submission"}

STEP_LINE = re.compile(r"^step=(\w+) (ok|FAIL) (\d+\.\d) ms(?: (.*))?$")


class Run:
    """One portico-probe run: exit status, steps, verdict line."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        lines = proc.stdout.splitlines()
        self.header = lines[0] if lines else ""
        self.steps = []       # (name, ok, detail)
        self.verdict = ""
        for line in lines[1:]:
            m = STEP_LINE.match(line)
            if m:
                self.steps.append((m.group(1), m.group(2) == "ok",
                                   m.group(4) or ""))
            else:
                self.verdict = line

    def names(self):
        return [s[0] for s in self.steps]

    def detail(self, step):
        return [d for n, ok, d in self.steps if n == step][-1]

    def __repr__(self):
        return "rc=%d\n%s%s" % (self.rc, self.out, self.err)


def probe(st, protocol, tls, user, password_file, port=None, site=1,
          extra=(), ca=True, host=None, env=None):
    if port is None:
        port = st.port(PORT_NAME[(protocol, tls)], site)
    argv = [str(PROBE), "--host", host or st.host, "--port", str(port),
            "--protocol", protocol, "--tls", tls, "--user", user,
            "--password-file", str(password_file), "--timeout", "20"]
    if tls != "none" and ca:
        argv += ["--ca", st["CA_FILE"]]
    argv += list(extra)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)
    # the test build runs under ASan and UBSan: the CLI too
    assert not any(m in proc.stderr for m in SANITIZER_MARKS), proc.stderr
    return Run(proc)


def password_file(st, user, password):
    path = st.dir / ("probe-pw-" + user.replace("@", "_"))
    path.write_text(password + "\n")
    return path


def imap_messages(st, user, password, site=1):
    """[(RFC822.SIZE, X-Portico-Probe value)] of USER's INBOX."""
    c = st.imap(user, password, site=site)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        n = int(data[0])
        if n == 0:
            return []
        typ, data = c.fetch("1:%d" % n, "(RFC822.SIZE BODY.PEEK[HEADER."
                            "FIELDS (X-PORTICO-PROBE)])")
        assert typ == "OK", data
        out = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            size = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
            m = re.search(rb"X-Portico-Probe: (\S+)", item[1], re.I)
            out.append((size, m.group(1).decode() if m else None))
        return out
    finally:
        c.logout()


@pytest.fixture(scope="module")
def account(stack):
    """An account of the session stack with one message in its INBOX."""
    user, password = stack.new_user("probe")
    stack.import_message(user, DATA / "plain.eml")
    return user, password, password_file(stack, user, password)


# ---- the CLI ----------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["imap", "pop3", "submission"])
@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_cli_passes(stack, account, protocol, tls):
    user, password, pwfile = account
    before = imap_messages(stack, user, password)
    r = probe(stack, protocol, tls, user, pwfile)
    assert r.rc == 0, r
    assert r.header == ("probe protocol=%s host=%s port=%d tls=%s user=%s "
                        "mode=full" % (protocol, stack.host,
                                       stack.port(PORT_NAME[(protocol,
                                                             tls)]),
                                       tls, user)), r
    assert r.names() == STEPS[(protocol, tls)], r
    assert all(ok for _, ok, _ in r.steps), r
    assert re.fullmatch(r"PASS total \d+\.\d ms", r.verdict), r
    assert r.detail("tls").startswith("TLSv1."), r
    newest = before[-1][0]
    if protocol == "imap":
        assert r.detail("select") == "%d message%s" % (
            len(before), "" if len(before) == 1 else "s"), r
        # the whole newest message, as its RFC822.SIZE says
        assert r.detail("fetch") == "message %d, %d octets" % (
            len(before), newest), r
    elif protocol == "pop3":
        assert r.detail("stat") == "%d message%s" % (
            len(before), "" if len(before) == 1 else "s"), r
        assert r.detail("top").startswith("message %d, " % len(before)), r
    else:
        # the probe message reaches the account's INBOX, marked
        assert re.fullmatch(r"\d+ octets", r.detail("data")), r
        after = wait_for(
            lambda: (lambda m: m if len(m) == len(before) + 1 else None)(
                imap_messages(stack, user, password)),
            timeout=20, what="the probe message in the INBOX")
        assert after[-1][1] == "portico-probe", after


@pytest.mark.parametrize("protocol", ["imap", "pop3", "submission"])
def test_cli_light_only_logs_in(stack, account, protocol):
    user, password, pwfile = account
    r = probe(stack, protocol, "implicit", user, pwfile, extra=["--light"])
    assert r.rc == 0, r
    assert r.header.endswith(" mode=light"), r
    assert r.names() == LIGHT[protocol], r
    assert r.verdict.startswith("PASS "), r


def test_cli_cleanup_deletes_older_probe_messages(stack):
    """--cleanup: the probe messages (X-Portico-Probe) but the newest
    message go; other messages stay."""
    user, password = stack.new_user("probe-clean")
    stack.import_message(user, DATA / "plain.eml")
    pwfile = password_file(stack, user, password)
    for i in range(3):
        r = probe(stack, "submission", "implicit", user, pwfile)
        assert r.rc == 0, r
        wait_for(lambda: len(imap_messages(stack, user, password)) == 2 + i,
                 timeout=20, what="probe message %d" % (i + 1))
    before = imap_messages(stack, user, password)
    assert [tag for _, tag in before] == [None] + ["portico-probe"] * 3
    r = probe(stack, "imap", "starttls", user, pwfile, extra=["--cleanup"])
    assert r.rc == 0, r
    assert r.names() == ["connect", "greeting", "starttls", "tls", "login",
                         "select", "fetch", "cleanup", "logout"], r
    assert r.detail("cleanup") == "2 probe messages deleted", r
    assert imap_messages(stack, user, password) == [before[0], before[-1]]
    # again: nothing left to delete but the newest
    r = probe(stack, "imap", "implicit", user, pwfile, extra=["--cleanup"])
    assert r.rc == 0, r
    assert r.detail("cleanup") == "0 probe messages deleted", r
    assert imap_messages(stack, user, password) == [before[0], before[-1]]


def test_cli_wrong_password_fails_at_login(stack):
    user, _ = stack.new_user("probe-wrong")
    bad = password_file(stack, user, "not-the-password")
    r = probe(stack, "imap", "implicit", user, bad)
    assert r.rc == 1, r
    assert r.names() == ["connect", "tls", "greeting", "login"], r
    assert [ok for _, ok, _ in r.steps] == [True, True, True, False], r
    assert re.fullmatch(r'FAIL step=login reason="NO \[AUTHENTICATIONFAILED'
                        r'\] Authentication failed\." total \d+\.\d ms',
                        r.verdict), r
    r = probe(stack, "submission", "implicit", user, bad)
    assert r.rc == 1, r
    assert r.verdict.startswith('FAIL step=login reason="535 5.7.8 '), r


def test_cli_pop3_tries_again_while_the_maildrop_is_locked(stack):
    """Another POP3 session holds the maildrop ([IN-USE], RFC 2449): the
    probe logs in again after a pause, up to three times, and passes once
    the lock is gone; a lock held longer fails it with the server's
    answer."""
    user, password = stack.new_user("probe-inuse")
    pwfile = password_file(stack, user, password)
    holder = stack.pop3(user, password)
    timer = threading.Timer(0.2, holder.quit)
    timer.start()
    try:
        r = probe(stack, "pop3", "implicit", user, pwfile)
    finally:
        timer.join()
    assert r.rc == 0, r
    assert re.fullmatch(r"mailbox in use [123] times?, tried again",
                        r.detail("login")), r
    holder = stack.pop3(user, password)
    try:
        r = probe(stack, "pop3", "implicit", user, pwfile)
    finally:
        holder.quit()
    assert r.rc == 1, r
    assert r.verdict.startswith('FAIL step=login reason="-ERR [IN-USE] '), r
    # without the lock, a plain pass
    r = probe(stack, "pop3", "implicit", user, pwfile)
    assert r.rc == 0 and r.detail("login") == "", r


def test_cli_plaintext_refused_names_the_login_step(stack, account):
    """The session stack's login type is secure: without TLS the server's
    refusal is the verdict."""
    user, _, pwfile = account
    r = probe(stack, "imap", "none", user, pwfile)
    assert r.rc == 1, r
    assert r.names() == ["connect", "greeting", "login"], r
    assert r.verdict.startswith(
        'FAIL step=login reason="NO [PRIVACYREQUIRED] Plain-text login is '
        'disabled on connections without TLS; use STARTTLS."'), r
    r = probe(stack, "pop3", "none", user, pwfile)
    assert r.rc == 1, r
    assert r.verdict.startswith('FAIL step=login reason="-ERR [AUTH] '), r


def test_cli_closed_port_fails_at_connect(stack, account):
    user, _, pwfile = account
    r = probe(stack, "imap", "implicit", user, pwfile, port=free_port())
    assert r.rc == 1, r
    assert r.names() == ["connect"], r
    assert re.fullmatch(r'FAIL step=connect reason="connection refused" '
                        r'total \d+\.\d ms', r.verdict), r


# nss_wrapper (Debian's libnss-wrapper, from scripts/deps.sh) gives the
# probe's getaddrinfo() a hosts file of the test's own.
NSS_WRAPPER = Path("/usr/lib/x86_64-linux-gnu/libnss_wrapper.so")


def named_hosts(tmp_path, *addresses):
    """An environment in which probe.test resolves to ADDRESSES, in order."""
    assert NSS_WRAPPER.exists(), "libnss-wrapper missing: run scripts/deps.sh"
    hosts = tmp_path / "hosts"
    hosts.write_text("".join("%s probe.test\n" % a for a in addresses))
    supp = tmp_path / "lsan.supp"
    supp.write_text("leak:libnss_wrapper.so\n")
    env = dict(os.environ)
    env.update(LD_PRELOAD=str(NSS_WRAPPER), NSS_WRAPPER_HOSTS=str(hosts),
               NSS_WRAPPER_PASSWD="/etc/passwd",
               NSS_WRAPPER_GROUP="/etc/group",
               LSAN_OPTIONS="suppressions=%s" % supp)
    # the sanitizer runtime is then not the first library loaded
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":verify_asan_link_order=0").lstrip(":")
    return env


def test_cli_tries_each_address_of_the_name(stack, account, tmp_path):
    """A name with several addresses (a service name in front of several
    frontends, or localhost with ::1 first): one that refuses the
    connection gets a line of its own and the next is tried; the verdict
    is the first that answers.  With none answering, the last one's."""
    user, _, pwfile = account
    port = stack.port("imaps")
    env = named_hosts(tmp_path, "127.0.0.2", stack.host)
    r = probe(stack, "imap", "implicit", user, pwfile, host="probe.test",
              env=env, extra=["--tls-name", stack.host])
    assert r.rc == 0, r
    assert r.out.splitlines()[1] == (
        "connect to 127.0.0.2:%d failed (connection refused); trying "
        "%s:%d" % (port, stack.host, port)), r
    assert r.names() == STEPS["imap", "implicit"], r
    assert r.verdict.startswith("PASS total "), r
    env = named_hosts(tmp_path, "127.0.0.2", "127.0.0.3")
    r = probe(stack, "imap", "implicit", user, pwfile, host="probe.test",
              env=env, extra=["--tls-name", stack.host])
    assert r.rc == 1, r
    assert r.out.splitlines()[1] == (
        "connect to 127.0.0.2:%d failed (connection refused); trying "
        "127.0.0.3:%d" % (port, port)), r
    assert r.names() == ["connect"], r
    assert re.fullmatch(r'FAIL step=connect reason="connection refused" '
                        r'total \d+\.\d ms', r.verdict), r


def test_cli_certificate_checked(stack, account):
    user, _, pwfile = account
    # the system's CAs do not know the stack's CA
    r = probe(stack, "imap", "implicit", user, pwfile, ca=False)
    assert r.rc == 1, r
    assert r.names() == ["connect", "tls"], r
    assert r.verdict.startswith('FAIL step=tls reason="TLS handshake '
                                'failed: '), r
    assert "certificate verify failed" in r.verdict, r
    r = probe(stack, "pop3", "starttls", user, pwfile,
              extra=["--tls-name", "other.example.org"])
    assert r.rc == 1, r
    assert r.names() == ["connect", "greeting", "starttls", "tls"], r
    assert "(certificate: hostname mismatch)" in r.verdict, r
    r = probe(stack, "imap", "implicit", user, pwfile, ca=False,
              extra=["--no-verify", "--light"])
    assert r.rc == 0, r


def test_cli_usage(stack, account, tmp_path):
    user, _, pwfile = account
    for argv in ([], ["--host", "127.0.0.1"],
                 ["--host", "127.0.0.1", "--protocol", "nntp", "--tls",
                  "none", "--user", user, "--password-file", str(pwfile)],
                 ["--host", "127.0.0.1", "--protocol", "imap", "--tls",
                  "maybe", "--user", user, "--password-file", str(pwfile)],
                 ["--host", "127.0.0.1", "--protocol", "imap", "--tls",
                  "none", "--user", user, "--password-file",
                  str(tmp_path / "missing")]):
        p = subprocess.run([str(PROBE)] + argv, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        assert "PASS" not in p.stdout and "FAIL" not in p.stdout


# ---- the schedule -----------------------------------------------------------

SITE_USERS = {1: ("probe-s1@example.test", "site-one-password"),
              2: ("probe-s2@example.test", "shared password")}


@pytest.fixture(scope="module")
def sched(stack_factory, tmp_path_factory):
    pw = tmp_path_factory.mktemp("probe-pw") / "passwords"
    # a line for the site 1 account, a shared password for the others
    pw.write_text("%s %s\n%s\n" % (SITE_USERS[1][0], SITE_USERS[1][1],
                                   SITE_USERS[2][1]))
    st = stack_factory(name="probe", sites=2, settings=[
        "frontend.imap_login_type=plaintext",
        "frontend.pop3_login_type=plaintext",
        "frontend.smtp_login_type=plaintext",
        "probe.interval=1",
        "probe.timeout=10",
        "probe.users=%s %s" % (SITE_USERS[1][0], SITE_USERS[2][0]),
        "probe.password_file=%s" % pw,
    ])
    for site, (user, password) in SITE_USERS.items():
        st.add_user(user, password, site=site)
    return st


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def probe_metrics(st):
    """{(name, frozenset(labels)): value} of the portico_probe_ samples of
    s1f1's /metrics."""
    url = "http://%s:%d/metrics" % (st.host, st.port("http"))
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1).startswith("portico_probe_"):
            labels = frozenset(LABEL.findall(m.group(2)))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def success(metrics, protocol, user, backend):
    return metrics.get(("portico_probe_success", frozenset(
        {("protocol", protocol), ("user", user), ("backend", backend)})))


def last_run(metrics, protocol, user):
    return metrics.get(("portico_probe_last_run_timestamp_seconds",
                        frozenset({("protocol", protocol),
                                   ("user", user)})))


PROTOCOLS = ("imap", "pop3", "submission")


def all_success(st, want):
    """The metrics once every (protocol, user) has success WANT[site]."""
    m = probe_metrics(st)
    for site, (user, _) in SITE_USERS.items():
        for p in PROTOCOLS:
            if success(m, p, user, "s%db1" % site) != want[site]:
                return None
    return m


def test_cli_plaintext_passes_where_allowed(sched):
    """Without TLS where plain-text logins are allowed; an empty INBOX is
    a pass with nothing to fetch."""
    user, password = sched.new_user("probe-plain", site=2)
    pwfile = password_file(sched, user, password)
    r = probe(sched, "imap", "none", user, pwfile)
    assert r.rc == 0, r
    assert r.names() == ["connect", "greeting", "login", "select",
                         "logout"], r
    assert r.detail("select") == "0 messages", r
    r = probe(sched, "pop3", "none", user, pwfile)
    assert r.rc == 0, r
    assert r.names() == ["connect", "greeting", "login", "stat",
                         "logout"], r
    assert r.detail("stat") == "0 messages", r
    r = probe(sched, "submission", "none", user, pwfile)
    assert r.rc == 0, r
    assert r.names() == STEPS[("submission", "none")], r
    wait_for(lambda: imap_messages(sched, user, password, site=2),
             timeout=20, what="the probe message")
    for protocol in ("imap", "pop3"):
        r = probe(sched, protocol, "none", user, pwfile)
        assert r.rc == 0, r
        assert r.names() == STEPS[(protocol, "none")], r


def test_schedule_probes_every_site_and_sees_a_backend_go(sched):
    m = wait_for(lambda: all_success(sched, {1: 1, 2: 1}), timeout=30,
                 what="probe_success 1 for both sites' accounts")
    for site, (user, _) in SITE_USERS.items():
        for p in PROTOCOLS:
            key = ("portico_probe_duration_seconds", frozenset(
                {("protocol", p), ("user", user), ("step", "total")}))
            assert m[key] > 0, key
            key = ("portico_probe_duration_seconds", frozenset(
                {("protocol", p), ("user", user), ("step", "login")}))
            assert key in m
    runs = {p: m[("portico_probe_runs_total", frozenset(
        {("protocol", p), ("result", "pass")}))] for p in PROTOCOLS}
    assert all(n >= 2 for n in runs.values()), runs
    # the scheduled submissions reached the accounts, marked with the
    # frontend's name
    user, password = SITE_USERS[2]
    msgs = wait_for(lambda: [x for x in imap_messages(sched, user, password,
                                                      site=2)
                             if x[1] in ("s1f1", "s2f1")],
                    timeout=20, what="a scheduled probe message")
    assert msgs
    # probe.cleanup (default yes): the IMAP probes delete older ones
    wait_for(lambda: re.search(r"probe protocol=imap tls=starttls "
                               r"user=probe-s2@example\.test backend=s2b1 "
                               r"result=pass duration_ms=\S+ "
                               r"steps_ms=\S+,cleanup:", sched.log("s1f1")),
             timeout=20, what="a scheduled IMAP probe with its cleanup")

    sched.stop("s2b1")
    try:
        stopped = time.time()
        m = wait_for(lambda: all_success(sched, {1: 1, 2: 0}), timeout=30,
                     what="probe_success 0 for the site 2 account")
        # and site 1's account keeps passing in rounds after the stop
        user1 = SITE_USERS[1][0]
        m = wait_for(lambda: (lambda mm: mm if all(
            last_run(mm, p, user1) > stopped + 1 for p in PROTOCOLS)
            else None)(probe_metrics(sched)), timeout=30,
            what="site 1 probes after the stop")
        for p in PROTOCOLS:
            assert success(m, p, user1, "s1b1") == 1, p
            assert success(m, p, SITE_USERS[2][0], "s2b1") == 0, p
        fails = m[("portico_probe_runs_total", frozenset(
            {("protocol", "imap"), ("result", "fail")}))]
        assert fails >= 1
        log = sched.log("s1f1")
        assert ('probe protocol=imap tls=starttls user=probe-s2@example.test '
                'backend=s2b1 result=fail step=login reason="NO '
                '[UNAVAILABLE] Mailbox server unavailable"') in log, log[-3000:]
        assert ('probe protocol=submission tls=starttls '
                'user=probe-s2@example.test backend=s2b1 result=fail '
                'step=data reason="451 4.4.1 Mailbox server unavailable; '
                'try again later"') in log, log[-3000:]

        # the CLI says the same about the stopped backend
        user, password = SITE_USERS[2]
        pwfile = password_file(sched, user, password)
        r = probe(sched, "imap", "starttls", user, pwfile)
        assert r.rc == 1, r
        assert r.verdict.startswith('FAIL step=login reason="NO '
                                    '[UNAVAILABLE] Mailbox server '
                                    'unavailable"'), r
        r = probe(sched, "pop3", "implicit", user, pwfile)
        assert r.rc == 1, r
        assert r.verdict.startswith('FAIL step=login reason="-ERR '
                                    '[SYS/TEMP] Mailbox server '
                                    'unavailable"'), r
        r = probe(sched, "submission", "implicit", user, pwfile)
        assert r.rc == 1, r
        assert r.names()[-1] == "data", r
        assert r.verdict.startswith('FAIL step=data reason="451 4.4.1 '), r
    finally:
        sched.start("s2b1")
    wait_for(lambda: all_success(sched, {1: 1, 2: 1}), timeout=30,
             what="probe_success back to 1 after the backend's return")


def test_schedule_follows_a_moved_listener(sched):
    """A reload that moves the listener a protocol is probed through: the
    next rounds probe it at its new address and pass; a protocol left
    without a listener is no longer probed, and is again once it has
    one."""
    import signal
    user = SITE_USERS[1][0]
    wait_for(lambda: all_success(sched, {1: 1, 2: 1}), timeout=30,
             what="probe_success 1 before the move")
    moved = free_port()
    ini = sched.dir / "s1f1" / "frontend.ini"
    original = ini.read_text()
    fails_before = probe_metrics(sched).get(("portico_probe_runs_total",
                                             frozenset({("protocol", "imap"),
                                                        ("result", "fail")})),
                                            0)
    try:
        ini.write_text(original + "\n[frontend]\nimap_listen = "
                       "127.0.0.1:%d\npop3_listen =\npop3s_listen =\n"
                       % moved)
        before = len(sched.log("s1f1"))
        os.kill(int((sched.dir / "s1f1" / "pid").read_text()),
                signal.SIGHUP)
        wait_for(lambda: "listening protocol=imap address=127.0.0.1:%d"
                 % moved in sched.log("s1f1")[before:], timeout=20,
                 what="the IMAP listener moved")
        moved_at = time.time()
        m = wait_for(lambda: (lambda mm: mm if last_run(
            mm, "imap", user) > moved_at + 1 else None)(
                probe_metrics(sched)), timeout=30,
            what="an IMAP probe after the move")
        assert success(m, "imap", user, "s1b1") == 1
        assert m.get(("portico_probe_runs_total", frozenset(
            {("protocol", "imap"), ("result", "fail")})), 0) == fails_before
        # POP3 has no listener now: not probed, and not in the metrics
        assert "probe protocol=pop3 skipped since the reload: no " \
            "listener" in sched.log("s1f1")[before:]
        assert not any(("protocol", "pop3") in labels
                       for name, labels in m
                       if name == "portico_probe_runs_total"), m
    finally:
        ini.write_text(original)
        before = len(sched.log("s1f1"))
        os.kill(int((sched.dir / "s1f1" / "pid").read_text()),
                signal.SIGHUP)
        wait_for(lambda: "no longer listening on 127.0.0.1:%d" % moved
                 in sched.log("s1f1")[before:], timeout=20,
                 what="the IMAP listener back")
    # its listeners back, POP3 is probed again, and passes
    back_at = time.time()
    m = wait_for(lambda: (lambda mm: mm if (last_run(mm, "pop3", user) or 0)
                          > back_at + 1 else None)(probe_metrics(sched)),
                 timeout=30, what="a POP3 probe after the listeners' return")
    assert success(m, "pop3", user, "s1b1") == 1

def test_frontend_check_names_bad_probe_settings(tmp_path):
    """portico-frontend -t (and so start and reloads) refuses [probe]
    settings that cannot work, naming the setting."""
    base = ("[frontend]\nimap_listen = 127.0.0.1:%d\n[probe]\n"
            % free_port())
    cases = {
        "interval = 10s\nusers = a@example.test\n"
        "password_file = /nonexistent\nprotocols = imap nntp\n":
            "probe.protocols: unknown protocol 'nntp' (imap, pop3, "
            "submission)",
        "interval = 10s\npassword_file = /nonexistent\n":
            "probe.users: empty, but probe.interval is set",
        "interval = 10s\nusers = a@example.test\n":
            "probe.password_file: empty, but probe.interval is set",
        # off: nothing to check
        "users = a@example.test\nprotocols = nntp\n": "configuration OK",
    }
    for text, want in cases.items():
        ini = tmp_path / "frontend.ini"
        ini.write_text(base + text)
        p = subprocess.run([str(BUILD / "portico-frontend"), "-t", "-c",
                            str(ini)], capture_output=True, text=True,
                           timeout=30)
        out = p.stdout + p.stderr
        assert want in out, (text, out)
        assert p.returncode == (0 if want == "configuration OK" else 1), \
            (text, out)
