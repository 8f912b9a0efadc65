"""scan on real folders and a real SQLite file: idempotence, change detection, removals, roots."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Scanned, engine_for, sqlite_only
from corpus import broken_expected
from photos import make_photo
from sqlalchemy import text

from catalog import __version__ as photocat_version
from catalog import ingest
from catalog.extract import extract
from catalog.ingest import RootError, is_candidate, resolve_place, scan
from catalog.query import Filter, search
from catalog.store import Catalog, open_catalog

OPENED: list[str] = []
_WATCHING: list[str] = []


def _audit(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if (
        event == "open"
        and _WATCHING
        and isinstance(args[0], str)
        and args[0].startswith(_WATCHING[0])
    ):
        OPENED.append(args[0])


sys.addaudithook(_audit)


def dump(db: str) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Every row of every photo table, read through a second connection, to compare states."""
    engine = engine_for(db)
    with engine.connect() as conn:
        tables = ("photos", "devices", "gps_positions", "raw_tags")
        rows = {
            t: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}"))) for t in tables
        }
    engine.dispose()
    return rows


CONTENT = (
    "SELECT p.rel_path, p.size, p.sha256, p.width, p.captured_at, d.make, d.model, p.error,"
    " t.tags FROM photos p LEFT JOIN devices d ON d.id = p.device_id"
    " JOIN raw_tags t ON t.photo_id = p.id ORDER BY p.rel_path"
)


def content(db: str) -> list[tuple]:  # type: ignore[type-arg]
    """What two scans of the same files must agree on, ids and timestamps aside."""
    engine = engine_for(db)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(CONTENT))]
    engine.dispose()
    return rows


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    top = tmp_path / "photos"
    make_photo(top / "2016" / "a.jpg", model="SM-G920F", make="samsung", gps=(48.85, 2.29))
    make_photo(top / "2016" / "b.jpg", taken="2016:11:11 08:00:00")
    make_photo(top / "2017" / "deep" / "c.png", fmt="PNG", make="Apple", model="iPhone 6")
    (top / "notes.txt").write_text("not a photo")
    (top / ".hidden.jpg").write_bytes(b"x")
    (top / "2016" / "d.jpg.part").write_bytes(b"partial")
    (top / "broken.jpg").write_text("this is not a jpeg")
    return top


def test_scan_catalogues_photos_and_records_failures(catalog: Catalog, folder: Path) -> None:
    s = scan(catalog, [folder], workers=1)
    assert (s.new, s.updated, s.unchanged, s.removed, s.failed) == (4, 0, 0, 0, 1)
    states = catalog.file_states(catalog.roots()[0][0])
    assert sorted(states) == ["2016/a.jpg", "2016/b.jpg", "2017/deep/c.png", "broken.jpg"]


def test_second_scan_of_unchanged_tree_reads_no_image_and_changes_no_row(
    catalog: Catalog, folder: Path, db: str
) -> None:
    scan(catalog, [folder], workers=1)
    before = dump(db)
    OPENED.clear()
    _WATCHING[:] = [str(folder)]
    try:
        s = scan(catalog, [folder], workers=1)
    finally:
        _WATCHING.clear()
    assert OPENED == []
    assert (s.new, s.updated, s.unchanged, s.removed) == (0, 0, 4, 0)
    assert dump(db) == before


def test_changed_files_are_reread_and_gone_ones_removed(catalog: Catalog, folder: Path) -> None:
    scan(catalog, [folder], workers=1)
    make_photo(folder / "2016" / "b.jpg", model="Changed Model")
    os.utime(folder / "2016" / "b.jpg", ns=(1, 1_000_000_000))
    (folder / "2016" / "a.jpg").unlink()
    make_photo(folder / "new.jpg")
    s = scan(catalog, [folder], workers=1)
    assert (s.new, s.updated, s.unchanged, s.removed) == (1, 1, 2, 1)
    models = {r["path"].rsplit("/", 1)[1]: r["model"] for r in search(catalog, Filter())}
    assert models == {
        "b.jpg": "Changed Model",
        "c.png": "iPhone 6",
        "broken.jpg": None,
        "new.jpg": "Canon EOS 5D",
    }


GPS = (
    "SELECT p.rel_path, g.latitude, g.longitude FROM gps_positions g"
    " JOIN photos p ON p.id = g.photo_id"
)


