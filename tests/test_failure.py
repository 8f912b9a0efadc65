"""Failure: kill -9 mid-scan, two writers at once, a full disk, a read-only catalog, old schemas.

Every scan here is the real CLI in a subprocess, killed or constrained by real OS mechanisms
(SIGKILL, RLIMIT_FSIZE, another user's permissions)."""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BACKEND, engine_for, sqlite_only
from photos import make_photo
from sqlalchemy import create_engine, inspect, text

from catalog.ingest import scan
from catalog.store import migrate, open_catalog

PHOTOCAT = [sys.executable, "-c", "from catalog.cli import main; main()"]
FILES = int(os.environ.get("PHOTOCAT_KILL_FILES", "5000"))
TRIALS = int(os.environ.get("PHOTOCAT_KILL_TRIALS", "10" if BACKEND == "sqlite" else "3"))


def photocat(*args: object, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PHOTOCAT, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def state(db: str) -> list[tuple]:  # type: ignore[type-arg]
    """The catalog's content, without ids and timestamps: what two equal catalogs share."""
    engine = (
        engine_for(db)
        if os.access(Path(db).parent, os.W_OK) or "://" in db
        else (create_engine(f"sqlite:///file:{db}?mode=ro&immutable=1&uri=true"))
    )
    if "photos" not in inspect(engine).get_table_names():  # killed before the schema was made
        engine.dispose()
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.path, p.rel_path, p.size, p.mtime_ns, p.sha256, p.format, p.width,"
                " p.captured_at, d.make, d.model, g.latitude, g.longitude, p.error, t.tags"
                " FROM photos p JOIN roots r ON r.id = p.root_id"
                " LEFT JOIN devices d ON d.id = p.device_id"
                " LEFT JOIN gps_positions g ON g.photo_id = p.id"
                " LEFT JOIN raw_tags t ON t.photo_id = p.id ORDER BY r.path, p.rel_path"
            )
        )
        out = [tuple(r) for r in rows]
    engine.dispose()
    return out


