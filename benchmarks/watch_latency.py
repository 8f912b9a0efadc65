"""How long after a photo lands in a watched folder can `photocat search` find it?

While `photocat watch` runs (a subprocess) and other processes query the catalog in a loop,
copy N real photos into the watched folder in 256 KiB chunks, as `cp` does, as fast as the disk
allows. For each file: latency = (first time a search returned it) - (the copier closed it).

Two query loops run beside the daemon: one through the core API (`query.search`, every ~50 ms:
the latency probe) and one through the CLI (`photocat search --format paths`, with --cli-pause
seconds between runs), both counting failures such as "database is locked". At the end the
catalog must equal the folder: nothing lost, nothing duplicated, no error row.

    .venv/bin/python benchmarks/watch_latency.py                 # 1,000 photos, 2 runs
    .venv/bin/python benchmarks/watch_latency.py --count 200 --runs 1 --corpus /tmp/c

The photos come from ../shared/tools/make_corpus.py (--count N --seed 7), generated once into
--corpus (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MAKE_CORPUS = REPO.parent / "shared" / "tools" / "make_corpus.py"  # ../shared beside the repo
CHUNK = 256 * 1024


def make_corpus(out: Path, count: int) -> list[Path]:
    files = sorted(out.rglob("*.jpg")) if out.is_dir() else []
    if len(files) < count:
        print(f"generating {count} photos into {out} ...", file=sys.stderr)
        cmd = [sys.executable, str(MAKE_CORPUS), str(out), "--count", str(count), "--seed", "7"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        files = sorted(out.rglob("*.jpg"))
    return files[:count]


def api_querier(db: str, out: str, stop: str) -> None:
    """Child process: search through the core API in a loop; note when each path first appears
    and every failure. Writes {path: first_seen} and the failures to `out` when `stop` exists."""
    sys.path.insert(0, str(REPO))
    from catalog.query import Filter, search
    from catalog.store import open_catalog

    seen: dict[str, float] = {}
    failures: list[str] = []
    queries = 0
    # The newest photos (`photocat search --sort id --desc --limit 200`): cheap enough to ask
    # every 50 ms without starving the daemon of CPU; a full search when all 200 were new.
    newest, everything = Filter(sort="id", desc=True, limit=200), Filter(sort="id")
    with open_catalog(db) as catalog:
        while not os.path.exists(stop):
            try:
                now = time.time()
                got = [r["path"] for r in search(catalog, newest)]
                if got and got[-1] not in seen:
                    got = [r["path"] for r in search(catalog, everything)]
                for path in got:
                    seen.setdefault(path, now)
                queries += 1
            except Exception as exc:  # "database is locked" would land here
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)
    Path(out).write_text(json.dumps({"seen": seen, "failures": failures, "queries": queries}))


def cli_querier(db: str, out: str, stop: str, pause: str) -> None:
    """Child process: `photocat search --format paths` in a loop, counting failures. Each run
    opens the catalog as a user would (which takes the write lock briefly to check the schema),
    so it is the real test of "never fails with database is locked"."""
    failures: list[str] = []
    runs = 0
    cmd = [sys.executable, "-m", "catalog.cli", "search", "--format", "paths", "--db", db]
    while not os.path.exists(stop):
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        runs += 1
        if p.returncode != 0 or "locked" in p.stderr:
            failures.append(p.stderr.strip()[-300:])
        time.sleep(float(pause))  # a Python start costs most of a core on a 2-core machine
    Path(out).write_text(json.dumps({"failures": failures, "runs": runs}))


def one_run(
    files: list[Path], corpus: Path, work: Path, settle: float | None, cli_pause: float
) -> dict[str, Any]:
    folder, db = work / "photos", work / "catalog.db"
    folder.mkdir(parents=True)
    stop = work / "stop"
    log_path = work / "daemon.log"
    cmd = [sys.executable, "-m", "catalog.cli", "watch", str(folder), "--db", str(db)]
    if settle is not None:
        cmd += ["--settle", str(settle)]
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while "ready" not in log_path.read_text():
        if daemon.poll() is not None or time.time() > deadline:
            sys.exit(f"daemon did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    me = [sys.executable, __file__]
    api = subprocess.Popen([*me, "--_api", str(db), str(work / "api.json"), str(stop)])
    cli = subprocess.Popen(
        [*me, "--_cli", str(db), str(work / "cli.json"), str(stop), str(cli_pause)]
    )
    time.sleep(1.0)  # both loops running before the first file lands

    closed: dict[str, float] = {}
    start = time.time()
    for src in files:
        rel = src.relative_to(corpus)
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as i, open(dest, "wb") as o:
            while chunk := i.read(CHUNK):
                o.write(chunk)
        closed[str(dest)] = time.time()
    copy_seconds = time.time() - start

    def catalogued() -> int:
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute("SELECT count(*) FROM photos").fetchone()[0]
        except sqlite3.Error:
            return -1

    deadline = time.time() + 120
    while catalogued() < len(files) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let the API loop run at least once more
    stop.touch()
    api.wait(60)
    cli.wait(60)
    daemon.send_signal(signal.SIGTERM)
    exit_code = daemon.wait(60)

    api_out = json.loads((work / "api.json").read_text())
    cli_out = json.loads((work / "cli.json").read_text())
    seen = api_out["seen"]
    latencies = sorted(seen[p] - t for p, t in closed.items() if p in seen)
    with sqlite3.connect(db) as conn:
        total, distinct, errors = conn.execute(
            "SELECT count(*), count(DISTINCT root_id || '/' || rel_path),"
            " sum(error IS NOT NULL) FROM photos"
        ).fetchone()
        catalogued = {
            os.path.join(root, rel)
            for root, rel in conn.execute(
                "SELECT r.path, p.rel_path FROM photos p JOIN roots r ON r.id = p.root_id"
            )
        }
    return {
        "files": len(files),
        "copy_s": copy_seconds,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "lost": len(files) - len(latencies),
        "duplicated": total - distinct,
        "not_equal": len(catalogued ^ set(closed)),  # catalog vs folder, after the run
        "error_rows": errors or 0,
        "api_queries": api_out["queries"],
        "api_failures": len(api_out["failures"]),
        "cli_queries": cli_out["runs"],
        "cli_failures": len(cli_out["failures"]),
        "exit_code": exit_code,
        "failure_samples": (api_out["failures"] + cli_out["failures"])[:3],
    }


def main() -> None:
    if sys.argv[1:2] == ["--_api"]:
        api_querier(*sys.argv[2:])
        return
    if sys.argv[1:2] == ["--_cli"]:
        cli_querier(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--corpus", type=Path, help="where the generated photos are (kept)")
    ap.add_argument("--settle", type=float, help="passed to photocat watch --settle")
    ap.add_argument("--cli-pause", type=float, default=0.5, help="seconds between CLI searches")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="photocat-bench-"))
    corpus = args.corpus or tmp / "corpus"
    files = make_corpus(corpus, args.count)
    results = []
    for i in range(args.runs):
        r = one_run(files, corpus, tmp / f"run{i}", args.settle, args.cli_pause)
        results.append(r)
        print(json.dumps(r), file=sys.stderr)
    keys = ["p50", "p95", "max", "lost", "duplicated", "not_equal", "error_rows", "api_failures",
            "cli_failures", "api_queries", "cli_queries", "copy_s", "exit_code"]  # fmt: skip
    print(f"{args.count} photos copied in while photocat watch ran; {args.runs} run(s)")
    print("| run | " + " | ".join(keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for i, r in enumerate(results, 1):
        print(f"| {i} | " + " | ".join(_fmt(r[k]) for k in keys) + " |")
    median = {k: statistics.median(r[k] for r in results) for k in keys}
    print("| median | " + " | ".join(_fmt(median[k]) for k in keys) + " |")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)  # --corpus, when given, lives elsewhere: kept
    else:
        print(f"work folders kept in {tmp}", file=sys.stderr)


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