def test_reread_reads_every_file_again_and_takes_its_digest_again(
    catalog: Catalog, folder: Path, db: str
) -> None:
    """--reread, after an upgrade of photocat: rows as an older photocat might have left them
    (another width, a position a little off, no tag listing, another digest), which a rescan
    trusts (size and mtime unchanged), are read again, each file opened, and are then what a
    first scan stores, digests taken again."""
    scan(catalog, [folder], workers=1)
    expected, engine = content(db), engine_for(db)
    with engine.connect() as conn:
        positions = sorted(tuple(r) for r in conn.execute(text(GPS)))
    with engine.begin() as conn:
        conn.execute(text("UPDATE photos SET sha256 = :d, width = 1"), {"d": "0" * 64})
        conn.execute(text("UPDATE photos SET read_by = NULL"))  # as before migration 0004
        conn.execute(text("UPDATE gps_positions SET longitude = longitude + 0.000001"))
        conn.execute(text("UPDATE raw_tags SET tags = '[]'"))
    s = scan(catalog, [folder], workers=1)
    assert (s.new, s.updated, s.unchanged) == (0, 0, 4)
    with engine.connect() as conn:  # a rescan reads nothing, so says nothing new about it
        assert conn.execute(text("SELECT count(read_by) FROM photos")).scalar() == 0
    older = content(db)
    assert older != expected and {r[2] for r in older} == {"0" * 64}
    OPENED.clear()
    _WATCHING[:] = [str(folder)]
    try:
        s = scan(catalog, [folder], workers=1, reread=True)
    finally:
        _WATCHING.clear()
    assert (s.new, s.updated, s.unchanged, s.removed, s.failed) == (0, 4, 0, 0, 1)
    read = {os.path.relpath(p, folder) for p in OPENED}
    assert {"2016/a.jpg", "2016/b.jpg", "2017/deep/c.png", "broken.jpg"} <= read
    assert content(db) == expected
    with engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(text(GPS))) == positions
        read_by = {r[0] for r in conn.execute(text("SELECT read_by FROM photos"))}
        assert read_by == {f"photocat {photocat_version}"}
    engine.dispose()
    s = scan(catalog, [folder], workers=1)  # and a rescan after it trusts them again
    assert (s.new, s.updated, s.unchanged) == (0, 0, 4)


def test_worker_processes_give_the_same_catalog(new_db: Callable[[], str], folder: Path) -> None:
    from catalog.store import open_catalog

    for i in range(70):  # enough to be read by the process pool
        make_photo(folder / "many" / f"{i}.jpg", model=f"M{i % 3}")
    contents = []
    for workers in (1, 2):
        db = new_db()
        with open_catalog(db) as c:
            scan(c, [folder], workers=workers)
        contents.append(content(db))
    assert contents[0] == contents[1]
    assert len(contents[0]) == 74


def test_a_scans_last_batches_shrink_so_little_is_left_to_write_after_the_last_read(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "BATCH_SIZE", 40)
    monkeypatch.setattr(ingest, "TAIL_BATCH", 8)
    sizes: list[int] = []
    upsert = Catalog.upsert

    def recording(self: Catalog, entries: list) -> None:  # type: ignore[type-arg]
        sizes.append(len(entries))
        upsert(self, entries)

    monkeypatch.setattr(Catalog, "upsert", recording)
    for i in range(100):
        make_photo(tmp_path / "p" / f"{i:03d}.jpg", model=f"M{i % 3}")
    s = scan(catalog, [tmp_path / "p"], workers=1)
    assert s.new == 100 and sum(sizes) == 100
    assert sizes[0] == 40 and sizes == sorted(sizes, reverse=True)
    assert sizes[-1] <= 8  # the last write, after the last read: a few rows, not 40
    assert len(catalog.file_states(catalog.roots()[0][0])) == 100


