#!/usr/bin/env python3
"""Query latency on a large catalog: end to end (a new `photocat` process each time, output
to a pipe) and the query alone (in this process, on an open catalog).

    .venv/bin/python benchmarks/make_catalog.py --photos 1000000 --db /tmp/photocat-1m.db
    .venv/bin/python benchmarks/query_latency.py --db /tmp/photocat-1m.db

Medians of --runs runs after one warm-up run (a warm page cache, as for a catalog in use).
In process, a search is timed four ways: every record made (`catalog.query.search` to its
last record: SQLite's work plus a Python dict per row), the first record only (how soon output
starts), the rows as the driver's tuples (the same SQL through the DBAPI cursor, fetchall: no
SQLAlchemy result processing, no records), and SQLite alone (the same SQL run to its last row
inside SQLite, every column of every row computed, one count back: what the query costs apart
from the rows' Python objects).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

    keys = {"query_ms": "records", "first_record_ms": "first", "tuples_ms": "tuples",
            "sqlite_ms": "SQLite"}  # fmt: skip
    print(
        f"\n{'query alone (in process, catalog open), median ms':<50} "
        + " ".join(f"{k:>8}" for k in keys.values())
        + f" {'rows':>7}"
    )
    for label, timings, rows in in_process(a.db, a.model, first_day, last_day, a.runs):
        figures.setdefault(label, {}).update(timings)
        shown = (f"{timings[k]:>8.1f}" if k in timings else f"{'':>8}" for k in keys)
        print(f"{label:<50} {' '.join(shown)} {rows:>7}")
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


def median_ms(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def in_process(
    db: str, model: str, first_day: str, last_day: str, runs: int
) -> list[tuple[str, dict[str, float], int]]:
    from catalog import query
    from catalog.store import open_catalog

    month = query.Filter(
        date_from=query.TimeBound.parse(first_day), date_to=query.TimeBound.parse(last_day)
    )
    searches = {
        f"search --model {model} --limit 100": query.Filter(model=model, limit=100),
        f"search --from {first_day} --to {last_day}": month,
    }
    cases: list[tuple[str, Callable[[Any], int]]] = [
        *((label, lambda c, f=f: len(list(query.search(c, f)))) for label, f in searches.items()),
        (f"search --model {model} --count", lambda c: query.count(c, query.Filter(model=model))),
        ("devices", lambda c: len(query.devices(c))),
    ]
    found = []
    with open_catalog(db, create=False, queries=True) as catalog:  # as the CLI opens it
        for label, run in cases:
            rows = run(catalog)
            timings = {"query_ms": median_ms(lambda run=run: run(catalog), runs)}
            if label in searches:
                f = searches[label]
                first = lambda f=f: next(query.search(catalog, f))  # noqa: E731
                timings["first_record_ms"] = median_ms(first, runs)
                with catalog.engine.connect() as conn:
                    as_tuples, in_sqlite = driver_queries(conn, query.build(f))
                    if not as_tuples() == in_sqlite() == rows:  # the same rows, three ways
                        raise SystemExit(f"{label}: the driver's SQL finds other rows")
                    timings["tuples_ms"] = median_ms(as_tuples, runs)
                    timings["sqlite_ms"] = median_ms(in_sqlite, runs)
            found.append((f"photocat {label}", timings, rows))
    return found


def driver_queries(conn: Any, stmt: Any) -> tuple[Callable[[], int], Callable[[], int]]:
    """A search's SQL, compiled once, run on the open connection's DBAPI cursor two ways: to its
    last row as the driver's tuples, and to its last row inside SQLite with one count back.

    For the second, the search is a subquery of SELECT count(*): SQLite still computes every
    column of every row (each is a Column step of the subquery's program, which EXPLAIN lists;
    making one column dearer makes the count dearer), but no row becomes Python objects. LIMIT -1
    (no limit) keeps SQLite from dropping the subquery's ORDER BY: the order is part of the
    query's cost. (An earlier version took max() of every column instead: 33 aggregates over
    5,498 rows cost ~10 ms of their own, which is not the search's work.)"""
    from sqlalchemy import func, select

    def sql(s: Any) -> str:  # values written in, as SQLAlchemy's bind processors would bind them
        return str(s.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))

    rows_sql = sql(stmt)
    count_sql = sql(select(func.count()).select_from(stmt.limit(-1).subquery()))
    cursor = conn.connection.dbapi_connection.cursor()

    def as_tuples() -> int:
        return len(cursor.execute(rows_sql).fetchall())

    def in_sqlite() -> int:
        return int(cursor.execute(count_sql).fetchone()[0])

    return as_tuples, in_sqlite


if __name__ == "__main__":
    main()
