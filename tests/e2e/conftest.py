"""Fixtures for Portico's end-to-end tests (Debian's python3-pytest).

A test that needs running daemons asks for `stack`: one stack per test
session, started with `scripts/stack up` in a temporary directory, with

    alice@example.test / alice-password   (INBOX: data/plain.eml,
                                           data/multipart.eml)
    bob@example.test   / bob-password     (empty INBOX)

and stopped with `scripts/stack down` at the end, failures included.
`stack.IMAPS_PORT`, `stack["CA_FILE"]`, ... are the values of DIR/stack.env
(ports as int). Tests that change the shared stack (stop a service, add
users) put it back as they found it; use `stack.new_user()` for a user of
one's own. A test that needs a differently shaped stack asks for
`stack_factory` and calls it: `stack_factory(sites=2)`.

Mark tests that need the daemons with `@pytest.mark.daemons`.
"""

import imaplib
import itertools
import os
import poplib
import shlex
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "scripts" / "stack"
DATA = Path(__file__).resolve().parent / "data"

ALICE = ("alice@example.test", "alice-password")
BOB = ("bob@example.test", "bob-password")
ALICE_MESSAGES = ("plain.eml", "multipart.eml")

UP_TIMEOUT = 120
CMD_TIMEOUT = 60


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "daemons: needs the built daemons (build/portico-*)")
    # A CI time-out or `kill` sends SIGTERM: turn it into KeyboardInterrupt
    # so that fixture finalizers still run `scripts/stack down`.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        def _term(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, _term)


class StackCommandError(Exception):
    def __init__(self, argv, proc):
        self.argv = argv
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        super().__init__("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(shlex.quote(str(a)) for a in argv), proc.returncode,
            proc.stdout, proc.stderr))


def run_stack(*args, check=True, timeout=CMD_TIMEOUT):
    """Run scripts/stack ARGS; return the CompletedProcess (text)."""
    argv = [str(STACK_SCRIPT)] + [str(a) for a in args]
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise StackCommandError(argv, proc)
    return proc


def parse_env(path):
    """Parse a stack.env file into a StackEnv."""
    env = StackEnv()
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        words = shlex.split(value)
        value = words[0] if words else ""
        if key.endswith("_PORT") or key in ("SITES", "BACKENDS_PER_SITE",
                                            "FRONTENDS_PER_SITE"):
            value = int(value)
        env[key] = value
    return env