def test_the_hash_stages_last_digest_writes_shrink_too(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "HASH_BATCH", 40)
    monkeypatch.setattr(ingest, "TAIL_BATCH", 8)
    monkeypatch.setattr(ingest, "INLINE_HASH_BYTES", 0)  # every photo left to the hash stage
    sizes: list[int] = []
    set_digests = Catalog.set_digests

    def recording(self: Catalog, hash_with: str, batch: list) -> int:  # type: ignore[type-arg]
        sizes.append(len(batch))
        return set_digests(self, hash_with, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(Catalog, "set_digests", recording)
    for i in range(200):
        make_photo(tmp_path / "p" / f"{i:03d}.jpg", model=f"M{i % 3}")
    scan(catalog, [tmp_path / "p"], workers=1)
    assert sum(sizes) == 200 and sizes[0] == 40 and sizes == sorted(sizes, reverse=True)
    assert sizes[-1] <= 8  # the last write, after the last digest: a few rows, not 40


def test_missing_root_is_an_error_and_removes_nothing(
    catalog: Catalog, folder: Path, tmp_path: Path
) -> None:
    scan(catalog, [folder], workers=1)
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    with pytest.raises(RootError, match="does not exist"):
        scan(catalog, [folder], workers=1)
    assert len(catalog.file_states(catalog.roots()[0][0])) == 4


def test_empty_root_looks_unmounted_and_removes_nothing(
    catalog: Catalog, folder: Path, tmp_path: Path
) -> None:
    scan(catalog, [folder], workers=1)
    folder.rename(tmp_path / "away")
    folder.mkdir()  # an empty mount point
    with pytest.raises(RootError, match="looks unmounted"):
        scan(catalog, [folder], workers=1)
    assert len(catalog.file_states(catalog.roots()[0][0])) == 4
    s = scan(catalog, [folder], workers=1, allow_empty=True)
    assert s.removed == 4


def test_a_file_as_root_is_an_error(catalog: Catalog, folder: Path) -> None:
    with pytest.raises(RootError, match="not a folder"):
        scan(catalog, [folder / "2016" / "a.jpg"], workers=1)


def test_subfolder_scans_share_the_parent_root(catalog: Catalog, folder: Path) -> None:
    scan(catalog, [folder / "2016"], workers=1)
    assert [p for _, p in catalog.roots()] == [str(folder / "2016")]
    s = scan(catalog, [folder], workers=1)  # the parent adopts the earlier root
    assert [p for _, p in catalog.roots()] == [str(folder)]
    assert (s.new, s.unchanged, s.removed) == (2, 2, 0)
    s = scan(catalog, [folder / "2017"], workers=1)  # a subfolder of a known root
    assert (s.new, s.unchanged, s.removed) == (0, 1, 0)
    assert len(catalog.roots()) == 1
    (folder / "2017" / "deep" / "c.png").unlink()
    s = scan(catalog, [folder / "2017"], workers=1, allow_empty=True)
    assert s.removed == 1
    assert len(catalog.file_states(catalog.roots()[0][0])) == 3  # nothing outside 2017 touched


@pytest.mark.parametrize(
    "given",
    [
        ["{f}", "{f}"],  # twice
        ["{f}/2016", "{f}", "{f}/2017/deep"],  # inside another, before it and after it
        ["{f}/2016/", "{f}/2016/../2016"],  # one folder, written two ways
    ],
)
def test_a_folder_given_twice_or_inside_another_is_scanned_and_counted_once(
    catalog: Catalog, folder: Path, given: list[str]
) -> None:
    """Before, each was scanned: `scan A A` said new 4, unchanged 4 for four files."""
    folders = [g.format(f=folder) for g in given]
    photos = 2 if given[0].endswith("2016/") else 4  # broken.jpg too: new, and failed
    s = scan(catalog, folders, workers=2)
    assert (s.new, s.unchanged) == (photos, 0)
    s = scan(catalog, folders, workers=2)
    assert (s.new, s.updated, s.unchanged) == (0, 0, photos)
    assert len(catalog.roots()) == 1


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a.jpg", True),
        ("A.JPG", True),
        ("b.HeIc", True),
        ("c.tiff", True),
        ("IMG_0001.CR3", True),  # catalogued as an error row that names it
        ("x.txt", False),
        (".hidden.jpg", False),
        ("a.jpg.part", False),
        ("a.jpg~", False),
        ("a.tmp", False),
        (".DS_Store", False),
        ("noext", False),
    ],
)
def test_candidates(name: str, ok: bool) -> None:
    assert is_candidate(name) is ok


def test_broken_corpus_scan_finishes_and_counts_failures(broken_db: Scanned) -> None:
    """Every broken file gets its row (an error or partial metadata); the summary counts errors."""
    expected = broken_expected()
    with broken_db.open() as catalog:
        rows = {r["path"].rsplit("/", 1)[1]: r for r in search(catalog, Filter())}
    assert set(rows) == set(expected)  # README.md, expected.json, make_broken.py are not photos
    errors = {name for name, r in rows.items() if r["error"]}
    must_fail = {n for n, e in expected.items() if e["expect"].startswith("error row")}
    assert must_fail <= errors
    assert broken_db.summary.failed == len(errors)
    assert broken_db.summary.new == len(expected)
    for name, e in expected.items():
        if e["expect"].startswith("full metadata"):
            assert rows[name]["error"] is None, name


