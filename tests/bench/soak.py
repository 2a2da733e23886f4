#!/usr/bin/python3
"""Soak: the mixed IMAP workload (imap-mixed: one session per connection)
through a frontend over TLS for a long time, on a stack of its own
(slapd, one backend, one frontend on 127.0.0.1), with the memory of the
frontend and the backend sampled as it goes.  The load generator runs in
back-to-back slices (--interval seconds each, no warm-up, so the load
never stops for more than a process start); after each slice the script
samples VmRSS and VmHWM of both daemons (/proc/PID/status), the size of
the backend's store, and the slice's operations and errors.  Prints one
line per slice and, at the end, a summary (memory at start, middle and
end; operations; errors) as Markdown; everything also goes to a JSON file.

    tests/bench/soak.py [--duration 1800] [--interval 30] [--clients 50]
                        [--users 50] [--messages 100] [--json FILE]
                        [--set SECTION.KEY=VALUE ...]

Same messages as bench.py (small, 1-16 KB), same users' settings.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def status(pid):
    out = {}
    try:
        for line in open("/proc/%d/status" % pid):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def dir_kb(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks // 2
            except OSError:
                pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--interval", type=float, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--json", default=str(bench.BUILD / "bench" /
                                          "soak.json"))
    ap.add_argument("--set", action="append", default=[],
                    metavar="SECTION.KEY=VALUE",
                    help="a Portico setting for the run (repeatable)")
    a = ap.parse_args()
    if not bench.LOADGEN.exists():
        sys.exit("soak: %s not found (make)" % bench.LOADGEN)
    root = Path(tempfile.mkdtemp(prefix="portico-soak-"))
    prof = dict(bench.PROFILES["full"], idle_conns=a.clients,
                mix_users=a.users, idle_big=0, extra_settings=a.set)
    p = bench.Portico(root, prof)
    samples = []
    try:
        bench.log("starting Portico (%s)" % root)
        p.up()
        people = bench.users("mix", a.users)
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(p.adduser, people))
        mbox = root / "mix.mbox"
        bench.write_mbox(mbox, bench.corpus("small", a.messages, 1))
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda u: p.import_mbox(u, mbox), people))
        bench.warm(p, [people])
        fe, be = p.pids()
        store = p.root / "s1b1" / "store"

        def sample(t, r=None):
            s = {"t": round(t, 1), "frontend": status(fe),
                 "backend": status(be), "store_kb": dir_kb(store),
                 "load": os.getloadavg()[0]}
            if r is not None:
                s.update(sessions=r["ops"].get("session", {}).get(
                    "count", 0), commands=r["commands"],
                    errors=bench.errors(r),
                    connection_errors=r["connection_errors"],
                    first_error=r["first_error"],
                    command_p99_ms=r["ops"].get("all-commands", {}).get(
                        "p99_ms"),
                    session_p50_ms=r["ops"].get("session", {}).get(
                        "p50_ms"))
            samples.append(s)
            print("%7.0f s  frontend RSS %7d kB  backend RSS %7d kB  "
                  "store %8d kB  sessions %6s  commands %7s  errors %s  "
                  "load %.1f" % (
                      t, s["frontend"].get("VmRSS", 0),
                      s["backend"].get("VmRSS", 0), s["store_kb"],
                      s.get("sessions", "-"), s.get("commands", "-"),
                      s.get("errors", "-"), s["load"]), flush=True)

        t0 = time.monotonic()
        sample(0)
        run_ = ("soak", "imap-mixed", "imap", True, "mix",
                ["--clients", a.clients, "--users", a.users], True)
        sl = dict(prof, duration=a.interval, warmup=0)
        while time.monotonic() - t0 < a.duration - 1:
            left = a.duration - (time.monotonic() - t0)
            sl["duration"] = min(a.interval, max(left, 1))
            r = bench.loadgen(p, run_, sl, p.ca, label="soak")
            sample(time.monotonic() - t0, r)
        elapsed = time.monotonic() - t0
    finally:
        p.down()
        shutil.rmtree(root, ignore_errors=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(
        {"clients": a.clients, "users": a.users, "messages": a.messages,
         "settings": a.set,
         "interval": a.interval, "elapsed_s": elapsed,
         "samples": samples}, indent=1) + "\n")
    # summary
    mid = samples[len(samples) // 2]
    runs = samples[1:]
    sessions = sum(s["sessions"] for s in runs)
    commands = sum(s["commands"] for s in runs)
    errs = sum(s["errors"] for s in runs)
    firsts = sorted({s["first_error"] for s in runs if s["first_error"]})
    print()
    print("Soak: imap-mixed, %d clients over TLS, %d users of %d messages, "
          "%.0f s (%d slices of %g s); load average %.1f at the end%s."
          % (a.clients, a.users, a.messages, elapsed, len(runs),
             a.interval, os.getloadavg()[0],
             "; settings: " + " ".join(a.set) if a.set else ""))
    print()
    print("| when | frontend RSS | backend RSS | store on disk |")
    print("|---|---|---|---|")
    for name, s in (("start (after set-up and warm-up)", samples[0]),
                    ("after 1st slice", samples[1] if len(samples) > 1
                     else samples[0]),
                    ("middle (%.0f s)" % mid["t"], mid),
                    ("end (%.0f s)" % samples[-1]["t"], samples[-1])):
        print("| %s | %.1f MB | %.1f MB | %.1f MB |" % (
            name, s["frontend"].get("VmRSS", 0) / 1024,
            s["backend"].get("VmRSS", 0) / 1024, s["store_kb"] / 1024))
    last = samples[-1]
    print()
    print("Peak RSS (VmHWM): frontend %.1f MB, backend %.1f MB.  "
          "Sessions %d (%.1f/s), commands %d (%.0f/s), errors %d%s." % (
              last["frontend"].get("VmHWM", 0) / 1024,
              last["backend"].get("VmHWM", 0) / 1024, sessions,
              sessions / elapsed, commands, commands / elapsed, errs,
              (" (first: %s)" % "; ".join(firsts)) if firsts else ""))
    bench.log("samples in %s" % a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
