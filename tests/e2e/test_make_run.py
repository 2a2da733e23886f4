"""`make run`'s deployment (scripts/stack run): the demo user logs in with
imaplib and reads a demo message; Ctrl-C stops everything cleanly."""

import imaplib
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, parse_env

pytestmark = pytest.mark.daemons


def test_run_serves_the_demo_user_and_stops_on_ctrl_c(tmp_path):
    d = tmp_path / "run"
    proc = subprocess.Popen([str(REPO / "scripts" / "stack"), "run", str(d)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    out = []
    try:
        deadline = time.monotonic() + 120
        while True:
            line = proc.stdout.readline()
            assert line, "stack run ended early:\n" + "".join(out)
            out.append(line)
            if "Press Ctrl-C to stop" in line:
                break
            assert time.monotonic() < deadline, "".join(out)
        text = "".join(out)
        assert "alice@example.test / alice-password" in text
        env = parse_env(d / "stack.env")
        assert str(env["IMAPS_PORT"]) in text
        ctx = ssl.create_default_context(cafile=env["CA_FILE"])
        c = imaplib.IMAP4_SSL(env["FRONTEND_HOST"], env["IMAPS_PORT"],
                              ssl_context=ctx, timeout=10)
        c.login("alice@example.test", "alice-password")
        typ, data = c.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = c.fetch("1", "(BODY[])")
        assert typ == "OK" and b"Subject:" in data[0][1]
        c.logout()
        pids = [int(p.read_text()) for p in d.glob("*/pid")]
        assert pids
    finally:
        # Ctrl-C reaches the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, "".join(out) + proc.stdout.read()
    for pid in pids:
        assert not Path("/proc/%d" % pid).exists(), "pid %d still runs" % pid