class StackEnv(dict):
    """The KEY=value pairs of stack.env; also readable as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Stack:
    """A running stack: its directory, stack.env, and helpers."""

    _counter = itertools.count(1)

    def __init__(self, directory):
        self.dir = Path(directory)
        self.env = parse_env(self.dir / "stack.env")
        self.users = {}          # login -> password, users added via us

    def __getattr__(self, name):
        # only reached for names that are not attributes: stack.env keys
        env = self.__dict__.get("env")
        if env is not None and name in env:
            return env[name]
        raise AttributeError(name)

    def __getitem__(self, key):
        return self.env[key]

    def __contains__(self, key):
        return key in self.env

    def get(self, key, default=None):
        return self.env.get(key, default)

    # ---- addresses -------------------------------------------------------

    @property
    def host(self):
        return self.env["FRONTEND_HOST"]

    def port(self, proto, site=1, frontend=1):
        """Port of PROTO (imap, imaps, pop3, pop3s) on frontend s<site>f<k>.
        """
        return self.env["SITE%d_FE%d_%s_PORT" % (site, frontend,
                                                 proto.upper())]

    def ssl_context(self):
        """A client context that trusts only this stack's CA."""
        ctx = ssl.create_default_context(cafile=self.env["CA_FILE"])
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    # ---- clients (not logged in unless user is given) --------------------

    def imap(self, user=None, password=None, site=1, frontend=1,
             timeout=10):
        """IMAP4 over implicit TLS; logged in if USER is given."""
        c = imaplib.IMAP4_SSL(self.host, self.port("imaps", site, frontend),
                              ssl_context=self.ssl_context(),
                              timeout=timeout)
        if user is not None:
            c.login(user, password if password is not None
                    else self.users[user])
        return c

    def imap_plain(self, site=1, frontend=1, timeout=10):
        """IMAP4 on the cleartext port (STARTTLS not yet done)."""
        return imaplib.IMAP4(self.host, self.port("imap", site, frontend),
                             timeout=timeout)

    def pop3(self, user=None, password=None, site=1, frontend=1,
             timeout=10):
        """POP3 over implicit TLS; logged in if USER is given."""
        c = poplib.POP3_SSL(self.host, self.port("pop3s", site, frontend),
                            context=self.ssl_context(), timeout=timeout)
        if user is not None:
            c.user(user)
            c.pass_(password if password is not None else self.users[user])
        return c

    def wait_for_login(self, user, password=None, timeout=20.0, site=1,
                       frontend=1):
        """Retry an IMAP login and SELECT INBOX until it works (e.g. while
        a frontend reconnects to a restarted backend or LDAP)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self.imap(user, password, site=site, frontend=frontend)
                try:
                    typ, _ = c.select("INBOX", readonly=True)
                    if typ == "OK":
                        return
                finally:
                    try:
                        c.logout()
                    except (OSError, imaplib.IMAP4.error):
                        pass
            except (OSError, imaplib.IMAP4.error, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                # once more, letting the error through
                c = self.imap(user, password, site=site, frontend=frontend)
                try:
                    typ, data = c.select("INBOX", readonly=True)
                    assert typ == "OK", data
                finally:
                    c.logout()
                return
            time.sleep(0.2)

    # ---- the stack script ------------------------------------------------

    def run(self, *args, check=True, timeout=CMD_TIMEOUT):
        """Run `scripts/stack ARGS...` (DIR is not added)."""
        return run_stack(*args, check=check, timeout=timeout)

    def stop(self, service):
        """Stop SERVICE: ldap, s<S>b<M> or s<S>f<K>."""
        return run_stack("stop", self.dir, service)

    def start(self, service):
        """Start SERVICE again on its ports; returns once it accepts."""
        return run_stack("start", self.dir, service)

    def status(self):
        return run_stack("status", self.dir, check=False).stdout

    def add_user(self, user, password, site=1, backend=1, aliases=(),
                 imap=True, pop3=True, state=None, smtp=True):
        args = ["adduser", self.dir, user, password, "--site", site,
                "--backend", backend]
        for a in aliases:
            args += ["--alias", a]
        if not imap:
            args.append("--no-imap")
        if not pop3:
            args.append("--no-pop3")
        if not smtp:
            args.append("--no-smtp")
        if state is not None:
            args += ["--state", state]
        run_stack(*args)
        self.users[user] = password
        for a in aliases:
            self.users[a] = password
        return user, password

    def new_user(self, prefix="user", **kw):
        """Add a fresh user; returns (login, password)."""
        n = next(self._counter)
        user = "%s%d-%d@example.test" % (prefix, n, os.getpid())
        return self.add_user(user, "pw-%s-%d" % (prefix, n), **kw)

    def new_account(self, prefix="user"):
        """Add a fresh user on s1b1; returns (login, password, mailbox
        id)."""
        import re
        n = next(self._counter)
        user = "%s%d-%d@example.test" % (prefix, n, os.getpid())
        password = "pw-%s-%d" % (prefix, n)
        out = run_stack("adduser", self.dir, user, password).stdout
        m = re.search(r"\(mailbox ([0-9a-f]+) on s1b1\)", out)
        assert m, out
        self.users[user] = password
        return user, password, m.group(1)

    def import_message(self, user, path_or_bytes, mailbox="INBOX"):
        """Import a message or mbox (a path, or the bytes themselves) into
        USER's MAILBOX via portico-admin; returns its output."""
        if isinstance(path_or_bytes, (bytes, bytearray)):
            with tempfile.NamedTemporaryFile(
                    prefix="msg-", suffix=".eml", dir=self.dir,
                    delete=False) as f:
                f.write(path_or_bytes)
                tmp = f.name
            try:
                return run_stack("import", self.dir, user, tmp,
                                 "--mailbox", mailbox).stdout
            finally:
                os.unlink(tmp)
        return run_stack("import", self.dir, user, Path(path_or_bytes),
                         "--mailbox", mailbox).stdout

    def down(self):
        return run_stack("down", self.dir, check=False)

    def log(self, service):
        """The log of SERVICE so far (for assertion messages)."""
        name = "ldap/slapd.log" if service == "ldap" else \
            "%s/%s.log" % (service, service)
        try:
            return (self.dir / name).read_text(errors="replace")
        except OSError:
            return ""


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")


