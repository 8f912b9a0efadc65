"""The benchmark scripts still run, and make_catalog.py makes the catalog it describes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def make_catalog(db: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, str(BENCHMARKS / "make_catalog.py"), "--db", str(db), *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def months_in_row_order(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rel_path, captured_at FROM photos ORDER BY id").fetchall()
    for rel, taken in rows:  # each photo sits in the folder of its month
        assert rel[:7] == taken[:7].replace("-", "/"), (rel, taken)
    return [rel[:7] for rel, _ in rows]


@pytest.mark.parametrize("order", ["scan", "random"])
def test_make_catalog_writes_what_it_says(tmp_path: Path, order: str) -> None:
    db = tmp_path / "synthetic.db"
    # small batches: Catalog.upsert writes each batch in path order, which groups months
    args = ["--photos", "3000", "--devices", "50", "--g920f", "0.05", "--batch", "50"]
    make_catalog(db, *args, "--order", order)
    with sqlite3.connect(db) as conn:
        total, gps = conn.execute(
            "SELECT count(*), count(g.photo_id) FROM photos p"
            " LEFT JOIN gps_positions g ON g.photo_id = p.id"
        ).fetchone()
        g920f = conn.execute(
            "SELECT count(*) FROM photos p JOIN devices d ON d.id = p.device_id"
            " WHERE d.make = 'samsung' AND d.model = 'SM-G920F'"
        ).fetchone()[0]
        devices = conn.execute("SELECT count(*) FROM devices").fetchone()[0]
    assert total == 3000
    assert 0.55 < gps / total < 0.65
    assert 0.03 < g920f / total < 0.07
    assert 40 <= devices <= 51
    months = months_in_row_order(db)
    runs = sum(1 for a, b in pairwise(months) if a != b) + 1
    if order == "scan":  # one month's folder after another, as a scan's walk writes them
        assert months == sorted(months) and runs == len(set(months))
    else:  # random dates: months interleave
        assert runs > 10 * len(set(months))


def test_query_latency_runs_on_a_made_catalog(tmp_path: Path) -> None:
    db = tmp_path / "synthetic.db"
    make_catalog(db, "--photos", "500")
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "query_latency.py"), "--db", str(db), "--runs", "1",
         "--month", "2016-11"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "search --from 2016-11-01 --to 2016-11-30" in out
    header = next(line for line in out.splitlines() if line.startswith("query alone"))
    assert header.split()[-5:] == ["records", "first", "tuples", "SQLite", "rows"]


def test_scan_cpu_splits_a_real_scans_cpu(tmp_path: Path) -> None:
    from photos import make_photo

    for i in range(3):
        make_photo(tmp_path / "photos" / f"{i}.jpg", offset="+01:00", gps=(48.85, 2.29 + i))
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scan_cpu.py"), str(tmp_path / "photos"), "--runs", "2",
         "--", "--hash", "none"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "--hash none: medians of 2 runs" in out
    lines = [line.rsplit(None, 1) for line in out.splitlines() if line.startswith("  ")]
    stages = {label.strip(): value for label, value in lines}
    for stage in ("time: resolve (when.apply)", "store: records (Catalog.upsert)",
                  "store: photos rows", "the rest (start-up, walk, the results)"):  # fmt: skip
        assert float(stages[stage]) > 0, (stage, out)
