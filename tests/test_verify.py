"""photocat verify: catalogued files read again and their digests compared with the catalog's,
on real files changed in the ways evidence gets changed: bytes rewritten behind an unchanged
size and mtime (which a scan, trusting stat, does not see), deleted, swapped for a FIFO or a
link; under each algorithm; through the core function and the command."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import pytest
from photos import make_photo
from typer.testing import CliRunner

from catalog import ingest
from catalog.cli import app
from catalog.ingest import RootError, Verified, scan, verify
from catalog.store import open_catalog

runner = CliRunner()


def digest(algorithm: str, path: Path) -> str:
    h = hashlib.blake2b(digest_size=32) if algorithm == "blake2b" else hashlib.sha256()
    h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    top = tmp_path / "evidence"
    make_photo(top / "a.jpg", model="SM-G920F", make="samsung")
    make_photo(top / "sub" / "b.jpg", taken="2016:11:11 08:00:00")
    make_photo(top / "sub" / "c.png", fmt="PNG")
    make_photo(top / "sub" / "\x1b[31mred.jpg")  # a hostile name
    with open(top / "large.jpg", "wb") as out:  # hashed by the hash stage, not as read
        out.write(make_photo(top / "tmp.jpg").read_bytes())
        out.write(os.urandom(ingest.INLINE_HASH_BYTES))
    (top / "tmp.jpg").unlink()
    return top


def results(db: str, folders: list[str] = [], algorithm: str = "sha256", **kw: int) -> dict:  # noqa: B006
    with open_catalog(db) as catalog:
        total, found = verify(catalog, folders, algorithm, **kw)
        by_path = {Path(v.path): v for v in found}
    assert total == len(by_path)
    return by_path


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
@pytest.mark.parametrize("workers", [1, 2])
def test_every_file_as_catalogued_verifies(
    tree: Path, db: str, algorithm: str, workers: int
) -> None:
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2, hash_with=algorithm)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    assert len(files) == 5
    assert results(db, algorithm=algorithm, workers=workers) == {
        p: Verified(str(p), "ok", digest(algorithm, p), digest(algorithm, p)) for p in files
    }


def test_each_way_a_file_can_differ(tree: Path, db: str, tmp_path: Path) -> None:
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2)
    before = {p: digest("sha256", p) for p in tree.rglob("*") if p.is_file()}

    # bytes rewritten in place, same size, mtime put back: stat says nothing changed
    changed = tree / "large.jpg"
    st = changed.stat()
    with open(changed, "r+b") as fh:
        fh.seek(st.st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
    with open_catalog(db) as catalog:  # which is why verify exists
        assert scan(catalog, [tree], workers=2).updated == 0
    (tree / "a.jpg").unlink()  # gone
    fifo = tree / "sub" / "b.jpg"  # a FIFO in its place: never opened blocking
    fifo.unlink()
    os.mkfifo(fifo)
    link = tree / "sub" / "c.png"  # a link in its place, to the very same bytes
    moved = tmp_path / "c.png"
    link.rename(moved)
    link.symlink_to(moved)

    got = results(db)
    assert {p.name: v.status for p, v in got.items()} == {
        "large.jpg": "changed",
        "a.jpg": "missing",
        "b.jpg": "unreadable",
        "c.png": "unreadable",
        "\x1b[31mred.jpg": "ok",
    }
    assert (
        got[changed].catalogued
        == before[changed]
        != got[changed].found
        == digest("sha256", changed)
    )
    assert got[fifo].error and "not a regular file" in got[fifo].error
    assert got[link].error and "symbolic link" in got[link].error
    assert all(v.catalogued == before[p] for p, v in got.items())


def test_files_never_hashed_cannot_verify(tree: Path, db: str) -> None:
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2, hash_with=None)
    assert {v.status for v in results(db).values()} == {"not hashed"}
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2, hash_with="blake2b")
    assert {v.status for v in results(db).values()} == {"not hashed"}  # another column
    assert {v.status for v in results(db, algorithm="blake2b").values()} == {"ok"}


def test_only_the_folders_asked_for(tree: Path, db: str, tmp_path: Path) -> None:
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2)
    assert {p.name for p in results(db, [str(tree / "sub")])} == {
        "b.jpg",
        "c.png",
        "\x1b[31mred.jpg",
    }
    assert {p.name for p in results(db, [str(tree / "sub"), str(tree / "a.jpg")])} == {
        "a.jpg", "b.jpg", "c.png", "\x1b[31mred.jpg",
    }  # fmt: skip
    (tmp_path / "other").mkdir()
    with open_catalog(db) as catalog, pytest.raises(RootError, match="nothing catalogued"):
        verify(catalog, [str(tmp_path / "other")])


def test_the_command_lists_what_did_not_verify_and_exits_1(tree: Path, db: str) -> None:
    code = runner.invoke(app, ["scan", str(tree), "--db", db]).exit_code
    assert code == 0
    done = runner.invoke(app, ["verify", "--db", db])
    assert done.exit_code == 0 and done.stdout.count("\n") <= 4  # an empty table
    assert "photocat: verified 5 file(s): ok 5, changed 0, missing 0" in done.stderr

    (tree / "sub" / "b.jpg").write_bytes(b"other bytes")
    done = runner.invoke(app, ["verify", str(tree / "sub"), "--format", "csv", "--db", db])
    assert done.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["status"], Path(r["path"]).name) for r in rows] == [("changed", "b.jpg")]
    assert rows[0]["sha256_now"] == digest("sha256", tree / "sub" / "b.jpg")
    assert "verified 3 file(s): ok 2, changed 1" in done.stderr

    done = runner.invoke(app, ["verify", "--all", "--format", "paths", "--db", db])
    assert done.exit_code == 1 and len(done.stdout.splitlines()) == 5
    assert "\x1b" not in done.stdout  # the hostile name, escaped
    done = runner.invoke(app, ["verify", str(tree / "nowhere"), "--db", db])
    assert done.exit_code == 1 and "nothing catalogued on this machine under" in done.stderr


def test_only_the_files_catalogued_on_this_machine(
    tree: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog shared by several machines (PostgreSQL): each verifies what it can read."""
    monkeypatch.setenv("PHOTOCAT_HOST", "camera-room")
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2)
    assert len(results(db)) == 5
    monkeypatch.setenv("PHOTOCAT_HOST", "elsewhere")
    assert results(db) == {}
    with open_catalog(db) as catalog, pytest.raises(RootError, match="nothing catalogued"):
        verify(catalog, [str(tree)])