def integrity(db: str) -> str:
    if BACKEND != "sqlite":
        return "ok"
    engine = engine_for(db)
    with engine.connect() as conn:
        result = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
    engine.dispose()
    return str(result)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FILES small real JPEGs with varied EXIF, some with GPS, in nested folders."""
    top = tmp_path_factory.mktemp("kill") / "library"
    models = [("samsung", "SM-G920F"), ("Canon", "Canon EOS 5D"), ("Apple", "iPhone 6")]
    for i in range(FILES):
        make, model = models[i % 3]
        make_photo(
            top / f"{2010 + i % 7}" / f"{i % 12 + 1:02d}" / f"IMG_{i:05d}.jpg",
            make=make, model=model,
            taken=f"{2010 + i % 7}:{i % 12 + 1:02d}:{i % 28 + 1:02d} 12:00:00",
            gps=(45 + i % 90 / 10, 7 + i % 50 / 10) if i % 5 == 0 else None,
            size=(16, 12), color=(i % 256, (i * 7) % 256, 90),
        )  # fmt: skip
    return top


@pytest.fixture(scope="module")
def reference(library: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:  # type: ignore[type-arg]
    from conftest import _create_database, _drop_database

    db = _create_database(tmp_path_factory.mktemp("ref"))
    with open_catalog(db) as catalog:
        scan(catalog, [library], workers=2)
    ref = state(db)
    _drop_database(db)
    assert len(ref) == FILES
    return ref


def test_kill_9_mid_scan_never_corrupts_and_a_rescan_converges(
    library: Path,
    reference: list[tuple],
    new_db: Callable[[], str],  # type: ignore[type-arg]
) -> None:
    # How long an uninterrupted CLI scan takes here, to spread the kills over it.
    db = new_db()
    t0 = time.monotonic()
    p = photocat("scan", library, "--db", db, "--quiet")
    assert p.wait(timeout=600) == 0, p.stderr.read() if p.stderr else ""
    full = time.monotonic() - t0
    rng = random.Random(20261125)
    moments = sorted(rng.uniform(0.05, 1.0) * full for _ in range(TRIALS))
    for moment in moments:
        db = new_db()
        p = photocat("scan", library, "--db", db, "--quiet")
        time.sleep(moment)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        assert integrity(db) == "ok", f"corrupt after kill at {moment:.2f}s"
        killed_rows = len(state(db))
        with open_catalog(db) as catalog:
            summary = scan(catalog, [library], workers=2)
        assert summary.removed == 0
        assert state(db) == reference, f"no convergence after kill at {moment:.2f}s"
        print(
            f"kill at {moment:.2f}s of {full:.2f}s: {killed_rows} rows survived, rescan converged"
        )


def test_two_overlapping_scans_at_once_lose_nothing_and_duplicate_nothing(
    library: Path,
    reference: list[tuple],
    db: str,  # type: ignore[type-arg]
) -> None:
    subfolder = library / "2012"
    with open_catalog(db):
        pass  # migrate first, so both writers start on an existing catalog
    a = photocat("scan", library, "--db", db, "--quiet", "--workers", "1")
    b = photocat("scan", subfolder, "--db", db, "--quiet", "--workers", "1")
    for p in (a, b):
        code = p.wait(timeout=600)
        err = p.stderr.read() if p.stderr else ""
        assert code == 0, err
        assert "locked" not in err and "Traceback" not in err, err
    assert state(db) == reference


def run_limited(cmd: list[str], limit: int) -> subprocess.CompletedProcess[str]:
    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        cmd, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300
    )


@sqlite_only
def test_disk_full_is_a_clear_error_and_the_catalog_survives(tmp_path: Path) -> None:
    first = tmp_path / "first"
    for i in range(20):
        make_photo(first / f"{i}.jpg", model=f"M{i}")
    db = tmp_path / "catalog.db"
    with open_catalog(db) as catalog:
        scan(catalog, [first], workers=1)
    before = state(str(db))
    more = tmp_path / "more"
    for i in range(600):
        make_photo(more / f"{i}.jpg", model=f"Model {i}", size=(64, 48))
    size = db.stat().st_size + 4096
    result = run_limited([*PHOTOCAT, "scan", str(more), "--db", str(db), "--quiet"], size)
    assert result.returncode == 1, result.stderr
    # SQLite says "database or disk is full" on ENOSPC and "disk I/O error" on EFBIG
    assert "cannot write to the catalog" in result.stderr and "disk" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert integrity(str(db)) == "ok"
    after = state(str(db))
    assert after[: len(before)] == before or set(before) <= set(after)


@sqlite_only
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a read-only bind mount")
def test_read_only_catalog_is_a_clear_error_and_stays_as_it_was(tmp_path: Path) -> None:
    """A catalog on read-only media: searching works, scanning fails cleanly, nothing changes."""
    writable, mounted = tmp_path / "rw", tmp_path / "ro"
    photos = tmp_path / "photos"
    for i in range(5):
        make_photo(photos / f"{i}.jpg", gps=(48.8584, 2.2945))
    writable.mkdir()
    with open_catalog(writable / "catalog.db") as catalog:
        scan(catalog, [photos], workers=1)
    make_photo(photos / "new.jpg")
    mounted.mkdir()
    subprocess.run(["mount", "--bind", str(writable), str(mounted)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
        db = str(mounted / "catalog.db")
        before = state(db)
        found = subprocess.run(
            [*PHOTOCAT, "search", "--count", "--db", db], capture_output=True, text=True
        )
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == "5"
        # the distance function is registered on a read-only connection too; verify writes nothing
        near = [*PHOTOCAT, "search", "--near", "48.8584,2.2945", "--count", "--db", db]
        found = subprocess.run(near, capture_output=True, text=True)
        assert (found.returncode, found.stdout.strip()) == (0, "5"), found.stderr
        checked = subprocess.run([*PHOTOCAT, "verify", "--db", db], capture_output=True, text=True)
        assert checked.returncode == 0 and "ok 5," in checked.stderr, checked.stderr
        listed = subprocess.run(
            [*PHOTOCAT, "folders", "--db", db, "-f", "csv"], capture_output=True, text=True
        )
        assert listed.returncode == 0 and f"{photos},ok,5," in listed.stdout, listed.stderr
        forgot = subprocess.run(
            [*PHOTOCAT, "forget", str(photos), "--db", db], capture_output=True, text=True
        )
        assert forgot.returncode == 1 and "readonly" in forgot.stderr, forgot.stderr
        assert "Traceback" not in forgot.stderr
        result = subprocess.run(
            [*PHOTOCAT, "scan", str(photos), "--db", db], capture_output=True, text=True
        )
        assert result.returncode == 1, result.stderr
        assert "readonly" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert state(db) == before
    finally:
        subprocess.run(["umount", "-l", str(mounted)], check=False)  # lazy: never leave it behind
    assert integrity(str(writable / "catalog.db")) == "ok"


def test_a_catalog_at_the_first_revision_upgrades_to_head_without_loss(
    db: str, tmp_path: Path
) -> None:
    """Data written at revision 0001 survives every later migration, and downgrade works."""
    from catalog.store import make_engine

    for i in range(5):
        make_photo(tmp_path / "p" / f"{i}.jpg", model=f"M{i}", gps=(10.0 + i, 20.0))
    engine = make_engine(db if "://" in db else f"sqlite:///{db}")
    migrate(engine, "0001")
    with engine.begin() as conn:  # rows as photocat 0001 wrote them
        conn.execute(text("INSERT INTO roots (id, host, path) VALUES (1, 'h', '/p')"))
        conn.execute(text("INSERT INTO devices (id, make, model) VALUES (1, 'Canon', 'M1')"))
        conn.execute(
            text(
                "INSERT INTO photos (id, root_id, rel_path, size, mtime_ns, format, captured_at,"
                " device_id, first_seen, last_scanned) VALUES (1, 1, 'a.jpg', 10, 1, 'JPEG',"
                " '2016-11-10 18:22:47', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO gps_positions (photo_id, latitude, longitude) VALUES (1, 48.85, 2.29)"
            )
        )
        conn.execute(text("INSERT INTO raw_tags (photo_id, tags) VALUES (1, '[]')"))
    engine.dispose()
    with open_catalog(db) as catalog:  # upgrades to head
        with catalog.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT p.rel_path, d.model, g.latitude FROM photos p"
                    " JOIN devices d ON d.id = p.device_id"
                    " JOIN gps_positions g ON g.photo_id = p.id"
                )
            ).one()
        assert tuple(row) == ("a.jpg", "M1", 48.85)
        with catalog.engine.connect() as conn:  # 0004: read by a photocat before the column
            assert conn.execute(text("SELECT read_by FROM photos")).scalar() is None
        migrate(catalog.engine, "0001", down=True)
        migrate(catalog.engine)
        with catalog.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 1