def test_a_folder_and_its_parent_claimed_at_once_make_one_root(db: str, tmp_path: Path) -> None:
    """Two scans start together, one on a folder and one on a folder inside it: whichever order
    their claims land in, the catalog ends with one root (an overlap would catalogue each
    file twice). Each round races two separate connections from two threads."""
    import threading

    catalogs = [open_catalog(db), open_catalog(db)]
    try:
        for round_ in range(25):
            top = str(tmp_path / f"race{round_}")
            os.makedirs(top + "/2016")
            barrier = threading.Barrier(2)
            results: list[tuple[int, str, str]] = []

            def claim(
                catalog: Catalog,
                folder: str,
                barrier: threading.Barrier = barrier,
                results: list[tuple[int, str, str]] = results,
            ) -> None:
                barrier.wait()
                place = resolve_place(catalog, folder)
                results.append((place.root_id, place.root_path, place.prefix))

            threads = [
                threading.Thread(target=claim, args=(catalogs[0], top)),
                threading.Thread(target=claim, args=(catalogs[1], top + "/2016")),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            roots = [r for r in catalogs[0].roots() if r[1].startswith(top + "/") or r[1] == top]
            assert [r[1] for r in roots] == [top], f"round {round_}: {roots}"
            prefixes = sorted(prefix for _, _, prefix in results)
            assert prefixes in (["", "2016/"], ["", ""]), results
    finally:
        for c in catalogs:
            c.close()


def test_a_scan_whose_root_was_adopted_meanwhile_still_digests_its_files(
    db: str, folder: Path
) -> None:
    """A scan of a subfolder holds its root's id; a scan of the parent, started meanwhile, folds
    that root into its own. The subfolder scan's later writes land in the parent root, and so
    must its hash stage: it digests its files there, not nothing under a vanished root."""
    from catalog.ingest import hash_place

    with open_catalog(db) as sub, open_catalog(db) as parent:
        place = resolve_place(sub, folder / "2016")
        scan(sub, [folder / "2016"], workers=1, hash_with=None)  # records, no digests yet
        resolve_place(parent, folder)  # the parent's claim adopts the subfolder's root
        assert [p for _, p in parent.roots()] == [str(folder)]
        assert hash_place(sub, place, None) == 2
    engine = engine_for(db)
    with engine.connect() as conn:
        digests = dict(conn.execute(text("SELECT rel_path, sha256 FROM photos")).all())
    engine.dispose()
    assert digests == {
        rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        for rel in ("2016/a.jpg", "2016/b.jpg")
    }


# a first scan into a catalog that does not exist yet -------------------------------------------
EARLY = """
import sys
from catalog import ingest

real, seen = ingest._read_early, []

def spy(*args):
    early = real(*args)  # the folder walked, the workers given their first files
    seen.append("sqlalchemy" in sys.modules)
    return early

ingest._read_early = spy
real_hash, hashed = ingest.hash_place, []
real_store_early, early = ingest._store_early_digests, []

def hash_spy(*args, **kwargs):
    stored = real_hash(*args, **kwargs)
    hashed.append(stored - sum(early))  # digests the hash stage itself took and stored
    return stored

def store_early_spy(*args):
    stored, given = real_store_early(*args)  # the hash stage stores those hashed early too
    early.append(stored)
    return stored, given

ingest.hash_place = hash_spy
ingest._store_early_digests = store_early_spy
ingest.INLINE_HASH_BYTES = int(sys.argv[3])
summary = ingest.scan_catalog(sys.argv[1], [sys.argv[2]], workers=2)
print(seen, summary.new, summary.failed, summary.unchanged, hashed)
"""


@sqlite_only
@pytest.mark.parametrize("inline", [ingest.INLINE_HASH_BYTES, 0])  # 0: all hashed early
def test_a_first_scan_reads_before_the_catalog_exists_and_stores_the_same(
    tmp_path: Path, folder: Path, inline: int
) -> None:
    for i in range(80):  # enough to be read by the process pool
        make_photo(folder / "many" / f"{i}.jpg", model=f"M{i % 3}")
    new, usual = tmp_path / "new.db", tmp_path / "usual.db"

    def first_scan() -> str:
        run = [sys.executable, "-c", EARLY, str(new), str(folder), str(inline)]
        return subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()

    # Reading began before SQLAlchemy was even loaded, let alone the catalog made; every file
    # was hashed meanwhile too (as it was read, or queued behind the reads when larger than
    # `inline`), so the hash stage found nothing left to do.
    assert first_scan() == "[False] 84 1 0 [0]"
    with open_catalog(usual) as c:  # the usual path: open, then scan
        scan(c, [folder], workers=2)
    assert content(str(new)) == content(str(usual))
    assert len(content(str(new))) == 84 and all(row[2] for row in content(str(new)))
    # the catalog exists now: the usual path, nothing read again
    assert first_scan() == "[] 0 0 84 [0]"
    # without a hash, nothing is hashed early either
    ingest.scan_catalog(tmp_path / "nohash.db", [folder], workers=2, hash_with=None)
    assert [row[2] for row in content(str(tmp_path / "nohash.db"))] == [None] * 84


TIME_WHERE_STORED = """
import os, sys
from catalog import ingest, when

real_chunk = ingest._read_chunk

def chunk_spy(*args):
    entries = real_chunk(*args)
    with open(sys.argv[3], "a") as out:  # in the worker: had reading this chunk loaded it?
        out.write(f"{os.getpid()} {when.finder_loaded()}\\n")
    return entries

ingest._read_chunk = chunk_spy  # forked workers call the module's attribute
ingest.scan_catalog(sys.argv[1], [sys.argv[2]], workers=2)
print(when.finder_loaded())
"""


@pytest.mark.parametrize("first_scan", [True, False])
def test_the_utc_time_is_resolved_where_records_are_stored_not_in_the_workers(
    tmp_path: Path, folder: Path, first_scan: bool
) -> None:
    """The time zone at a GPS position needs timezonefinder (~0.15 s of CPU to load): only the
    process that stores the records loads it, after the workers started, not each worker (nor
    before they start, as a first scan did); the stored times are extract()'s."""
    for i in range(70):
        gps = (48.8566, 2.3522) if i % 2 else None  # Paris; the others have an offset tag
        make_photo(folder / "many" / f"{i}.jpg", gps=gps, offset=None if gps else "-05:00")
    db = tmp_path / "c.db"
    if not first_scan:
        open_catalog(db).close()  # not a first scan: the usual path
    log = tmp_path / "workers.log"
    run = [sys.executable, "-c", TIME_WHERE_STORED, str(db), str(folder), str(log)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]  # this process loaded it
    seen = [line.split() for line in log.read_text().splitlines()]
    assert len({pid for pid, _ in seen}) >= 1 and {loaded for _, loaded in seen} == {"False"}
    engine = engine_for(str(db))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT rel_path, utc_offset, captured_at_utc, time_source, time_zone FROM photos")
        ).all()
    engine.dispose()
    assert len(rows) == 74
    for rel, offset, utc, source, zone in rows:
        record = extract(folder / rel)
        assert (offset, source, zone) == (record.offset, record.time_source, record.time_zone)
        assert (utc is None) == (record.captured_at_utc is None)
    sources = {r[0]: r[3] for r in rows}
    assert (sources["many/1.jpg"], sources["many/2.jpg"]) == ("gps_zone", "offset_tag")


