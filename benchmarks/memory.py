#!/usr/bin/env python3
"""Peak memory of `photocat scan` and of a `photocat watch` that keeps ingesting.

    .venv/bin/python benchmarks/memory.py scan  DIR            # a new catalog
    .venv/bin/python benchmarks/memory.py watch DIR --count 20000 --step 2000

scan: runs `photocat scan DIR --db NEW -q` and samples, every 0.1 s, the resident memory (VmRSS)
of the photocat process and of every process under it (forkserver, workers), reading each one's
own peak (VmHWM) too. Prints the main process's peak, the largest worker's, and the peak of the
sum over the whole tree.

watch: starts `photocat watch EMPTY_DIR --db NEW`, then moves DIR's photos into the watched folder
--step at a time (a rename each: no copying cost), waits until the catalog holds them, and prints
the daemon's RSS after each step: memory should stay flat however many photos went through.

Figures for the Performance section of README.md; no assertion.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from installed import as_installed  # benchmarks/installed.py

PHOTOCAT = str(Path(sys.executable).parent / "photocat")


def status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and Pss (shared pages divided among their sharers: forked workers share
    most of their parent's) of a process, in KiB ({} once it is gone)."""
    found = {}
    try:
        for name in ("status", "smaps_rollup"):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Pss"):
                    found[key] = int(value.split()[0])
    except OSError:
        return {}
    return found


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return found


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak: dict[int, int] = {}  # pid -> VmHWM KiB last seen
        self.sum_peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in tree(self.pid):
                s = status(p)
                if s:
                    total += s.get("Pss", s["VmRSS"])
                    self.peak[p] = max(self.peak.get(p, 0), s["VmHWM"])
            self.sum_peak = max(self.sum_peak, total)
            time.sleep(0.1)


def scan(a: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="memscan-"))
    try:
        cmd = [PHOTOCAT, "scan", str(a.folder), "--db", str(work / "c.db"), "-q", *a.extra]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        sampler = Sampler(proc.pid)
        sampler.start()
        out, _ = proc.communicate()
        sampler.stop.set()
        sampler.join()
        took = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    main = sampler.peak.get(proc.pid, 0)
    others = [v for p, v in sampler.peak.items() if p != proc.pid]
    print(out.strip())
    print(f"scan of {a.folder} in {took:.1f} s {' '.join(a.extra)}")
    print(f"peak RSS: main process {main / 1024:.0f} MiB; largest other process (forkserver,")
    print(f"workers) {max(others, default=0) / 1024:.0f} MiB; whole tree at once "
          f"{sampler.sum_peak / 1024:.0f} MiB (PSS: shared pages counted once)")  # fmt: skip


def watch(a: argparse.Namespace) -> None:
    files = sorted(p for p in a.folder.rglob("*.jpg"))[: a.count]
    work = Path(tempfile.mkdtemp(prefix="memwatch-"))
    watched = work / "photos"
    watched.mkdir()
    db = work / "c.db"
    log = open(work / "watch.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([PHOTOCAT, "watch", str(watched), "--db", str(db), "-q"], stderr=log)
    moved: list[tuple[Path, Path]] = []
    try:
        time.sleep(3)
        print(f"{'photos ingested':>16} {'daemon RSS MiB':>15} {'tree PSS MiB':>13} {'s':>6}")
        start = time.perf_counter()
        for first in range(0, len(files), a.step):
            for i, src in enumerate(files[first : first + a.step], first):
                dest = watched / f"{i // 1000:03d}" / src.name
                dest.parent.mkdir(exist_ok=True)
                os.rename(src, dest)
                moved.append((dest, src))
            wait_for(db, len(moved))
            rss = status(proc.pid).get("VmRSS", 0)
            total = sum(status(p).get("Pss", 0) for p in tree(proc.pid))
            took = time.perf_counter() - start
            print(f"{len(moved):>16} {rss / 1024:>15.0f} {total / 1024:>13.0f} {took:>6.0f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        for dest, src in moved:  # give the corpus back
            os.rename(dest, src)
        shutil.rmtree(work, ignore_errors=True)


def wait_for(db: Path, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT count(*) FROM photos").fetchone()[0] >= n:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the watcher did not ingest {n} photos in {timeout} s")


def main() -> None:
    as_installed()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scan")
    s.add_argument("folder", type=Path)
    s.add_argument("extra", nargs="*", help="more scan options, after --")
    w = sub.add_parser("watch")
    w.add_argument("folder", type=Path)
    w.add_argument("--count", type=int, default=20000)
    w.add_argument("--step", type=int, default=2000)
    a = p.parse_args()
    scan(a) if a.what == "scan" else watch(a)


if __name__ == "__main__":
    main()
