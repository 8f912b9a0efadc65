#!/usr/bin/env python3
"""Query latency on a large catalog: end to end (a new `photocat` process each time, output
to a pipe) and the query alone (in this process, on an open catalog).

    .venv/bin/python benchmarks/make_catalog.py --photos 1000000 --db /tmp/photocat-1m.db
    .venv/bin/python benchmarks/query_latency.py --db /tmp/photocat-1m.db

Medians of --runs runs after one warm-up run (a warm page cache, as for a catalog in use).
The searches: a model with --limit 100, one month by --from/--to, a count by device; then
`photocat devices` and `photocat --help`. Searches are timed in the default table format and as
jsonl. No timing here is an assertion: the script prints figures for the Performance section
of README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from installed import as_installed  # benchmarks/installed.py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PHOTOCAT = str(Path(sys.executable).parent / "photocat")


def main() -> None:
    as_installed()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--model", default="SM-G920F")
    p.add_argument("--month", default="2016-11", help="YYYY-MM for the --from/--to search")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    a = p.parse_args()

    year, month = (int(x) for x in a.month.split("-"))
    last = (31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    first_day, last_day = f"{a.month}-01", f"{a.month}-{last:02d}"
    db = ["--db", a.db]
    commands = {
        f"search --model {a.model} --limit 100": ["search", "--model", a.model, "--limit", "100"],
        f"search --from {first_day} --to {last_day}": [
            "search", "--from", first_day, "--to", last_day,
        ],
        f"search --model {a.model} --count": ["search", "--model", a.model, "--count"],
        "devices": ["devices"],
    }  # fmt: skip
    figures: dict[str, dict[str, float]] = {}
    print(f"catalog: {a.db}; medians of {a.runs} runs\n")
    print(f"{'command (end to end, new process)':<62} {'median ms':>10} {'rows':>7}")
    for label, args in commands.items():
        variants = (
            [("", [])]
            if label.endswith(("--count", "devices"))
            else [("", []), (" --format jsonl", ["--format", "jsonl"])]
        )
        for suffix, extra in variants:
            ms, rows = end_to_end([PHOTOCAT, *args, *db, *extra], a.runs)
            figures[f"photocat {label}{suffix}"] = {"end_to_end_ms": ms, "output_lines": rows}
            print(f"{'photocat ' + label + suffix:<62} {ms:>10.0f} {rows:>7}")
    ms, _ = end_to_end([PHOTOCAT, "--help"], a.runs)
    figures["photocat --help"] = {"end_to_end_ms": ms}
    print(f"{'photocat --help':<62} {ms:>10.0f}")

    print(f"\n{'query alone (in process, catalog open)':<62} {'median ms':>10} {'rows':>7}")
    for label, ms, rows in in_process(a.db, a.model, first_day, last_day, a.runs):
        figures.setdefault(label, {})["query_ms"] = ms
        print(f"{label:<62} {ms:>10.1f} {rows:>7}")
    if a.json:
        a.json.write_text(json.dumps(figures, indent=1))


def end_to_end(cmd: list[str], runs: int) -> tuple[float, int]:
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up
    times = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True).stdout
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, out.count(b"\n")


def in_process(
    db: str, model: str, first_day: str, last_day: str, runs: int
) -> list[tuple[str, float, int]]:
    from catalog import query
    from catalog.store import open_catalog

    month = query.Filter(
        date_from=query.TimeBound.parse(first_day), date_to=query.TimeBound.parse(last_day)
    )
    cases = [
        (f"search --model {model} --limit 100",
         lambda c: len(list(query.search(c, query.Filter(model=model, limit=100))))),
        (f"search --from {first_day} --to {last_day}", lambda c: len(list(query.search(c, month)))),
        (f"search --model {model} --count", lambda c: query.count(c, query.Filter(model=model))),
        ("devices", lambda c: len(query.devices(c))),
    ]  # fmt: skip
    found = []
    with open_catalog(db, create=False) as catalog:
        for label, run in cases:
            rows = run(catalog)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                run(catalog)
                times.append(time.perf_counter() - start)
            found.append((f"photocat {label}", statistics.median(times) * 1000, rows))
    return found


if __name__ == "__main__":
    main()
