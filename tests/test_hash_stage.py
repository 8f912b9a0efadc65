"""scan's two stages: records first (searchable at once; a small file's digest taken as it is
read, a larger one's null), then the hash stage; the --hash choice and where each digest is
stored; the bounded, streamed read pipeline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from photos import make_photo, with_xmp
from typer.testing import CliRunner

from catalog import ingest
from catalog.cli import app
from catalog.extract import extract
from catalog.ingest import Job, read_files, scan
from catalog.query import Filter, search
from catalog.record import tags_json
from catalog.store import Catalog, open_catalog

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    top = tmp_path / "photos"
    make_photo(top / "2016" / "a.jpg", model="SM-G920F", make="samsung", gps=(48.85, 2.29))
    make_photo(top / "2016" / "b.jpg", taken="2016:11:11 08:00:00")
    make_photo(top / "2017" / "c.png", fmt="PNG", make="Apple", model="iPhone 6")
    (top / "broken.jpg").write_text("this is not a jpeg")
    return top


@pytest.fixture
def hash_stage_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file hashed by the hash stage, however small (these tests' photos are a few KB)."""
    monkeypatch.setattr(ingest, "INLINE_HASH_BYTES", 0)


def digests(catalog: Catalog) -> dict[str, tuple[str | None, str | None]]:
    return {
        os.path.basename(r["path"]): (r["sha256"], r["blake2b"]) for r in search(catalog, Filter())
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("workers", [1, 2])
def test_after_scan_every_readable_file_has_its_sha256(
    catalog: Catalog, folder: Path, workers: int
) -> None:
    for i in range(ingest.IN_PROCESS_BELOW):  # enough for the worker processes to hash
        make_photo(folder / "many" / f"{i}.jpg", model=f"M{i % 3}")
    scan(catalog, [folder], workers=workers)
    found = digests(catalog)
    files = {p.name: p for p in folder.rglob("*") if p.is_file()}
    assert found == {name: (sha256(path), None) for name, path in files.items()}


@pytest.mark.usefixtures("hash_stage_only")
def test_photos_are_searchable_before_their_hash(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash stage starts only once every record is stored: what a search sees then."""
    seen: list[dict[str, Any]] = []
    real = ingest.hash_place

    def spy(cat: Catalog, *args: Any, **kwargs: Any) -> int:
        seen.extend(search(cat, Filter()))
        return real(cat, *args, **kwargs)

    monkeypatch.setattr(ingest, "hash_place", spy)
    scan(catalog, [folder], workers=1)
    assert len(seen) == 4 and all(r["sha256"] is None for r in seen)
    assert {r["model"] for r in seen} >= {"SM-G920F", "iPhone 6"}  # the metadata is there
    assert all(d[0] for d in digests(catalog).values())  # and the digests followed


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
@pytest.mark.parametrize("many", [False, True])  # read here / by the worker processes
def test_small_files_are_hashed_as_read_larger_ones_by_the_hash_stage(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str, many: bool
) -> None:
    if many:
        for i in range(ingest.IN_PROCESS_BELOW):
            make_photo(folder / "many" / f"{i}.jpg", model=f"M{i % 3}")
    big = folder / "2016" / "big.jpg"  # a JPEG with bytes after its end, past the limit
    make_photo(big, model="Big")
    with open(big, "ab") as out:
        out.write(os.urandom(ingest.INLINE_HASH_BYTES))
    column = 0 if algorithm == "sha256" else 1
    seen: dict[str, tuple[str | None, str | None]] = {}
    real = ingest.hash_place

    def spy(cat: Catalog, *args: Any, **kwargs: Any) -> int:
        seen.update(digests(cat))
        return real(cat, *args, **kwargs)

    monkeypatch.setattr(ingest, "hash_place", spy)
    scan(catalog, [folder], workers=2, hash_with=algorithm)
    files = {p.name: p for p in folder.rglob("*") if p.is_file()}
    assert len(seen) == len(files)

    def digest(path: Path) -> str:
        options = {"digest_size": 32} if column else {}
        return hashlib.new(algorithm, path.read_bytes(), **options).hexdigest()

    for name, path in files.items():  # before the hash stage: the small files only
        expected = None if name == "big.jpg" else digest(path)
        assert seen[name][column] == expected, name
        assert seen[name][1 - column] is None  # never in the other algorithm's column
    assert {name: d[column] for name, d in digests(catalog).items()} == {
        name: digest(path) for name, path in files.items()
    }  # and after it, every file


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
def test_a_large_file_hashed_as_read_gets_its_whole_digest_and_its_record(
    folder: Path, algorithm: str
) -> None:
    """read_file without hash_up_to (ingest_changes' default) hashes a file past
    INLINE_HASH_BYTES from the same open file it took the metadata from: every byte, from the
    start."""
    big = folder / "2016" / "big.jpg"
    make_photo(big, model="Big")
    with open(big, "ab") as out:
        out.write(os.urandom(ingest.INLINE_HASH_BYTES))
    entry = ingest.read_file(Job(str(big), 1, "2016/big.jpg"), algorithm)
    options = {"digest_size": 32} if algorithm == "blake2b" else {}
    assert (
        getattr(entry, algorithm) == hashlib.new(algorithm, big.read_bytes(), **options).hexdigest()
    )
    expected = extract(big)
    assert entry.tags_json == tags_json(expected)
    expected.tags = []  # travels as tags_json
    assert entry.record == expected and expected.model == "Big"
    assert entry.size == big.stat().st_size


def test_a_small_file_written_to_while_read_whole_gets_no_digest_until_read_again(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-once path: the file is appended to right after its bytes were read, before the
    second fstat (a real write, timed by a wrapped os.fstat). Those bytes are not the file any
    more: no digest is stored for them, and the next scan reads the file again and hashes it."""
    victim = folder / "2016" / "b.jpg"
    target = victim.stat().st_ino
    real_fstat = os.fstat
    written: list[int] = []

    def fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        # once this file's bytes have been read (its offset past 0), and only once
        if st.st_ino == target and not written and os.lseek(fd, 0, os.SEEK_CUR) > 0:
            with open(victim, "ab") as out:
                out.write(b"appended while read")
            written.append(st.st_size)
            return real_fstat(fd)
        return st

    monkeypatch.setattr(os, "fstat", fstat)
    scan(catalog, [folder], workers=1)
    monkeypatch.undo()
    assert written, "the file was never appended to: the race did not happen"
    assert digests(catalog)["b.jpg"] == (None, None)
    assert digests(catalog)["a.jpg"] == (sha256(folder / "2016" / "a.jpg"), None)
    s = scan(catalog, [folder], workers=1)
    assert s.updated == 1
    assert digests(catalog)["b.jpg"] == (sha256(victim), None)


@pytest.mark.usefixtures("hash_stage_only")
def test_a_file_changed_after_its_record_was_read_keeps_no_stale_digest(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest.hash_place

    def change_then_hash(cat: Catalog, *args: Any, **kwargs: Any) -> int:
        make_photo(folder / "2016" / "b.jpg", model="Changed Model")
        os.utime(folder / "2016" / "b.jpg", ns=(1, 1_000_000_000))
        return real(cat, *args, **kwargs)

    monkeypatch.setattr(ingest, "hash_place", change_then_hash)
    scan(catalog, [folder], workers=1)
    assert digests(catalog)["b.jpg"] == (None, None)  # the bytes hashed are not the record's
    monkeypatch.setattr(ingest, "hash_place", real)
    s = scan(catalog, [folder], workers=1)  # the next scan sees the change, reads and hashes it
    assert s.updated == 1
    assert digests(catalog)["b.jpg"] == (sha256(folder / "2016" / "b.jpg"), None)


def test_hash_choice_is_stored_under_its_algorithm(catalog: Catalog, folder: Path, db: str) -> None:
    scan(catalog, [folder], workers=1, hash_with="blake2b")
    a = folder / "2016" / "a.jpg"
    blake = hashlib.blake2b(a.read_bytes(), digest_size=32).hexdigest()
    assert digests(catalog)["a.jpg"] == (None, blake)  # never in the sha256 column
    # a later SHA-256 scan adds that digest without re-reading any record
    s = scan(catalog, [folder], workers=1)
    assert (s.new, s.updated, s.unchanged) == (0, 0, 4)
    assert digests(catalog)["a.jpg"] == (sha256(a), blake)


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
def test_a_changed_file_keeps_no_digest_of_its_old_bytes(
    catalog: Catalog, folder: Path, algorithm: str
) -> None:
    """Each algorithm's column: a file re-read after a change loses the old digest at once, and
    the next scan with that hash stores the digest of its new bytes."""
    a = folder / "2016" / "a.jpg"
    scan(catalog, [folder], workers=1, hash_with=algorithm)
    column = 0 if algorithm == "sha256" else 1
    assert digests(catalog)["a.jpg"][column] is not None
    a.write_bytes(a.read_bytes() + b"appended")
    s = scan(catalog, [folder], workers=1, hash_with=None)
    assert s.updated == 1
    assert digests(catalog)["a.jpg"] == (None, None)  # no stale digest, in either column
    scan(catalog, [folder], workers=1, hash_with=algorithm)
    new = hashlib.new(algorithm, a.read_bytes(), **({"digest_size": 32} if column else {}))
    assert digests(catalog)["a.jpg"][column] == new.hexdigest()


def test_hash_none_leaves_digests_null_until_a_scan_with_a_hash(
    catalog: Catalog, folder: Path
) -> None:
    scan(catalog, [folder], workers=1, hash_with=None)
    assert set(digests(catalog).values()) == {(None, None)}
    scan(catalog, [folder], workers=1)
    assert all(d[0] for d in digests(catalog).values())


def test_cli_hash_option_and_json_keys(folder: Path, db: str) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["scan", str(folder), "--db", db, "-q", "--hash", "blake2b"])
    assert done.exit_code == 0, done.output
    out = runner.invoke(app, ["search", "--db", db, "--format", "json", "--model", "SM-G920F"])
    (row,) = json.loads(out.stdout)
    data = (folder / "2016" / "a.jpg").read_bytes()
    assert row["sha256"] is None
    assert row["blake2b"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    bad = runner.invoke(app, ["scan", str(folder), "--db", db, "--hash", "md5"])
    assert bad.exit_code == 2


class CountingPool(Executor):
    """Runs each task when submitted, and counts them: how far ahead read_files submits."""

    _max_workers = 2

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_read_pipeline_keeps_a_bounded_number_of_records_in_flight(tmp_path: Path) -> None:
    pool = CountingPool()
    jobs = (Job(str(tmp_path / f"{i}.jpg"), 1, f"{i}.jpg") for i in range(20_000))  # lazy
    entries = read_files(jobs, pool, hash_with=None)
    first = next(entries)
    assert first.rel_path == "0.jpg"
    assert pool.submitted * ingest.CHUNK <= ingest.READ_AHEAD + ingest.CHUNK
    assert sum(1 for _ in entries) == 19_999  # all of them, in order, in the end
    assert pool.submitted == 20_000 // ingest.CHUNK + (20_000 % ingest.CHUNK > 0)


def test_heavy_listings_keep_fewer_records_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Photos whose XMP makes each listing ~10 KB: once a result shows what a task weighs, no
    more tasks go ahead than READ_AHEAD_BYTES holds (but two a worker), however many files a
    count of READ_AHEAD allows."""
    source = make_photo(tmp_path / "src.jpg")
    for i in range(200):
        (tmp_path / f"{i}.jpg").write_bytes(with_xmp(source, b"<x:a>" + b"w" * 10_000 + b"</x:a>"))
    monkeypatch.setattr(ingest, "CHUNK", 4)
    monkeypatch.setattr(ingest, "READ_AHEAD", 64)  # 16 tasks ahead by count...
    monkeypatch.setattr(ingest, "READ_AHEAD_BYTES", 100_000)  # ...2 by weight: 4 a worker pair
    pool = CountingPool()
    entries = read_files(
        (Job(str(tmp_path / f"{i}.jpg"), 1, f"{i}.jpg") for i in range(200)), pool, hash_with=None
    )
    ahead = []
    for n, entry in enumerate(entries, 1):
        assert entry.rel_path == f"{n - 1}.jpg" and len(entry.tags_json or "") > 10_000
        ahead.append(pool.submitted - n // 4)  # tasks submitted and not yet consumed
    assert max(ahead[:16]) >= 16  # before any weight was known: the count's limit
    assert max(ahead[70:150]) <= 2 * CountingPool._max_workers + 1


def test_write_batches_end_at_a_weight_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "BATCH_BYTES", 3_000)
    batches: list[list[str]] = []
    items = ["x" * 1_000] * 10 + ["y"] * 5
    ingest._write_in_batches(items, lambda b: batches.append(list(b)), 4, None, None, weight=len)
    assert [len(b) for b in batches] == [3, 3, 3, 4, 2]  # 3 KB, then 4 items at most
    batches.clear()
    ingest._write_in_batches(items, lambda b: batches.append(list(b)), 4, None, None)
    assert [len(b) for b in batches] == [4, 4, 4, 3]  # no weight: by count only


def test_the_watchers_batches_end_at_a_weight_too(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingest_changes (what watch feeds) writes a batch once its listings weigh BATCH_BYTES."""
    monkeypatch.setattr(ingest, "BATCH_BYTES", 1)  # every record its own batch
    place = ingest.resolve_place(catalog, folder)
    rels = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    sizes: list[int] = []
    write_batch = catalog.write_batch
    monkeypatch.setattr(
        catalog, "write_batch", lambda b, g: sizes.append(len(b)) or write_batch(b, g)
    )
    report = ingest.ingest_changes(catalog, place, rels)
    assert sorted(report.new) == rels and sizes == [1] * len(rels)
    assert len(list(search(catalog, Filter()))) == len(rels)


def test_worker_results_carry_the_tag_listing_serialised(folder: Path) -> None:
    (entry,) = read_files([Job(str(folder / "2016" / "a.jpg"), 1, "a.jpg")], None, hash_with=None)
    assert entry.record.tags == [] and entry.sha256 is None
    assert ["IFD0", 0x0110, "Model", "SM-G920F"] in json.loads(entry.tags_json or "")


def test_opening_a_catalog_at_head_does_not_import_alembic(db: str) -> None:
    open_catalog(db).close()
    code = (
        "import sys; from catalog.store import open_catalog; "
        f"open_catalog({db!r}).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.usefixtures("hash_stage_only")
def test_the_hash_stage_leaves_files_being_hashed_to_them_and_hashes_those_left_undone(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hashing` (a first scan's early digests): those files are not hashed by the stage's own
    tasks, which are not kept waiting for them; their digests are stored once the stage's first
    one is in, and any not stored (here b.jpg: as if changed after it was hashed early) is
    hashed before the stage ends."""
    scan(catalog, [folder], workers=1, hash_with=None)
    place = ingest.resolve_place(catalog, folder)
    files = {p.name: p for p in folder.rglob("*") if p.is_file()}
    order: list[str] = []
    real_digest = ingest._digest

    def digest(photo_id: int, path: str, *args: Any) -> Any:
        order.append(os.path.basename(path))
        return real_digest(photo_id, path, *args)

    def store_early() -> tuple[int, set[str]]:
        order.append("stored early")
        state = catalog.states_of(place.root_id, ["2016/a.jpg"])["2016/a.jpg"]
        digest = sha256(files["a.jpg"])
        stored = catalog.set_digests(
            "sha256", [(state.photo_id, state.size, state.mtime_ns, digest)]
        )
        return stored, {"2016/a.jpg"}

    monkeypatch.setattr(ingest, "_digest", digest)
    hashing = ({"2016/a.jpg", "2016/b.jpg"}, store_early)
    assert ingest.hash_place(catalog, place, None, "sha256", hashing=hashing) == len(files)
    assert order[1] == "stored early" and order[-1] == "b.jpg"
    assert sorted(order[:1] + order[2:-1]) == sorted(set(files) - {"a.jpg", "b.jpg"})
    assert digests(catalog) == {name: (sha256(path), None) for name, path in files.items()}
