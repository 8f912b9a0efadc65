from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from corpus import BROKEN, IMAGES, require_corpus

from catalog.ingest import ScanSummary, scan
from catalog.store import Catalog, open_catalog


@dataclass
class Scanned:
    """A real SQLite catalog made by scanning a real folder once."""

    db: Path
    folder: Path
    summary: ScanSummary

    def open(self) -> Catalog:
        return open_catalog(self.db)


def _scan_once(tmp_path_factory: pytest.TempPathFactory, folder: Path, name: str) -> Scanned:
    db = tmp_path_factory.mktemp(name) / "catalog.db"
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
def db(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture
def catalog(db: Path) -> Iterator[Catalog]:
    with open_catalog(db) as c:
        yield c
