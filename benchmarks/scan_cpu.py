#!/usr/bin/env python3
"""Where a scan's CPU goes: the main process against its workers, and the main process's stages.

    .venv/bin/python benchmarks/scan_cpu.py DIR            # DIR: a folder of photos
    .venv/bin/python benchmarks/scan_cpu.py DIR --runs 5 -- --hash none

Runs `photocat scan DIR --db NEW -q` (a new catalog each run) --runs times, each in a process
that is the real command (`catalog.cli.main`) with a few of photocat's functions wrapped to time
them, and prints medians of:

* wall time, and the CPU time (user + system) of the main process and of its workers together
  (`getrusage` of the process and of its reaped children, read as the command ends);
* the main process's CPU (its own thread, `time.thread_time`) in each stage: resolving the UTC
  times (`catalog.when.apply`, timezonefinder's loading and lookups inside it), storing the
  records (`Catalog.upsert`: the photo rows' inserts, the place lookups, the commits), and the
  rest (start-up, walk, taking the workers' results).

The wrappers cost about a microsecond a call. Figures for README.md's Performance section; no
assertion.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from installed import as_installed  # benchmarks/installed.py

# The child: the photocat command itself, with stage timers; one JSON line on stderr at the end.
CHILD = r"""
import collections, functools, json, os, resource, sys, time

spent = collections.Counter()
calls = collections.Counter()
main_pid = os.getpid()
started = time.perf_counter()


def timed(owner, name, label):
    f = getattr(owner, name)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        t = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - t
            calls[label] += 1

    setattr(owner, name, wrapper)


def report(code=0):
    if os.getpid() == main_pid:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(json.dumps({
            "wall": time.perf_counter() - started,
            "main": me.ru_utime + me.ru_stime,
            "main_thread": time.thread_time(),
            "workers": kids.ru_utime + kids.ru_stime,
            "stages": dict(spent),
            "calls": dict(calls),
        }), file=sys.stderr)
    exit_now(code)


exit_now = os._exit
os._exit = report  # photocat ends with os._exit once its output is flushed: report just before
import catalog.ingest, catalog.when  # noqa: E401  (neither imports SQLAlchemy)

timed(catalog.when, "apply", "time: resolve (when.apply)")
timed(catalog.when, "zone_at", "time: zone at position (load + lookups)")
import importlib.abc, importlib.util  # noqa: E401


def instrument(store):
    timed(store.Catalog, "upsert", "store: records (Catalog.upsert)")
    timed(store.Catalog, "_place_ids", "store: place lookups")
    timed(store.Catalog, "set_digests", "store: digests (set_digests)")
    inner = store._executemany

    def executemany(conn, stmt, rows):
        t = time.thread_time()
        try:
            return inner(conn, stmt, rows)
        finally:
            spent["store: " + stmt.table.name + " rows"] += time.thread_time() - t

    store._executemany = executemany


class _AfterStore(importlib.abc.MetaPathFinder):
    # instruments catalog.store when the scan imports it (after its workers started), so that
    # the command runs in the order it always does

    def find_spec(self, name, path=None, target=None):
        if name != "catalog.store":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        real = spec.loader

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                real.exec_module(module)
                instrument(module)

        spec.loader = Loader()
        return spec


sys.meta_path.insert(0, _AfterStore())
sys.argv = ["photocat", *sys.argv[1:]]
from catalog.cli import main

main()
"""


def main() -> None:
    as_installed()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--runs", type=int, default=5)
    a, extra = p.parse_known_args()  # more scan options, after --
    a.extra = [x for x in extra if x != "--"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="scancpu-") as work:
        for i in range(a.runs):
            db = Path(work) / f"run{i}.db"
            cmd = [sys.executable, "-c", CHILD, "scan", str(a.folder), "--db", str(db), "-q"]
            done = subprocess.run([*cmd, *a.extra], capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stderr.strip().splitlines()[-1]))
            for name in Path(work).glob(f"run{i}.db*"):
                name.unlink()
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall", "main", "workers")}
    thread = statistics.median(r["main_thread"] for r in runs)
    print(f"photocat scan {a.folder} {' '.join(a.extra)}: medians of {a.runs} runs")
    print(f"  wall {med['wall']:.3f} s; CPU {med['main'] + med['workers']:.3f} s in all:")
    print(f"  main process {med['main']:.3f} s (its own thread {thread:.3f} s),")
    print(f"  workers {med['workers']:.3f} s together")
    print("the main thread's CPU by stage (s):")
    for label in sorted({k for r in runs for k in r["stages"]}):
        print(f"  {label:44} {statistics.median(r['stages'].get(label, 0.0) for r in runs):7.3f}")
    top = ("time: resolve (when.apply)", "store: records (Catalog.upsert)", "store: digests")
    rest = statistics.median(
        r["main_thread"] - sum(v for k, v in r["stages"].items() if k.startswith(top)) for r in runs
    )
    print(f"  {'the rest (start-up, walk, the results)':44} {rest:7.3f}")


if __name__ == "__main__":
    main()
