"""Shared fixtures. Every test that touches a catalog gets it from `db` / `new_db`: a SQLite file
by default, or a fresh database on a real PostgreSQL server when PHOTOCAT_TEST_POSTGRES holds an
admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres), as .ci/run does."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from corpus import BROKEN, IMAGES, require_corpus

from catalog.ingest import ScanSummary, scan
from catalog.store import Catalog, open_catalog

PG_ADMIN = os.environ.get("PHOTOCAT_TEST_POSTGRES") or None
BACKEND = "postgresql" if PG_ADMIN else "sqlite"
sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite-specific behaviour")


def pytest_report_header() -> str:
    return f"photocat catalog backend: {BACKEND}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if PG_ADMIN:  # a configured server that cannot be reached fails the run, never skips it
        engine = create_engine(PG_ADMIN)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise pytest.UsageError(
                f"PHOTOCAT_TEST_POSTGRES is set but unreachable: {exc}"
            ) from exc
        finally:
            engine.dispose()


def _create_database(tmp: Path) -> str:
    """A new, empty catalog location: a SQLite path, or a new PostgreSQL database's URL."""
    if not PG_ADMIN:
        return str(tmp / f"catalog-{uuid.uuid4().hex[:8]}.db")
    name = f"photocat_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    if not PG_ADMIN:
        return
    name = make_url(url).database
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def engine_for(db: str) -> Engine:
    """A plain second connection to a catalog, independent of photocat's own engine."""
    return create_engine(db if "://" in db else f"sqlite:///{db}")


@dataclass
class Scanned:
    """A real catalog made by scanning a real folder once."""

    db: str
    folder: Path
    summary: ScanSummary

    def open(self) -> Catalog:
        return open_catalog(self.db)


def _scan_once(tmp_path_factory: pytest.TempPathFactory, folder: Path, name: str) -> Scanned:
    db = _create_database(tmp_path_factory.mktemp(name))
    with open_catalog(db) as catalog:
        summary = scan(catalog, [folder], workers=2)
    return Scanned(db, folder, summary)


@pytest.fixture(scope="session")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """The shared corpus's images, scanned once per test session."""
    require_corpus()
    return _scan_once(tmp_path_factory, IMAGES, "corpus")


@pytest.fixture(scope="session")
def broken_db(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    require_corpus()
    return _scan_once(tmp_path_factory, BROKEN, "broken")


@pytest.fixture
def new_db(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Make fresh catalog locations (SQLite files or PostgreSQL databases), dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(_create_database(tmp_path))
        return made[-1]

    yield make
    for url in made:
        _drop_database(url)


@pytest.fixture
def db(new_db: Callable[[], str]) -> str:
    return new_db()


@pytest.fixture
def catalog(db: str) -> Iterator[Catalog]:
    with open_catalog(db) as c:
        yield c