def test_records_and_entries_cross_process_boundaries_whole() -> None:
    """Pickled as the workers send them (their own __reduce__): every field, set or not."""
    import dataclasses
    import pickle
    from datetime import datetime

    from catalog.record import FileEntry, PhotoRecord, RawTag

    samples = {
        "int | None": 7,
        "float | None": 1.5,
        "str | None": "x\udce9\n",
        "datetime | None": datetime(2016, 11, 1, 12, 0, 0, 123456),
        "list[RawTag]": [RawTag("IFD0", 271, "Make", "samsung")],
        "list[str]": ["one warning", "another"],
    }
    full = PhotoRecord(**{f.name: samples[str(f.type)] for f in dataclasses.fields(PhotoRecord)})
    entry = FileEntry(3, "a/b.jpg", 10, 20, full, "ab" * 32, "cd" * 32, "[]")
    for value in (PhotoRecord(), full, entry, FileEntry(0, "", 0, 0, PhotoRecord())):
        back = pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
        assert back == value and type(back) is type(value)
    assert pickle.loads(pickle.dumps(entry)).record.tags[0].name == "Make"


def test_a_path_list_gives_back_every_path_in_order() -> None:
    sep = os.sep
    names = ["a.jpg", " b .jpg", "caf\udce9.jpg", "line\nbreak.jpg", "é\u202e.jpg"]
    paths = [f"{sep}photos{sep}2016{sep}{n}" for n in names]
    paths += [f"{sep}photos{sep}{i:06}.jpg" for i in range(2 * ingest.PathList.GROUP + 5)]
    paths += [f"{sep}photos{sep}2016{sep}again.jpg", f"{sep}top.jpg", "bare.jpg", f"{sep}x{sep}"]
    listed = ingest.PathList(paths)
    assert len(listed) == len(paths)
    assert list(listed) == paths
    assert list(listed) == paths  # and again
    assert list(ingest.PathList()) == [] and len(ingest.PathList()) == 0


def test_a_path_list_holds_100000_paths_in_a_fraction_of_a_lists_memory() -> None:
    """What a scan of 100,000 photos holds while reading them (and its workers inherit)."""
    import tracemalloc

    folders = [os.path.join("/media/photos/Family Archive", f"{y}", f"{m:02}") for y in
               range(2010, 2026) for m in range(1, 13)]  # fmt: skip
    paths = (os.path.join(folders[i % len(folders)], f"IMG_{i:06}.jpg") for i in range(100_000))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        listed = ingest.PathList(sorted(paths))
        held = tracemalloc.get_traced_memory()[0] - base
        as_list = list(listed)
        as_list_held = tracemalloc.get_traced_memory()[0] - base - held
    finally:
        tracemalloc.stop()
    assert len(as_list) == 100_000
    assert held < 3 * 2**20, held
    assert held * 4 < as_list_held, (held, as_list_held)


@pytest.mark.parametrize(
    ("items", "seen"),
    [([], ["action"]), ([1], [1, "action"]), ([1, 2, 3], [1, "action", 2, 3])],
)
def test_after_first_acts_once_after_the_first_item_or_at_the_end(
    items: list[int], seen: list[object]
) -> None:
    log: list[object] = []
    for item in ingest._after_first(items, lambda: log.append("action")):
        log.append(item)
    assert log == seen


