"""`make bench`'s harness as a smoke test: tests/bench/bench.py --smoke runs
every workload once, tiny, against Portico (and Dovecot direct when it is
installed and the test runs as root), and must complete each with zero
errors and print a well-formed table.  Nothing here is about speed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.daemons

BENCH = REPO / "tests" / "bench" / "bench.py"
sys.path.insert(0, str(BENCH.parent))
import bench  # noqa: E402


def test_bench_smoke(tmp_path):
    build = Path(os.environ.get("PORTICO_BUILD", REPO / "build"))
    loadgen = build / "bench" / "loadgen"
    assert loadgen.exists(), "%s missing: `make all` builds it" % loadgen
    out = tmp_path / "results"
    res = subprocess.run(
        ["/usr/bin/python3", str(BENCH), "--smoke", "--targets",
         "portico,dovecot", "--results", str(out), "--procs", "2"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PORTICO_BUILD=str(build)),
        stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-4000:]
    data = json.loads((out / "results.json").read_text())
    results = data["results"]
    dovecot = os.path.exists(bench.DOVECOT) and os.geteuid() == 0
    targets = ["portico"] + (["dovecot"] if dovecot else [])

    # every workload of the plan ran on every target, without an error
    runs = bench.plan(bench.PROFILES["smoke"], None)
    runs_args = {r[0]: r[5] for r in runs}
    assert [r[0] for r in runs] == list(results)
    for name, wl in [(r[0], r[1]) for r in runs]:
        want = ["portico"] if wl == "ldap-bind" else targets
        if wl == "hop-latency":
            # Dovecot's side of it needs its proxy, not run here
            want = ["portico"]
        assert sorted(results[name]) == sorted(want), name
        for t in want:
            r = results[name][t]
            parts = [r["via"], r["direct"]] if wl == "hop-latency" else [r]
            for p in parts:
                assert p["workload"] == wl
                assert not p["timed_out"], (name, t)
                assert p["first_error"] == "", (name, t, p["first_error"])
                assert p["connection_errors"] == 0, (name, t)
                assert bench.errors(p) == 0, (name, t, p["ops"])
                assert p["commands"] > 0, (name, t)
                if wl in ("imap-mixed", "pop3-download", "login-storm"):
                    assert p["ops"]["login"]["count"] > 0, (name, t)
                for op in p["ops"].values():
                    assert (op["p50_ms"] <= op["p99_ms"] <= op["p999_ms"]
                            <= op["max_ms"]), (name, t, op)
                    # the histogram holds every operation counted
                    assert sum(n for _, n in op["hist"]) == op["count"], \
                        (name, t, op)
            # --procs 2: the clients (and a paced run's rate) shared
            # among two load generator processes, their results merged
            split = wl in bench.SPLIT_WORKLOADS
            assert r.get("processes", 1) == (2 if split else 1), (name, t)
            if split:
                args = runs_args[name]
                assert r["clients"] == args[args.index("--clients") + 1], \
                    (name, t)
            if "--resume" in runs_args[name]:
                # clients offer their last TLS session: from its second
                # session on, a client's handshakes resume (Portico's
                # frontends share their ticket keys; Dovecot's login
                # processes do not, so only some of its resume)
                assert r["tls_resume"] and r["tls_handshakes"] > 0, (name, t)
                if t == "portico":
                    assert r["tls_resumed"] > 0, (name, t, r["tls_resumed"])
            else:
                assert not r.get("tls_resume"), (name, t)
                assert r.get("tls_resumed", 0) == 0, (name, t)
            if "--rate" in runs_args[name]:
                # paced: sessions started on the schedule, each counted
                # (smoke: 20/s for 0.5 s)
                lag = r["ops"]["start-lag"]
                assert 5 <= lag["count"] <= 15, (name, t, lag)
                assert r["ops"]["login"]["count"] >= lag["count"] - 2
            else:
                assert "start-lag" not in r["ops"], (name, t)
            run_ = next(x for x in runs if x[0] == name)
            if bench.repeated(run_):
                # rounds, every target once a round; the result shown is
                # the round of median key figure (of two, the worse)
                _, fn, _, higher = bench.round_key(run_)
                rs = r["rounds"]
                assert len(rs) == bench.PROFILES["smoke"]["rounds"] == 2
                assert all(v is not None for v in rs), (name, t, rs)
                assert rs[r["round_chosen"]] == fn(r), (name, t)
                assert fn(r) == (min(rs) if higher else max(rs)), \
                    (name, t, rs)
            else:
                assert "rounds" not in r, (name, t)
            if wl == "idle-hold":
                assert r["idle"]["ready"] == 5
                assert r["idle"]["failed"] == 0
                assert r["ops"]["delivery-all"]["count"] == 2
                assert r["memory"]["connections"] == 5

    # the table: a header, a separator, rows of as many cells, every run
    table = (out / "table.md").read_text().split("\n\n", 1)[1]
    rows = [l for l in table.splitlines() if l]
    cells = [[c.strip() for c in l.strip("|").split("|")] for l in rows]
    head = ["workload", "figure", "Portico"]
    if dovecot:
        head += ["Dovecot", "Portico / Dovecot"]
    assert cells[0] == head
    assert set(cells[1]) == {"---"}
    for c in cells[2:]:
        assert len(c) == len(head), c
        assert c[2] != "—" or c[0] == "smtp-submit", c
    assert {c[0] for c in cells[2:]} == {r[0] for r in runs} | {
        "smtp-submit"}
    assert not any(c[1].startswith("errors") for c in cells[2:])
    # the repeated runs: a row of every round's key figure, and within
    # each round the ratio
    per_round = {c[0]: c for c in cells[2:] if " in each round" in c[1]}
    assert set(per_round) == {r[0] for r in runs if bench.repeated(r)}
    for c in per_round.values():
        assert len(c[2].split(" / ")) == 2, c
        if dovecot:
            assert len(c[4].split(" / ")) == 2 and c[4].endswith("x"), c
    assert table.strip() in res.stdout


def test_median_round():
    """The round reported: the median of the key figure, of an even number
    the worse of the middle two, a round without the figure only when no
    round has it."""
    fn = bench.rate("session")

    def res(*vals):
        return [{"ops": {} if v is None else {"session": {"per_s": v}}}
                for v in vals]

    r = bench.median_round(res(300.0, 500.0, 400.0), fn, True)
    assert (fn(r), r["round_chosen"]) == (400.0, 2)
    assert r["rounds"] == [300.0, 500.0, 400.0]
    assert fn(bench.median_round(res(300.0, 500.0), fn, True)) == 300.0
    assert fn(bench.median_round(res(300.0, 500.0), fn, False)) == 500.0
    assert fn(bench.median_round(
        res(1.0, 4.0, 2.0, 3.0), fn, False)) == 3.0
    r = bench.median_round(res(None, 200.0, None), fn, True)
    assert (fn(r), r["round_chosen"]) == (200.0, 1)
    r = bench.median_round(res(None, None), fn, True)
    assert r["round_chosen"] == 0 and r["rounds"] == [None, None]


def test_round_users():
    """imap-mixed's rounds run on mailboxes of their own, alike at the
    start; the paced login-storm's (which change no mailbox) on the same
    users every round."""
    runs = {r[0]: r for r in bench.plan(bench.PROFILES["full"], None)}
    mixed = runs["imap-mixed"]
    groups = [bench.round_run(mixed, k)[4] for k in range(3)]
    assert groups[0] == "mix" and len(set(groups)) == 3, groups
    for k in range(3):
        assert bench.round_run(mixed, k)[:4] == mixed[:4]
        assert bench.round_run(mixed, k)[5:] == mixed[5:]
    storm = next(r for r in runs.values() if bench.repeated(r)
                 and r[1] == "login-storm")
    assert all(bench.round_run(storm, k) == storm for k in range(3))
    assert [r[0] for r in runs.values() if bench.repeated(r)] == [
        "imap-mixed", storm[0]]