def sanitizer_reports(directory):
    """Sanitizer reports in the daemons' logs of a stopped stack."""
    found = []
    for log in sorted(Path(directory).glob("s*/*.log")):
        text = log.read_text(errors="replace")
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                found.append("%s:\n%s" % (log, text[max(0, i - 200):i + 3000]))
                break
    return found


def stop_and_check(directory):
    """`down`, then fail if a daemon reported a sanitizer error (the test
    build runs under ASan and UBSan)."""
    run_stack("down", directory, check=False)
    reports = sanitizer_reports(directory)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)


def start_stack(directory, sites=1, backends_per_site=1,
                frontends_per_site=1, settings=(), ldap_tls=None):
    """`scripts/stack up`; settings are "section.key=value" strings;
    ldap_tls: "starttls" or "ldaps" (scripts/stack --ldap-tls)."""
    directory = Path(directory)
    extra = ["--ldap-tls", ldap_tls] if ldap_tls else []
    for item in settings:
        extra += ["--set", item]
    try:
        run_stack("up", directory, "--sites", sites,
                  "--backends-per-site", backends_per_site,
                  "--frontends-per-site", frontends_per_site, *extra,
                  timeout=UP_TIMEOUT)
    except BaseException:
        run_stack("down", directory, check=False)
        raise
    return Stack(directory)


@pytest.fixture(scope="session")
def stack_factory(tmp_path_factory):
    """Start extra stacks: `stack_factory(sites=2, backends_per_site=1,
    frontends_per_site=1)`; each is stopped at the end of the session
    (or earlier with `.down()`)."""
    started = []

    def make(name="extra", **kw):
        directory = tmp_path_factory.mktemp(name)
        started.append(directory)
        return start_stack(directory, **kw)

    try:
        yield make
    finally:
        for d in reversed(started):
            run_stack("down", d, check=False)
        for d in started:
            stop_and_check(d)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The session's stack, with alice (two messages) and bob."""
    directory = tmp_path_factory.mktemp("stack")
    st = None
    try:
        st = start_stack(directory)
        st.add_user(*ALICE)
        st.add_user(*BOB)
        for name in ALICE_MESSAGES:
            st.import_message(ALICE[0], DATA / name)
        yield st
    finally:
        stop_and_check(directory)


# ---- raw client connections (frontend tests) -------------------------------

def free_port():
    """A loopback port nothing listens on now (bound and let go)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raw_client(st, port, tls=False, source=None, site=None, timeout=10,
               server_hostname=None):
    """A raw socket to ST's frontend PORT, optionally from SOURCE (a
    127.x.y.z address, so that tests can play several client addresses)
    and wrapped in TLS; returns (sock, reader).  Nothing is read."""
    import socket
    s = socket.create_connection(
        (st.host, port), timeout=timeout,
        source_address=(source, 0) if source else None)
    if tls:
        s = st.ssl_context().wrap_socket(
            s, server_hostname=server_hostname or st.host)
    return s, s.makefile("rb")


def read_until_tagged(f, tag):
    """IMAP lines up to and including the tagged response of TAG (bytes);
    fails if the connection closes first."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def metric(st, port, name, whose="server"):
    """The value of the unlabelled sample NAME on the /metrics page at
    PORT of ST."""
    import urllib.request
    url = "http://%s:%s/metrics" % (st.host, port)
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError("%s not in the %s's metrics" % (name, whose))


def backend_metric(st, name):
    """NAME on the /metrics page of ST's first backend."""
    return metric(st, st.SITE1_BE1_HTTP_PORT, name, "backend")


def sigstop(pid, timeout=10.0):
    """SIGSTOP PID and return once every thread of it is stopped: kill()
    only queues the signal, and a thread running on another core goes on
    for a moment (long enough to relay what a test sends next)."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        tasks = Path("/proc/%d/task" % pid)
        for t in tasks.iterdir():
            try:
                stat = (t / "stat").read_text()
            except FileNotFoundError:
                continue  # a thread that has exited
            # the state follows the command name, which is in parentheses
            if stat[stat.rindex(")") + 2] not in "tT":
                return False
        return True
    try:
        wait_for(stopped, timeout=timeout, interval=0.005,
                 what="process %d to stop" % pid)
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll PREDICATE until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)
