"""photocat watch against the real watchdog observer on real folders and a real SQLite file.

Every test changes a folder the way a person or a program does, waits (polling, generous
timeouts) until the catalog says what the folder says, and compares the two.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKEND, engine_for
from photos import make_photo
from PIL import Image
from sqlalchemy import Engine, text

from catalog import ingest, watch
from catalog.ingest import is_candidate, is_ignored_dir, scan
from catalog.query import Filter, search
from catalog.store import Catalog, FileEntry, open_catalog
from catalog.watch import Watcher

REPO = Path(__file__).resolve().parent.parent
SETTLE = 0.3
TIMEOUT = 20.0
# These tests run the Watcher without the daemon's logging set-up, which hides this warning.
pytestmark = pytest.mark.filterwarnings(f"ignore:{watch.REWATCH_WARNING}:RuntimeWarning:watchdog")


# helpers ---------------------------------------------------------------------------------------
def wait_until(what: Callable[[], Any], timeout: float = TIMEOUT, step: float = 0.05) -> Any:
    """Poll until `what()` is truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {value!r}")
        time.sleep(step)
        value = what()
    return value


def disk(folder: Path) -> dict[str, tuple[int, int]]:
    """What scan would catalogue under `folder`: rel_path → (size, mtime_ns)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_ignored_dir(d)]
        for name in filenames:
            p = Path(dirpath, name)
            if is_candidate(name) and p.is_file() and not p.is_symlink():
                st = p.stat()
                found[p.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


_ENGINES: dict[str, Engine] = {}


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def read(db: str, sql: str) -> list[dict[str, Any]]:
    """Rows through a second connection of our own (SQLite or PostgreSQL), not photocat's."""
    engine = _ENGINES.get(db) or _ENGINES.setdefault(db, engine_for(db))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def rows(db: str) -> dict[str, dict[str, Any]]:
    """Every photo row by rel_path (with its model); a duplicate fails the test."""
    got = read(db, "SELECT p.*, d.model FROM photos p LEFT JOIN devices d ON d.id = p.device_id")
    out = {r["rel_path"]: r for r in got}
    assert len(out) == len(got), "duplicate rows"
    return out


def in_step(db: str, folder: Path) -> bool:
    """The catalog holds exactly the folder's photos, each with its current size and mtime and
    the digest of its content. Records are searchable before their digest (watch and scan both
    store records first; the hash stage follows), so this waits for both."""
    have = {rel: (r["size"], r["mtime_ns"], r["sha256"]) for rel, r in rows(db).items()}
    return have == {
        rel: (*st, hashlib.sha256((folder / rel).read_bytes()).hexdigest())
        for rel, st in disk(folder).items()
    }


def assert_in_step(db: str, folder: Path) -> None:
    wait_until(lambda: in_step(db, folder))


def big_photo(path: Path, model: str = "Slow Cam", side: int = 1400) -> bytes:
    """A real JPEG of a few MB (noise does not compress) with EXIF; returns its bytes."""
    small = make_photo(path.with_suffix(".small.jpg"), model=model)
    exif = Image.open(small).getexif()
    small.unlink()
    Image.effect_noise((side, side), 90).convert("RGB").save(path, "JPEG", exif=exif, quality=95)
    return path.read_bytes()