@pytest.mark.parametrize("total", [0, 1, 5, 74, 300, 5000])
def test_digest_tasks_shrink_at_the_end(total: int) -> None:
    """Every item once, in order; CHUNK a task while many remain, then smaller and smaller, so
    no core is left hashing a whole task of large photos alone at the end."""
    chunks = list(ingest._tapered(range(total), total))
    assert [i for chunk in chunks for i in chunk] == list(range(total))
    sizes = [len(chunk) for chunk in chunks]
    assert sizes == sorted(sizes, reverse=True) and all(0 < n <= ingest.CHUNK for n in sizes)
    if total >= 4 * ingest.CHUNK:
        assert sizes[0] == ingest.CHUNK
    if total:
        assert sizes[-1] <= ingest.TAIL_CHUNK


def test_a_rescan_of_an_unchanged_tree_loads_neither_pillow_nor_numpy(
    tmp_path: Path, folder: Path
) -> None:
    """Stat only: nothing is read, so nothing that reads is loaded (a fresh process)."""
    make_photo(folder / "placed.jpg", gps=(48.8566, 2.3522))
    db = tmp_path / "c.db"
    code = (
        "import sys\n"
        "from catalog.ingest import scan_catalog\n"
        "summary = scan_catalog(sys.argv[1], [sys.argv[2]])\n"
        "print(summary.new, summary.unchanged, sorted(m for m in ('PIL', 'numpy',"
        " 'timezonefinder', 'catalog.extract') if m in sys.modules))\n"
    )
    run = [sys.executable, "-c", code, str(db), str(folder)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert first.stdout.startswith("5 0 ")  # a first scan: read, so loaded
    again = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.strip() == "0 5 []"


def test_early_digests_go_only_where_the_file_is_as_it_was_hashed(
    db: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digest computed while the catalog was made is stored only on a row whose size and
    mtime are those the file had when hashed; the hash stage digests the others again."""
    for i in range(70):
        make_photo(folder / "many" / f"{i}.jpg", model=f"M{i}")
    monkeypatch.setattr(ingest, "EARLY_HASH_BYTES", 10**9)
    monkeypatch.setattr(ingest, "INLINE_HASH_BYTES", 0)  # these small photos hashed early too
    pool = ingest.worker_pool(2)
    try:
        early = ingest._read_early(str(folder), pool, "sha256")
        assert len(early.digests) == len(list(ingest._tapered(range(74), 74)))  # 74 files
        for future in early.digests:
            future.result()  # all hashed before anything changes
        # and all read: a read still queued could see the file below half rewritten (empty,
        # so hashed inline, under INLINE_HASH_BYTES 0), as it did once on a loaded machine
        read = list(early.entries)
        make_photo(folder / "many" / "5.jpg", model="Changed After Hashing")  # new size/mtime
        with open_catalog(db) as c:
            place = resolve_place(c, folder)
            entries = list(ingest._rerooted(iter(read), place))
            for e in entries:  # the record read before the change; its row says so
                if e.rel_path == "many/5.jpg":
                    e.size += 1
            c.upsert(entries)
            rels = ingest._early_rels(early, place)
            stored, given = ingest._store_early_digests(c, place, early, "sha256", rels)
            assert stored == 73 and len(given) == 73 and "many/5.jpg" not in given
            stored = {r[0]: r[2] for r in content(db)}
            assert stored["many/5.jpg"] is None
            assert (
                stored["many/6.jpg"]
                == hashlib.sha256((folder / "many" / "6.jpg").read_bytes()).hexdigest()
            )
    finally:
        pool.shutdown()


def test_early_digests_are_queued_behind_every_read(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first scan of more files than the workers are given at once: the digests hashed
    early go to the workers only once every file has been given to them to read, so no record
    waits for them."""
    for i in range(150):
        make_photo(folder / "many" / f"{i}.jpg", model=f"M{i}")
    monkeypatch.setattr(ingest, "READ_AHEAD", 64)  # 64 files given at once, then as taken
    monkeypatch.setattr(ingest, "CHUNK", 16)
    monkeypatch.setattr(ingest, "INLINE_HASH_BYTES", 0)  # these small photos hashed early
    pool = ingest.worker_pool(2)
    order: list[str] = []
    submit = pool.submit

    def spy(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        order.append(fn.__name__)
        return submit(fn, *args, **kwargs)

    pool.submit = spy  # type: ignore[method-assign]
    try:
        early = ingest._read_early(str(folder), pool, "sha256")
        assert order and set(order) == {"_read_chunk"} and not early.digests  # reads only, yet
        assert len(list(early.entries)) == 154
        reads = order.count("_read_chunk")
        assert (
            reads == 10
            and early.digests
            and order[reads:] == ["_digest_chunk"] * (len(order) - reads)
        )
        hashed = [d for future in early.digests for d in future.result()]
        assert sorted(i for i, _, _, _ in hashed) == list(range(64))
    finally:
        pool.shutdown()


def test_the_workers_are_given_files_while_the_folder_is_walked(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first scan gives the workers their first files as the walk finds them, not once it
    has walked every folder (a tree of thousands of folders, cold, takes seconds); every file
    is still read once, in the walk's order."""
    tree = folder / "tree"
    for i in range(200):
        make_photo(tree / f"d{i // 10:02d}" / f"{i:03d}.jpg", model=f"M{i % 7}")
    walked: list[str] = []
    real_walk = ingest.walk

    def counted(*args: object) -> Iterator[tuple[str, os.stat_result]]:
        for found in real_walk(*args):
            walked.append(found[0])
            yield found

    monkeypatch.setattr(ingest, "walk", counted)
    pool = ingest.worker_pool(2)
    at_submit: list[int] = []
    submit = pool.submit

    def spy(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        at_submit.append(len(walked))
        return submit(fn, *args, **kwargs)

    pool.submit = spy  # type: ignore[method-assign]
    try:
        early = ingest._read_early(str(tree), pool, None)
        assert at_submit[0] == ingest.IN_PROCESS_BELOW < len(walked) == 200
        read = [e.rel_path for e in early.entries]
        assert read == [w[len(str(tree)) + 1 :] for w in walked]
    finally:
        pool.shutdown()


def test_a_first_scan_read_early_reports_what_the_walk_passes_over(tmp_path: Path) -> None:
    """The early first scan (a new catalog file, the workers given files as the walk goes): the
    links and the FIFO the walk meets between its files are reported, never read, and every
    photo is stored once."""
    tree = tmp_path / "tree"
    for i in range(100):
        make_photo(tree / f"d{i // 10}" / f"{i:02d}.jpg", model=f"M{i % 3}")
    (tree / "d3" / "to_folder").symlink_to(tree / "d4")
    (tree / "d5" / "link.jpg").symlink_to(tree / "d5" / "50.jpg")
    os.mkfifo(tree / "d7" / "pipe.jpg")
    summary = ingest.scan_catalog(tmp_path / "c.db", [tree], workers=2)
    assert (summary.new, summary.failed) == (100, 0)
    assert sorted(line.split(": ")[0] for line in summary.skipped) == sorted(
        str(tree / p) for p in ("d3/to_folder", "d5/link.jpg", "d7/pipe.jpg")
    )
    with open_catalog(tmp_path / "c.db") as catalog:
        found = sorted(r["path"] for r in search(catalog, Filter()))
    assert found == sorted(str(p) for p in tree.glob("d*/[0-9][0-9].jpg"))


def test_only_a_new_sqlite_file_is_read_early(tmp_path: Path) -> None:
    from catalog.urls import database_url, new_sqlite_file

    (tmp_path / "there.db").write_bytes(b"")
    (tmp_path / "is?there.db").write_bytes(b"")
    cases = {
        database_url(tmp_path / "new.db"): True,
        database_url(tmp_path / "there.db"): False,
        database_url(tmp_path / "sub dir" / "new.db"): True,
        database_url(tmp_path / "is?there.db"): False,  # quoted: the file, not a query string
        database_url(tmp_path / "new?.db"): True,
        database_url(tmp_path / "x%41é.db"): True,
        f"sqlite:///{tmp_path}/new.db?mode=ro": False,
        f"sqlite+pysqlite:///{tmp_path}/x.db": True,
        "sqlite://": False,
        "sqlite:///:memory:": False,
        f"sqlite:///{tmp_path}/there%2Edb": False,  # %-escapes read as SQLAlchemy reads them
        f"sqlite:///{tmp_path}/a%20b.db": True,
        "postgresql://u@h/db": False,
        "postgresql+psycopg:///photocat": False,
    }
    assert {url: new_sqlite_file(url) for url in cases} == cases


def test_files_read_before_their_root_existed_land_under_the_root_found_later(
    db: str, folder: Path
) -> None:
    """Between "the catalog file does not exist" and opening it, another scan may make it and
    claim the parent folder: what was read early goes under that root, with the folder as its
    prefix; rows the other scan stored count as updated, and rows of files gone are removed."""
    for i in range(70):
        make_photo(folder / "2016" / "many" / f"{i}.jpg")
    with open_catalog(db) as other:
        scan(other, [folder], workers=1, hash_with=None)
    (folder / "2016" / "b.jpg").unlink()
    pool = ingest.worker_pool(2)
    try:
        early = ingest._read_early(str(folder / "2016"), pool, "sha256")
        with open_catalog(db) as c:
            place = resolve_place(c, folder / "2016")
            assert place.prefix == "2016/"
            summary = ingest._scan_place(c, place, pool, None, None, False, "sha256", early)
    finally:
        pool.shutdown()
    assert (summary.new, summary.updated, summary.removed) == (0, 71, 1)
    rows = {r[0]: r for r in content(db)}
    assert "2016/b.jpg" not in rows and "2016/many/69.jpg" in rows and "broken.jpg" in rows
    assert all(r[2] for rel, r in rows.items() if rel.startswith("2016/"))  # digested there
    engine = engine_for(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM roots")).scalar_one() == 1
    engine.dispose()


def test_garbage_is_collected_between_batches_not_in_them() -> None:
    import gc
    import weakref

    class Node:
        pass

    assert gc.isenabled()
    with ingest.collecting_between_batches() as collect:
        assert not gc.isenabled()  # no automatic collection inside a batch
        node = Node()
        node.self = node  # type: ignore[attr-defined]  # a reference cycle
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        collect()  # between batches: the cycle is freed
        assert alive() is None
        with ingest.collecting_between_batches() as inner:
            inner()
        assert not gc.isenabled()  # an inner block leaves the outer one's choice alone
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        alive = weakref.ref(node)
        del node
    assert gc.isenabled()
    assert alive() is None  # collected as the block ended


def test_a_scan_collects_garbage_only_between_its_batches(
    new_db: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's automatic collector, which runs every 700 new objects (in the middle of a batch,
    walking its live records), is paused while a scan reads, stores and hashes: the garbage
    is collected between batches instead."""
    import gc

    monkeypatch.setattr(ingest, "BATCH_SIZE", 40)
    monkeypatch.setattr(ingest, "INLINE_HASH_BYTES", 0)  # a hash stage too
    for i in range(300):
        make_photo(tmp_path / "p" / f"{i:03d}.jpg", model=f"M{i % 3}", gps=(48.85, 2.29))
    automatic: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:  # collect() between batches: 1
            automatic.append(1)

    def scanned() -> int:
        automatic.clear()
        with open_catalog(new_db()) as catalog:
            gc.callbacks.append(count)
            try:
                assert scan(catalog, [tmp_path / "p"], workers=1).new == 300
            finally:
                gc.callbacks.remove(count)
        return len(automatic)

    paused = scanned()
    monkeypatch.setattr(ingest, "collecting_between_batches", _never_paused)
    assert paused <= 2 < 6 <= scanned()  # without the pause: one every 30 photos


@contextlib.contextmanager
def _never_paused() -> Iterator[Callable[[], None]]:
    yield lambda: None


def test_start_up_is_frozen_only_when_asked() -> None:
    """_start_up_frozen: with `freeze`, no collection until the catalog is open, then what
    exists is frozen and the collector resumes; otherwise (a library caller, a collector the
    caller turned off, a failure before the catalog opened) nothing is frozen."""
    import gc

    frozen = gc.get_freeze_count()
    with ingest._start_up_frozen(False) as started:
        assert gc.isenabled()
        started()
    assert gc.get_freeze_count() == frozen
    try:
        with ingest._start_up_frozen(True) as started:
            assert not gc.isenabled()  # start-up's objects are not collected as they are made
            started()
            assert gc.isenabled()
            assert gc.get_freeze_count() > frozen + 1000
            gc.unfreeze()
            started()  # once only
            assert gc.get_freeze_count() == 0
        assert gc.isenabled()
    finally:
        gc.unfreeze()
    with pytest.raises(RuntimeError), ingest._start_up_frozen(True):
        assert not gc.isenabled()
        raise RuntimeError("the catalog would not open")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with ingest._start_up_frozen(True) as started:
            started()
        assert not gc.isenabled() and gc.get_freeze_count() == 0  # the caller's choice kept
    finally:
        gc.enable()


def test_a_worker_collects_garbage_though_forked_while_its_parent_did_not() -> None:
    import gc

    gc.disable()  # as during a scan's start-up (_start_up_frozen), when the workers fork
    try:
        pool = ingest.worker_pool(1)
        try:
            assert pool.submit(gc.isenabled).result(timeout=30) is True
        finally:
            pool.shutdown()
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_workers_run_nicer_than_the_process_that_feeds_them() -> None:
    """When both want a core, the writer runs first; the readers give way (to the user's own
    programs too). os.nice(0) reads a process's niceness."""
    pool = ingest.worker_pool(2)
    try:
        niceness = {pool.submit(os.nice, 0).result(timeout=30) for _ in range(4)}
    finally:
        pool.shutdown()
    assert niceness == {min(os.nice(0) + ingest.WORKER_NICENESS, 19)}


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities here")
def test_a_worker_that_may_not_lower_its_priority_still_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where os.nice is refused (a sandbox, a platform that lacks it), the worker runs at its
    parent's priority and does its work instead of breaking the pool."""

    def refuse(increment: int) -> int:
        raise PermissionError(1, "not permitted")

    monkeypatch.setattr(os, "nice", refuse)  # inherited by the forked workers
    parent = os.getpriority(os.PRIO_PROCESS, 0)
    pool = ingest.worker_pool(2)
    try:
        priorities = {
            pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(timeout=30) for _ in range(4)
        }
    finally:
        pool.shutdown()
    assert priorities == {parent}