class Log(logging.Handler):
    """The watcher's log lines, to check what it said it did to each file."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))

    def said(self, text: str, level: int = logging.INFO) -> list[str]:
        """Lines at `level` or above holding `text` (DEBUG: events and reconciles too)."""
        return [m for lv, m in self.lines if lv >= level and text in m]

    def did(self, action: str) -> list[str]:
        """Per-file outcome lines: 'ingested …', 'updated …', 'moved …', 'failed …'."""
        return [m for lv, m in self.lines if lv >= logging.INFO and m.startswith(action + " ")]


class Running:
    """A Watcher running in a thread of this process, as the CLI runs it in its main thread."""

    def __init__(self, db: str, folders: list[Path], **options: Any) -> None:
        options.setdefault("settle", SETTLE)
        options.setdefault("workers", 1)
        self.catalog = open_catalog(db)
        self.watcher = Watcher(self.catalog, folders, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.watcher.ready.is_set() or self.error or not self.thread.is_alive())
        assert self.error is None, self.error

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the writer did not stop"
        self.catalog.close()
        assert self.error is None, self.error


@pytest.fixture
def log() -> Iterator[Log]:
    handler = Log()
    logger = logging.getLogger("photocat.watch")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    top = tmp_path / "photos"
    make_photo(top / "keep.jpg", model="Keeper")  # a root that is never empty
    make_photo(top / "2016" / "a.jpg", model="Alpha")
    make_photo(top / "2016" / "b.jpg", model="Beta")
    return top


@pytest.fixture
def running(db: str, folder: Path, log: Log) -> Iterator[Running]:
    r = Running(db, [folder])
    yield r
    r.stop()


def photo_id(db: str, rel: str) -> int | None:
    row = rows(db).get(rel)
    return None if row is None else row["id"]


# the behaviours ---------------------------------------------------------------------------------
def test_start_catches_up_and_a_created_photo_is_ingested(
    running: Running, db: str, folder: Path, log: Log
) -> None:
    assert_in_step(db, folder)  # caught up at start
    make_photo(folder / "2017" / "new.jpg", model="Newcomer")
    wait_until(lambda: "2017/new.jpg" in rows(db))
    assert rows(db)["2017/new.jpg"]["model"] == "Newcomer"
    assert_in_step(db, folder)
    wait_until(lambda: log.did("ingested"))  # logged just after the commit the rows show
    assert log.did("ingested") == [f"ingested {folder / '2017' / 'new.jpg'}"]


def test_watched_photos_get_their_utc_time_from_the_gps_zone_or_their_offset_tag(
    running: Running, db: str, folder: Path
) -> None:
    """The daemon resolves the times of what its readers extracted (as scan's writer does)."""
    for i in range(12):  # one at a time and in a burst: read here or by the readers
        gps = (48.8566, 2.3522) if i % 2 else None  # Paris; the others have an offset tag
        make_photo(folder / "2018" / f"{i}.jpg", gps=gps, offset=None if gps else "-05:00")
    wait_until(lambda: all(f"2018/{i}.jpg" in rows(db) for i in range(12)))
    got = {rel: r for rel, r in rows(db).items() if rel.startswith("2018/")}
    for rel, r in got.items():
        placed = int(rel[5:-4]) % 2
        expected = ("+01:00", "gps_zone", "Europe/Paris") if placed else ("-05:00", "offset_tag")
        assert (r["utc_offset"], r["time_source"], r["time_zone"])[: len(expected)] == expected
        assert (
            str(r["captured_at_utc"])
            .replace("T", " ")
            .startswith("2016-11-10 17:22:47" if placed else "2016-11-10 23:22:47")
        )


def test_slow_chunked_copy_is_read_once_complete_never_half_written(
    running: Running, db: str, folder: Path, tmp_path: Path, log: Log
) -> None:
    data = big_photo(tmp_path / "src.jpg")
    assert len(data) > 2_000_000
    target = folder / "slow.jpg"
    pieces = 5
    n = len(data) // pieces + 1
    with open(target, "wb") as out:  # one open file written in chunks, pausing > settle
        for i in range(pieces):
            out.write(data[i * n : (i + 1) * n])
            out.flush()
            time.sleep(SETTLE * 2.5)
            assert "slow.jpg" not in rows(db), "read before the copy was complete"
    wait_until(lambda: "slow.jpg" in rows(db))
    row = rows(db)["slow.jpg"]
    assert (row["error"], row["model"], row["size"]) == (None, "Slow Cam", len(data))
    digest = hashlib.sha256(data).hexdigest()  # filled in just after the record
    wait_until(lambda: rows(db)["slow.jpg"]["sha256"] == digest)
    assert len(log.said("slow.jpg")) == 1 and not log.did("failed")  # ingested once
    assert_in_step(db, folder)


def test_part_file_renamed_at_the_end_is_ingested_once(
    running: Running, db: str, folder: Path, tmp_path: Path, log: Log
) -> None:
    data = big_photo(tmp_path / "src.jpg", model="Browser", side=600)
    part = folder / "2016" / "download.jpg.part"
    with open(part, "wb") as out:
        for i in range(0, len(data), 64 * 1024):
            out.write(data[i : i + 64 * 1024])
            out.flush()
            time.sleep(0.02)
    time.sleep(SETTLE * 2)
    assert not any("part" in rel for rel in rows(db))
    part.rename(folder / "2016" / "download.jpg")
    wait_until(lambda: "2016/download.jpg" in rows(db))
    assert rows(db)["2016/download.jpg"]["model"] == "Browser"
    assert_in_step(db, folder)
    wait_until(lambda: log.said("download.jpg"))
    assert len(log.said("download.jpg")) == 1


def test_rename_updates_the_row_in_place_without_reading(
    running: Running, db: str, folder: Path, log: Log
) -> None:
    assert_in_step(db, folder)
    before = rows(db)["2016/a.jpg"]
    (folder / "2016" / "a.jpg").rename(folder / "2016" / "renamed.jpg")
    wait_until(lambda: "2016/renamed.jpg" in rows(db) and "2016/a.jpg" not in rows(db))
    after = rows(db)["2016/renamed.jpg"]
    for key in ("id", "first_seen", "last_scanned", "sha256", "model"):
        assert after[key] == before[key], key  # same row, and not re-read (last_scanned)
    assert_in_step(db, folder)
    wait_until(lambda: log.did("moved"))
    assert not log.did("updated")


def test_folder_move_keeps_every_photo_id(
    running: Running, db: str, folder: Path, log: Log
) -> None:
    make_photo(folder / "2016" / "deep" / "c.jpg", model="Gamma")
    wait_until(lambda: "2016/deep/c.jpg" in rows(db))
    before = {rel: r["id"] for rel, r in rows(db).items() if rel.startswith("2016/")}
    (folder / "2016").rename(folder / "holiday 2016")
    moved = {rel.replace("2016/", "holiday 2016/", 1): i for rel, i in before.items()}
    wait_until(lambda: {k: r["id"] for k, r in rows(db).items() if k in moved} == moved)
    assert_in_step(db, folder)
    wait_until(lambda: log.did("moved folder"))


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_photo_moved_while_it_is_hashed_gets_its_digest_at_its_new_name(
    running: Running, db: str, folder: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """Records come first and digests after: a photo that moves between the two has its digest
    attempted at the old name (the file is gone from there), and must get it at the new one.
    The race is made certain by moving the file just before the watcher's real hash step."""
    assert_in_step(db, folder)
    real, raced = ingest.hash_some, []

    def move_then_hash(*args: Any, **kwargs: Any) -> int | None:
        if not raced and (folder / "2017" / "racing.jpg").exists():
            if what == "file":
                (folder / "2017" / "racing.jpg").rename(folder / "2017" / "raced.jpg")
            else:
                (folder / "2017").rename(folder / "2018")
            raced.append(what)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "hash_some", move_then_hash)
    make_photo(folder / "2017" / "racing.jpg", model="Racer")
    wait_until(lambda: raced)
    assert_in_step(db, folder)


def test_delete_a_file_and_a_folder(running: Running, db: str, folder: Path) -> None:
    make_photo(folder / "trip" / "x.jpg")
    make_photo(folder / "trip" / "y" / "z.jpg")
    wait_until(lambda: "trip/y/z.jpg" in rows(db))
    (folder / "2016" / "a.jpg").unlink()
    wait_until(lambda: "2016/a.jpg" not in rows(db))
    shutil.rmtree(folder / "trip")
    assert_in_step(db, folder)


def test_edit_in_place_is_reread_and_keeps_the_id(running: Running, db: str, folder: Path) -> None:
    assert_in_step(db, folder)
    first = rows(db)["2016/b.jpg"]
    make_photo(folder / "2016" / "b.jpg", model="Edited Model")  # rewritten where it is
    wait_until(lambda: rows(db)["2016/b.jpg"]["model"] == "Edited Model")
    assert rows(db)["2016/b.jpg"]["id"] == first["id"]
    assert_in_step(db, folder)


def test_broken_file_is_recorded_with_its_error_and_watching_goes_on(
    running: Running, db: str, folder: Path, log: Log
) -> None:
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff this is no jpeg")
    wait_until(lambda: "broken.jpg" in rows(db))
    assert rows(db)["broken.jpg"]["error"]
    wait_until(lambda: log.did("failed"))  # logged just after the commit the rows show
    make_photo(folder / "after.jpg", model="Still Here")
    wait_until(lambda: "after.jpg" in rows(db))
    assert rows(db)["after.jpg"]["error"] is None
    assert_in_step(db, folder)


def test_move_onto_a_catalogued_file_replaces_it(running: Running, db: str, folder: Path) -> None:
    assert_in_step(db, folder)
    a_id = photo_id(db, "2016/a.jpg")
    (folder / "2016" / "a.jpg").replace(folder / "2016" / "b.jpg")
    wait_until(lambda: "2016/a.jpg" not in rows(db))
    assert_in_step(db, folder)
    assert rows(db)["2016/b.jpg"]["id"] == a_id
    assert rows(db)["2016/b.jpg"]["model"] == "Alpha"


def test_moves_into_and_out_of_the_tree(
    running: Running, db: str, folder: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    make_photo(outside / "in.jpg", model="Incoming")
    make_photo(outside / "album" / "one.jpg")
    make_photo(outside / "album" / "sub" / "two.jpg")
    assert_in_step(db, folder)
    (outside / "in.jpg").rename(folder / "in.jpg")  # a file in
    (outside / "album").rename(folder / "album")  # a folder in
    (folder / "2016" / "b.jpg").rename(outside / "b.jpg")  # a file out
    wait_until(lambda: "album/sub/two.jpg" in rows(db) and "in.jpg" in rows(db))
    assert_in_step(db, folder)
    (folder / "album").rename(outside / "album-back")  # a folder out
    wait_until(lambda: "album/one.jpg" not in rows(db))
    assert_in_step(db, folder)


def test_what_is_not_a_photo_is_ignored(running: Running, db: str, folder: Path) -> None:
    (folder / "notes.txt").write_text("not a photo")
    make_photo(folder / ".hidden.jpg")
    make_photo(folder / "x.jpg.tmp")
    make_photo(folder / "y.jpg~")
    make_photo(folder / "@eaDir" / "thumb.jpg")
    make_photo(folder / ".git" / "deep" / "z.jpg")
    (folder / ".DS_Store").write_bytes(b"\0")
    make_photo(folder / "real.jpg")
    wait_until(lambda: "real.jpg" in rows(db))
    time.sleep(SETTLE * 2)
    assert set(rows(db)) == {"keep.jpg", "2016/a.jpg", "2016/b.jpg", "real.jpg"}


def test_the_daemon_hides_watchdogs_rewatch_warning_and_no_other_warning() -> None:
    rewatch = "Callback with id '1' already exists for watch <Watch wd=5>. It will be Overwritten."
    where = ("inotify.py", 365)  # watchdog 7's words and place (warn_explicit: no watchdog race)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with watch.daemon_logging(stream=io.StringIO()):
            warnings.warn_explicit(rewatch, RuntimeWarning, *where, "watchdog.observers.inotify")
            warnings.warn_explicit("other", RuntimeWarning, *where, "watchdog.observers.inotify")
            warnings.warn_explicit(rewatch, RuntimeWarning, "x.py", 1, "catalog.watch")
        warnings.warn_explicit(rewatch, RuntimeWarning, *where, "watchdog.observers.inotify")
    assert [(str(w.message), w.filename) for w in seen] == [
        ("other", "inotify.py"),
        (rewatch, "x.py"),  # not watchdog's
        (rewatch, "inotify.py"),  # after the daemon
    ]


def test_a_vanished_root_keeps_its_rows_and_is_followed_again_when_back(
    db: str, folder: Path, tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "HEALTH_EVERY", 0.3)
    r = Running(db, [folder])
    try:
        assert_in_step(db, folder)
        known = set(rows(db))
        folder.rename(tmp_path / "unplugged")  # the disk goes away...
        folder.mkdir()  # ...leaving an empty mount point
        wait_until(lambda: log.said("looks unmounted"))
        assert set(rows(db)) == known
        folder.rmdir()
        (tmp_path / "unplugged").rename(folder)  # plugged in again
        # the earlier attempt logged "comeback reconcile ... skipped": wait for one that ran
        wait_until(lambda: log.said(f"comeback reconcile of {folder}: new", logging.DEBUG))
        make_photo(folder / "after-remount.jpg")
        assert_in_step(db, folder)
    finally:
        r.stop()


def test_polling_mode_follows_creates_and_deletes(db: str, folder: Path, log: Log) -> None:
    r = Running(db, [folder], poll=0.2)
    try:
        assert log.said("polling every 0.2 s")
        make_photo(folder / "polled.jpg", model="Polled")
        wait_until(lambda: "polled.jpg" in rows(db))
        (folder / "2016" / "a.jpg").unlink()
        assert_in_step(db, folder)
        b_id = photo_id(db, "2016/b.jpg")
        (folder / "2016").rename(folder / "moved")  # polling sees moves too (by inode)
        wait_until(lambda: photo_id(db, "moved/b.jpg") == b_id)
        assert_in_step(db, folder)
    finally:
        r.stop()


def test_several_roots_at_once(db: str, tmp_path: Path, log: Log) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    make_photo(one / "a.jpg")
    make_photo(two / "b.jpg")
    r = Running(db, [one, two])
    try:
        make_photo(two / "c.jpg")
        make_photo(one / "sub" / "d.jpg")
        wait_until(lambda: len(rows(db)) == 4)
        sql = "SELECT r.path, p.rel_path FROM photos p JOIN roots r ON r.id = p.root_id"
        paths = {os.path.join(r["path"], r["rel_path"]) for r in read(db, sql)}
        assert paths == {str(one / "a.jpg"), str(two / "b.jpg"), str(two / "c.jpg"),
                         str(one / "sub" / "d.jpg")}  # fmt: skip
    finally:
        r.stop()


def test_a_root_folded_into_a_parent_by_a_scan_elsewhere_is_followed(
    db: str, folder: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "HEALTH_EVERY", 0.3)
    r = Running(db, [folder / "2016"])  # a root of its own...
    try:
        with open_catalog(db) as other:
            scan(other, [folder], workers=1)  # ...until another process scans the parent
        wait_until(lambda: log.said("now belongs to"))
        make_photo(folder / "2016" / "later.jpg")
        assert_in_step(db, folder)
        assert len(read(db, "SELECT id FROM roots")) == 1
    finally:
        r.stop()


def test_a_root_forgotten_while_watched_is_catalogued_again(
    db: str, folder: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: stop a watch before forgetting its folder, or it catalogues the files again;
    the daemon says so, and follows the folder under its new root."""
    monkeypatch.setattr(watch, "HEALTH_EVERY", 0.3)
    r = Running(db, [folder])
    try:
        assert_in_step(db, folder)
        with open_catalog(db) as other:
            photos, roots = ingest.forget(other, folder)
        assert photos > 0 and roots == 1
        wait_until(lambda: log.said("was taken out of the catalog (photocat forget)"))
        assert not log.said("now belongs to")
        make_photo(folder / "after-forget.jpg")
        assert_in_step(db, folder)
        assert len(read(db, "SELECT id FROM roots")) == 1
    finally:
        r.stop()


def test_file_names_reach_the_log_inert(running: Running, db: str, folder: Path) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(watch.InertFormatter("%(message)s"))
    logging.getLogger("photocat.watch").addHandler(handler)
    try:
        make_photo(folder / "evil\x1b]0;pwned\x07\n.jpg")
        wait_until(lambda: "ingested" in out.getvalue())
    finally:
        logging.getLogger("photocat.watch").removeHandler(handler)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text  # nothing raw reached the "terminal"
    assert all(
        line.startswith(("event ", "ingested ")) for line in text.splitlines()
    )  # no forged line
    assert "evil\\x1b]0;pwned\\x07\\x0a.jpg" in text


def test_an_inotify_overflow_triggers_a_reconcile(running: Running, log: Log) -> None:
    # watchdog reports the kernel's IN_Q_OVERFLOW only through this logger; say it as it does.
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    wait_until(lambda: log.said("overflow reconcile", logging.DEBUG))


def test_search_during_a_burst_never_fails_and_the_result_is_exact(
    running: Running, db: str, folder: Path, tmp_path: Path
) -> None:
    source = tmp_path / "burst"
    for i in range(150):
        make_photo(source / f"{i:03}.jpg", model=f"M{i % 5}")
    failures: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        with open_catalog(db) as c:
            while not done.is_set():
                try:
                    list(search(c, Filter(model="M*")))
                except Exception as exc:
                    failures.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        shutil.copytree(source, folder / "burst")
        wait_until(lambda: sum(r.startswith("burst/") for r in rows(db)) == 150)
    finally:
        done.set()
        t.join()
    assert failures == []
    assert_in_step(db, folder)


# the store's in-place moves --------------------------------------------------------------------
def _entry(root_id: int, rel: str, model: str = "M") -> FileEntry:
    from catalog.record import PhotoRecord

    return FileEntry(root_id, rel, 10, 20, PhotoRecord(make="X", model=model, latitude=1.0))


def test_store_move_and_move_folder(catalog: Catalog) -> None:
    c = catalog
    rid = c.root_id("/moves")
    assert rid is not None
    c.upsert([_entry(rid, p) for p in ("a.jpg", "b.jpg", "Dir/x.jpg", "Dir/s/y.jpg", "dir/z.jpg")])
    ids = {k: v.photo_id for k, v in c.file_states(rid).items()}
    assert c.move(rid, "a.jpg", "Dir2/a.jpg") and not c.move(rid, "nope.jpg", "n.jpg")
    assert c.move(rid, "Dir2/a.jpg", "b.jpg")  # onto a catalogued file: replaces it
    c.upsert([_entry(rid, "New Dir/x.jpg"), _entry(rid, "New Dir/early.jpg")])
    early = c.file_states(rid)["New Dir/early.jpg"].photo_id  # its move was reported first
    assert c.move_folder(rid, "Dir/", "New Dir/") == 2  # case-sensitive: dir/z.jpg stays
    assert {k: v.photo_id for k, v in c.file_states(rid).items()} == {
        "b.jpg": ids["a.jpg"],
        "New Dir/x.jpg": ids["Dir/x.jpg"],
        "New Dir/s/y.jpg": ids["Dir/s/y.jpg"],
        "dir/z.jpg": ids["dir/z.jpg"],
        "New Dir/early.jpg": early,
    }
    assert set(c.states_under(rid, "New Dir/s/")) == {"New Dir/s/y.jpg"}
    assert set(c.states_of(rid, ["b.jpg", "gone.jpg"])) == {"b.jpg"}
    with pytest.raises(ValueError):
        c.move_folder(rid, "New Dir/", "New Dir/s/")
    assert c.write_batch([_entry(rid, "c.jpg")], {rid: ["b.jpg"]}) == 1
    assert set(c.file_states(rid)) == {
        "New Dir/x.jpg",
        "New Dir/s/y.jpg",
        "New Dir/early.jpg",
        "dir/z.jpg",
        "c.jpg",
    }


# the daemon as a process -----------------------------------------------------------------------
def _daemon(db: str, folder: Path, log_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "catalog.cli", "watch", str(folder), "--db", str(db)]
    cmd += ["--settle", str(SETTLE), *extra]
    with open(log_path, "ab") as err:
        return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)


def _descendants(pid: int) -> set[int]:
    """Child processes, their children... (reader workers, the forkserver that starts them)."""
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids.update(int(k) for k in (task / "children").read_text().split())
        except OSError:
            continue
    return kids.union(*(_descendants(k) for k in kids))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigkill_mid_burst_then_restart_converges_exactly(
    db: str, folder: Path, tmp_path: Path
) -> None:
    source = tmp_path / "incoming"
    for i in range(400):
        make_photo(source / f"{i // 100}" / f"IMG_{i:04}.jpg", model=f"K{i % 7}")
    log_path = tmp_path / "daemon.log"
    proc = _daemon(db, folder, log_path, "--workers", "2")
    try:
        wait_until(lambda: "ready" in log_path.read_text(), timeout=30)
        for copied, src in enumerate(sorted(source.rglob("*.jpg")), 1):
            dest = folder / "incoming" / src.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as i, open(dest, "wb") as o:  # in chunks, as cp does
                while chunk := i.read(4096):
                    o.write(chunk)
            if copied == 150:
                wait_until(lambda: len(rows(db)) > 10)  # the writer is busy
                workers = _descendants(proc.pid)
                assert workers, "no reader processes"
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        # while it is dead: more changes it must discover on its own
        (folder / "2016" / "a.jpg").unlink()
        (folder / "incoming" / "0").rename(folder / "incoming" / "zero")
        assert proc.returncode == -signal.SIGKILL
        wait_until(lambda: not any(_alive(w) for w in workers), timeout=10)  # no orphans

        if BACKEND == "sqlite":
            assert read(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
        proc = _daemon(db, folder, log_path, "--workers", "2")
        assert_in_step(db, folder)
        assert len(rows(db)) == 402  # keep.jpg, b.jpg and the 400: no duplicate, none lost
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert_in_step(db, folder)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _unshare_works() -> bool:
    if not shutil.which("unshare") or not Path("/proc/sys/user/max_inotify_watches").exists():
        return False
    probe = ["unshare", "-Ur", "sh", "-c", "echo 2 > /proc/sys/user/max_inotify_watches"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -Ur and per-namespace limits")
def test_inotify_watch_limit_falls_back_to_polling_with_a_clear_message(
    db: str, folder: Path, tmp_path: Path
) -> None:
    for i in range(6):  # more folders than the limit allows watches
        (folder / f"d{i}" / "deeper").mkdir(parents=True)
    log_path = tmp_path / "daemon.log"
    cmd = [sys.executable, "-m", "catalog.cli", "watch", str(folder), "--db", str(db)]
    script = 'echo 4 > /proc/sys/user/max_inotify_watches && exec "$@"'
    with open(log_path, "ab") as err:
        proc = subprocess.Popen(
            ["unshare", "-Ur", "sh", "-c", script, "sh", *cmd, "--settle", str(SETTLE)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        wait_until(lambda: "ready" in log_path.read_text(), timeout=30)
        text = log_path.read_text()
        assert "fs.inotify.max_user_watches" in text and "polling" in text, text
        make_photo(folder / "d5" / "deeper" / "late.jpg")  # in a folder inotify could not watch
        assert_in_step(db, folder)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_watchers_on_two_machines_fill_one_catalog(db: str, tmp_path: Path) -> None:
    """Two daemons (two hosts, as on two machines) write into one catalog at the same time:
    the catalog ends as the union of both folders, nothing lost, nothing duplicated."""
    folders = {host: tmp_path / host / "photos" for host in ("alpha", "beta")}
    for host, top in folders.items():
        make_photo(top / f"{host}-keep.jpg", model=f"Keep {host}")
    procs = []
    for host, top in folders.items():
        cmd = [sys.executable, "-m", "catalog.cli", "watch", str(top), "--db", str(db)]
        env = {**os.environ, "PHOTOCAT_HOST": host}
        with open(tmp_path / f"{host}.log", "ab") as err:
            procs.append(
                subprocess.Popen(
                    [*cmd, "--settle", str(SETTLE)],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    try:
        for host in folders:
            wait_until(lambda h=host: "ready" in (tmp_path / f"{h}.log").read_text(), timeout=60)

        def burst(host: str) -> None:
            for i in range(60):
                make_photo(
                    folders[host] / f"{i % 3}" / f"{host}-{i:03}.jpg", model=f"{host} {i % 4}"
                )

        threads = [threading.Thread(target=burst, args=(h,)) for h in folders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        want = {
            (host, p.relative_to(top).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
            for host, top in folders.items()
            for p in top.rglob("*.jpg")
        }

        def catalog_now() -> set[tuple[str, str, str]]:
            got = read(
                db,
                "SELECT r.host, p.rel_path, p.sha256 FROM photos p"
                " JOIN roots r ON r.id = p.root_id",
            )
            assert len(got) == len({(g["host"], g["rel_path"]) for g in got}), "duplicate rows"
            return {(g["host"], g["rel_path"], g["sha256"]) for g in got}

        wait_until(lambda: catalog_now() == want, timeout=90)
        assert len(want) == 122
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(60) == 0
