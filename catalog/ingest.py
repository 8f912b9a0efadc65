"""The one pipeline that `scan` and `watch` feed: files → extract (in worker processes) → store.

Extraction is pure and runs in a process pool; the calling process is the only writer and writes
in batches, one transaction each.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import signal
import stat
import sys
from collections import deque
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, repeat
from typing import IO, TYPE_CHECKING, Any

from catalog import when
from catalog.errors import CatalogError, describe
from catalog.record import FileEntry, tags_json

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported by whoever opens the catalog, not here
    from catalog.store import Catalog

IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".tif",
        ".tiff",
        ".png",
        ".webp",
        ".heic",
        ".heif",
        ".hif",
        ".avif",
        ".mpo",
        ".dng",
        ".cr2",
        ".cr3",
        ".crw",
        ".nef",
        ".nrw",
        ".arw",
        ".srf",
        ".sr2",
        ".pef",
        ".orf",
        ".rw2",
        ".raf",
        ".mrw",
        ".srw",
        ".x3f",
        ".iiq",
        ".3fr",
        ".erf",
        ".kdc",
    ]
)
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle"})
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download", "~")
HASH_CHUNK = 1 << 20
BATCH_SIZE = 2000  # records per transaction: fewer commits; still under a second of reading
TAIL_BATCH = 256  # the smallest batch a scan's last ones shrink to (_batch_limit)
IN_PROCESS_BELOW = 64  # fewer files than this are not worth starting worker processes
CHUNK = 64  # files per task sent to a worker process (one round trip each; 32: 2.5% slower)
# Files read ahead of the writer, at most: enough that the workers never wait while the writer
# stores a batch (or loads the place data), few enough that memory stays flat (~10 MB).
READ_AHEAD = 4096
# ... and at most this much of their tag listings (the bulk of a record; a photo whose XMP holds
# an editor's settings and history carries 20-60 KB): read-ahead and write batches shrink to it,
# so memory stays flat whatever the files hold (30,000 photos with 24 KB of XMP each: the main
# process peaked at 340 MiB without these bounds).
READ_AHEAD_BYTES = 16 << 20
BATCH_BYTES = 8 << 20
HASH_BATCH = 1000  # digests written per transaction by the hash stage
TAIL_CHUNK = 4  # the fewest files a digest task's last ones shrink to (_tapered)
# A file up to this size is hashed as it is read (hashing it costs about what reading its
# metadata does, ~0.2 ms; its record waits no longer than that): one open instead of two, and
# its digest goes in with its row instead of an UPDATE after. Larger files (most camera photos)
# are hashed in the hash stage, after every record is searchable.
INLINE_HASH_BYTES = 256 * 1024
# A first scan hashes this much of its first files while the catalog is being made (~0.4 s of
# two cores here), so large photos do not leave the workers idle then.
EARLY_HASH_BYTES = 1 << 30
# The workers run this much nicer than the process that feeds them and stores what they read:
# when both want a core, that process (and its pool's result and feeder threads) runs first, so
# results are taken as they come and the workers' next tasks are there when they need them
# (gaps between a worker's tasks, 5,000 photos: 0.15-0.19 -> 0.10-0.16 s). Paired runs, 21 of
# each: 5,000 photos -47 ms and 500 large ones -22 ms (median differences; 15 of 21 faster),
# less CPU too. A side effect, wanted: a scan's readers give way to the user's own programs.
WORKER_NICENESS = 10
# --hash choices: hashlib constructors. SHA-256 is the default (evidence); the stored digest
# goes to the column named after its algorithm, so one is never taken for the other.
HASHES: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "blake2b": lambda: hashlib.blake2b(digest_size=32),  # BLAKE2b-256
}

Progress = Callable[[int], None]


class RootError(CatalogError):
    """A root cannot be scanned as it is (missing, unreadable, looks unmounted)."""


@dataclass(slots=True)
class ScanSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0  # catalogued with an error: unreadable or not an image
    skipped: list[str] = field(default_factory=list)  # places the walk could not enter

    def add(self, other: ScanSummary) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.failed += other.failed
        self.skipped.extend(other.skipped)


@dataclass(slots=True, frozen=True)
class Job:
    """A file to read: its absolute path and its place in the catalog."""

    path: str
    root_id: int
    rel_path: str


def is_candidate(name: str) -> bool:
    """Whether a file name looks like a photo to catalogue (hidden, temporary files are not)."""
    if name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
        return False
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_ignored_dir(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES


def walk(
    top: str, skipped: list[str], blind: list[str] | None = None
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, stat) of every candidate file below `top`; symlinks are not followed.

    Folders (or entries) that cannot be read are appended to `skipped` as "path: reason" and to
    `blind` as the bare path, so nothing under them is removed. Symbolic links to folders or
    with a photo's name, and FIFOs/devices/sockets with a photo's name, are never opened; they
    are reported in `skipped` too, so nothing is left out silently. Not following links is a
    choice: on media under investigation a link may point anywhere (the investigator's own
    disk, /dev, a loop back up the tree), so the catalog holds only what is really there.
    """
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            skipped.append(f"{folder}: {exc.strerror or exc}")
            if blind is not None:
                blind.append(folder)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not is_ignored_dir(entry.name):
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    if is_candidate(entry.name):
                        yield entry.path, entry.stat(follow_symlinks=False)
                elif is_ignored_dir(entry.name):
                    continue  # hidden: not reported either
                elif entry.is_symlink():
                    reason = _link_reason(entry)
                    if reason:
                        skipped.append(f"{entry.path}: {reason}")
                elif is_candidate(entry.name):
                    skipped.append(f"{entry.path}: not a regular file (FIFO, device or socket)")
            except OSError as exc:
                skipped.append(f"{entry.path}: {exc.strerror or exc}")
                if blind is not None:
                    blind.append(entry.path)


class PathList:
    """Paths, in the order appended, held compactly: each folder's path once and the names of
    its files joined in one string ("\0" cannot be in a file name). A scan holds every path it
    is to read until their records are stored: 100,000 of them take 11.7 MiB as a list of str,
    ~2 MiB here, and the forked workers inherit whichever it is."""

    GROUP = 1024  # names joined at a time: a folder of 100,000 files is never held as a list

    __slots__ = ("_count", "_folder", "_groups", "_names")

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._groups: list[tuple[str, str]] = []  # (folder with its separator, names by "\0")
        self._folder = ""
        self._names: list[str] = []  # in _folder, not joined yet
        self._count = 0
        for path in paths:
            self.append(path)

    def append(self, path: str) -> None:
        cut = path.rfind(os.sep) + 1
        folder = path[:cut]
        if folder != self._folder or len(self._names) >= self.GROUP:
            self._join()
            self._folder = folder
        self._names.append(path[cut:])
        self._count += 1

    def _join(self) -> None:
        if self._names:
            self._groups.append((self._folder, "\0".join(self._names)))
            self._names = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for folder, names in self._groups:
            for name in names.split("\0"):
                yield folder + name
        folder = self._folder
        for name in list(self._names):
            yield folder + name


def _link_reason(entry: os.DirEntry[str]) -> str | None:
    """Why a symbolic link is worth reporting (it hides a folder or a photo), else None."""
    try:
        to_folder = entry.is_dir()  # follows the link
    except OSError as exc:  # a cycle (ELOOP), or a target that cannot be reached
        return f"symbolic link not followed ({exc.strerror or exc})"
    if to_folder or is_candidate(entry.name):
        return "symbolic link not followed"
    return None


def read_file(
    job: Job, hash_with: str | None = "sha256", hash_up_to: int | None = None
) -> FileEntry:
    """Extract one file and, with `hash_with`, take its digest (runs in a worker process). Never
    raises. Its UTC time is not resolved here but where it is stored (_with_time).

    With `hash_up_to`, only a file of at most that many bytes is hashed here; a larger one is
    left to the hash stage (hash_place), which runs after the records are stored and
    searchable. A file hashed here and no larger than INLINE_HASH_BYTES is read once, whole:
    its metadata and its digest come from the same bytes. The tag listing travels serialised
    (entry.tags_json): one string crosses the process boundary faster than a hundred small
    objects."""
    from catalog.extract import extract, open_regular  # here: a rescan never needs Pillow

    record = None
    size = mtime_ns = 0
    digest = None
    try:  # a regular file, and not one swapped for a link or FIFO since the walk saw it
        with open_regular(job.path, follow_symlinks=False) as fh:
            st = os.fstat(fh.fileno())
            size, mtime_ns = st.st_size, st.st_mtime_ns
            hashing = hash_with is not None and (hash_up_to is None or size <= hash_up_to)
            if hashing and size <= INLINE_HASH_BYTES:
                # Small: read once, whole; the metadata and the digest come from these bytes.
                data = fh.read(size + 1)
                st = os.fstat(fh.fileno())
                if len(data) == size and (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
                    hasher = HASHES[hash_with]()  # type: ignore[index]
                    hasher.update(data)
                    digest = hasher.hexdigest()
                    record = extract(job.path, data, with_time=False)
            else:  # metadata from this open file: the one its size and mtime are of
                record = extract(job.path, fh, with_time=False)
                if hashing:
                    fh.seek(0)
                    digest = _file_digest(fh, hash_with, size, mtime_ns)  # type: ignore[arg-type]
    except OSError as exc:
        record = record or extract(job.path, with_time=False)
        if record.error is None:
            record.error = f"cannot read file: {exc.strerror or exc}"
    if record is None:  # changed while read whole: read as it is now
        record = extract(job.path, with_time=False)
    listing = tags_json(record)
    record.tags = []
    return FileEntry(
        job.root_id, job.rel_path, size, mtime_ns, record,
        sha256=digest if hash_with == "sha256" else None,
        blake2b=digest if hash_with == "blake2b" else None, tags_json=listing,
    )  # fmt: skip


def _read_chunk(jobs: list[Job], hash_with: str | None, hash_up_to: int | None) -> list[FileEntry]:
    with collecting_between_batches():
        return [read_file(job, hash_with, hash_up_to) for job in jobs]


@contextmanager
def collecting_between_batches() -> Iterator[Callable[[], None]]:
    """Pause Python's automatic garbage collection while a batch of files is worked on; the
    young generations are collected when the block ends and whenever the caller calls the
    function it is given (between batches).

    The automatic collector runs every 700 new container objects, so in the middle of a batch:
    it walks the batch's records, rows and tag listings, all still alive, and moves them to
    older generations that it walks again later. Between batches nearly all of them are gone
    (a plain JPEG's objects make no reference cycles), and a collection there costs little (the
    main process of a 5,000-photo scan: 215 collections, ~85 ms, before; 120, ~55 ms, with the
    rest in start-up imports). Memory stays bounded: whatever cyclic garbage a batch leaves is
    collected after it, and the automatic collector (the oldest generation with it) resumes
    when the block ends. Where the collector is already off (an enclosing block, or the
    caller's choice), nothing changes."""
    if not gc.isenabled():
        yield _no_collection
        return
    gc.disable()
    try:
        yield _collect_young
    finally:
        gc.enable()
        _collect_young()


def _collect_young() -> None:
    gc.collect(1)


@contextmanager
def _start_up_frozen(freeze: bool) -> Iterator[Callable[[], None]]:
    """With `freeze` (the process ends after this scan: the CLI), no automatic garbage collection
    until the caller calls the function it is given, once the catalog is open; then what exists
    is frozen (gc.freeze) and collection resumes.

    Opening a catalog imports SQLAlchemy and makes the schema: with the CLI's own, ~75,000
    objects that live as long as the process, and next to no garbage. Collected as they are
    made, they cost a full collection and ~90 young ones; frozen, no collection walks them
    again. A first scan of 500 large photos: the main process's CPU 0.535 -> 0.513 s, the scan
    0.766 -> 0.758 s (21 alternating runs); 2,000: 2.107 -> 2.088 s. Without `freeze` (a
    library caller, whose heap this is not to pin), or where the collector is already off,
    nothing changes."""
    if not freeze or not gc.isenabled():
        yield _no_collection
        return
    gc.disable()
    try:
        yield _freeze_and_resume
    finally:
        gc.enable()  # also when the catalog never opened: nothing frozen then


def _freeze_and_resume() -> None:
    if not gc.isenabled():  # paused by _start_up_frozen: only the first call freezes
        gc.freeze()
        gc.enable()


def _no_collection() -> None:
    pass


def read_files(
    jobs: Iterable[Job],
    pool: Executor | None = None,
    *,
    hash_with: str | None = "sha256",
    hash_up_to: int | None = None,
    queued: Callable[[], None] | None = None,
    submitted: deque[Future[list[FileEntry]]] | None = None,
) -> Iterator[FileEntry]:
    """read_file over jobs, in order: in this process, or in the pool's workers, CHUNK files a
    task with at most READ_AHEAD files submitted ahead of the caller, so however many files
    there are, only a few thousand records are ever held in memory.

    With a pool the reading starts now, not at the first next(): the workers are given their
    first READ_AHEAD files at once, so they read while the caller does something else.
    `queued` is called once every file has been given to the pool: work submitted from then on
    delays no record. `submitted`: tasks (_submit_reads) already reading the files before
    `jobs`, whose entries come first."""
    if pool is None or (isinstance(jobs, Sized) and len(jobs) < IN_PROCESS_BELOW):
        return _with_time(read_file(job, hash_with, hash_up_to) for job in jobs)
    chunks = _batched(jobs, CHUNK)
    if queued is not None:
        chunks = _then(chunks, queued)
    limit = _tasks_ahead(pool)
    waiting = deque() if submitted is None else submitted
    for chunk in islice(chunks, max(0, limit - len(waiting))):
        waiting.append(_submit_reads(pool, chunk, hash_with, hash_up_to))
    args = (hash_with, hash_up_to)
    bounded = _bounded(
        pool, _read_chunk, chunks, limit, *args, waiting=waiting, weight=_listing_bytes,
        budget=READ_AHEAD_BYTES,
    )  # fmt: skip
    return _with_time(bounded)


def _listing_bytes(entry: FileEntry) -> int:
    """What an entry weighs in memory, near enough: its serialised tag listing."""
    return len(entry.tags_json) if entry.tags_json is not None else 0


def _submit_reads(
    pool: Executor, jobs: list[Job], hash_with: str | None, hash_up_to: int | None
) -> Future[list[FileEntry]]:
    import catalog.extract  # noqa: F401  # loaded before the workers fork, so they share it

    return pool.submit(_read_chunk, jobs, hash_with, hash_up_to)


def _with_time(entries: Iterable[FileEntry]) -> Iterator[FileEntry]:
    """Entries from read_file, their UTC time resolved here, in the process that stores them:
    the time zone at a GPS position needs timezonefinder (~0.15 s of CPU and ~25 MB to load),
    loaded once by this process instead of by every worker, and never before the workers start
    (a first scan used to load it first, leaving the other cores idle meanwhile)."""
    for entry in entries:
        when.apply(entry.record)
        yield entry


def _tasks_ahead(pool: Executor) -> int:
    workers = getattr(pool, "_max_workers", None) or os.cpu_count() or 1
    return max(2 * workers, READ_AHEAD // CHUNK)


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _then(items: Iterable[Any], action: Callable[[], None]) -> Iterator[Any]:
    """`items`, then `action()` when asked for one more after the last."""
    yield from items
    action()


def _tapered(items: Iterable[Any], total: int, n: int = CHUNK) -> Iterator[list[Any]]:
    """`items` (`total` of them, about) in lists of `n`, the last ones shrinking down to
    TAIL_CHUNK: tasks of 64 large photos take ~90 ms each to hash, and the last one left a core
    idle that long while the other finished it."""
    remaining = total
    batch: list[Any] = []
    size = min(n, max(TAIL_CHUNK, remaining // 4))
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            remaining -= len(batch)
            size = min(n, max(TAIL_CHUNK, remaining // 4))
            batch = []
    if batch:
        yield batch


def _bounded(
    pool: Executor,
    fn: Callable[..., list[Any]],
    chunks: Iterable[list[Any]],
    limit: int,
    *args: Any,
    waiting: deque[Future[list[Any]]] | None = None,
    weight: Callable[[Any], int] | None = None,
    budget: int = 0,
) -> Iterator[Any]:
    """pool.map(fn, chunks) flattened and in order, with at most `limit` tasks submitted ahead
    (Executor.map submits everything at once and keeps every result until it is consumed).
    `waiting`: tasks already submitted for the chunks before these, whose results come first.
    With `weight` (of a result's item), fewer tasks go ahead when the last result weighed
    more than `budget` over `limit` tasks; never fewer than two a worker."""
    waiting = deque() if waiting is None else waiting
    ahead = limit
    least = min(limit, 2 * (getattr(pool, "_max_workers", None) or 1))
    try:
        for chunk in chunks:
            while len(waiting) >= ahead:
                result = waiting.popleft().result()
                if weight is not None:
                    last = max(1, sum(map(weight, result)))  # what a task weighs now
                    ahead = max(least, min(limit, budget // last))
                yield from result
            waiting.append(pool.submit(fn, chunk, *args))
        while waiting:
            yield from waiting.popleft().result()
    finally:
        for future in waiting:
            future.cancel()


def store_entries(
    catalog: Catalog,
    entries: Iterable[FileEntry],
    known: Container[str],
    summary: ScanSummary,
    progress: Progress | None = None,
    total: int | None = None,
) -> None:
    """Write entries in batches, counting new/updated (rel_path in `known`)/failed. With `total`
    (how many entries will come), the last batches shrink (_batch_limit)."""

    def counted() -> Iterator[FileEntry]:
        for entry in entries:
            if entry.rel_path in known:
                summary.updated += 1
            else:
                summary.new += 1
            if entry.record.error:
                summary.failed += 1
            yield entry

    _write_in_batches(counted(), catalog.upsert, BATCH_SIZE, total, progress, weight=_listing_bytes)


def _write_in_batches(
    items: Iterable[Any],
    write: Callable[[list[Any]], object],
    size: int,
    total: int | None,
    progress: Progress | None,
    weight: Callable[[Any], int] | None = None,
) -> None:
    """`write` the items a batch at a time, batches of at most `size` shrinking near the end
    when `total` (how many items will come, about) is known (_batch_limit), and with `weight`
    (of an item) written early once they weigh BATCH_BYTES; garbage collected between batches
    (collecting_between_batches). The one writing loop of the records and of the hash stage's
    digests."""
    batch: list[Any] = []
    weighed = 0
    remaining = total
    limit = _batch_limit(remaining, size)
    with collecting_between_batches() as collect:
        for item in items:
            batch.append(item)
            if weight is not None:
                weighed += weight(item)
            if len(batch) >= limit or weighed >= BATCH_BYTES:
                write(batch)
                if progress:
                    progress(len(batch))
                if remaining is not None:
                    remaining -= len(batch)
                limit = _batch_limit(remaining, size)
                batch = []
                weighed = 0
                collect()
        if batch:
            write(batch)
            if progress:
                progress(len(batch))


def _batch_limit(remaining: int | None, size: int | None = None) -> int:
    """How many rows the next batch of at most `size` (BATCH_SIZE) takes when `remaining` are
    still to come (None: not known). The last batch is written after the last file is read (or
    hashed), while the workers wait: at ~70 us a row, 2,000 rows kept the scan's last 0.14 s to
    one core. Halving the batches near the end leaves a last one of at most TAIL_BATCH, the
    others written while files are read."""
    size = BATCH_SIZE if size is None else size
    if remaining is None:
        return size
    return min(size, max(TAIL_BATCH, remaining // 2))


@dataclass(slots=True, frozen=True)
class Place:
    """A folder to scan, as a root of the catalog and a prefix inside it ('' for the root)."""

    root_id: int
    root_path: str
    prefix: str


def resolve_place(catalog: Catalog, folder: str | os.PathLike[str]) -> Place:
    """Find the root a folder belongs to (an existing root that contains it), or make one."""
    path = os.path.abspath(os.fspath(folder))
    check_folder(path)
    return Place(*catalog.claim_root(path))


def resolve_places(catalog: Catalog, folders: Iterable[str | os.PathLike[str]]) -> list[Place]:
    """resolve_place for each folder, each place once: a folder given twice, or inside another
    given, is left out (the other covers it; scanned twice, its files were counted twice)."""
    folders = list(folders)
    for f in folders:  # a first pass may create roots that a later folder adopts...
        resolve_place(catalog, f)
    places = [resolve_place(catalog, f) for f in folders]  # ...so resolve again
    kept: list[Place] = []
    for p in sorted(set(places), key=lambda p: (p.root_id, len(p.prefix))):
        if not any(k.root_id == p.root_id and p.prefix.startswith(k.prefix) for k in kept):
            kept.append(p)
    return kept


def check_folder(path: str) -> None:
    if not os.path.exists(path):
        raise RootError(f"{path} does not exist")
    if not os.path.isdir(path):
        raise RootError(f"{path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise RootError(f"{path} cannot be read (permission denied)")


def _init_worker(parent: int) -> None:
    """Worker initializer. On Linux, ask the kernel to kill this worker when the scan dies
    (kill -9 included): an orphaned worker would wait for work forever, holding the parent's
    inherited database socket open (a PostgreSQL session and its row locks with it). And collect
    garbage, whatever the parent's collector was doing as it forked (_start_up_frozen, or a hash
    stage's first task submitted inside collecting_between_batches). And give way to the
    parent (WORKER_NICENESS)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    gc.enable()
    if hasattr(os, "nice"):
        with suppress(OSError):  # none to give up: run as the parent does
            os.nice(WORKER_NICENESS)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Extraction workers, forked from (and dying with) the calling process."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )


def scan(
    catalog: Catalog,
    folders: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    allow_empty: bool = False,
    hash_with: str | None = "sha256",
    reread: bool = False,
) -> ScanSummary:
    """Bring the catalog in step with the folders: add new files, re-read changed ones (by size
    and mtime), remove rows of files that are gone. Unchanged files are not opened, unless
    `reread`: then every file is read again (and its digest taken again), as a changed one is.

    Two stages per folder: records first (header reads, stored in batches, searchable at once,
    digest null), then the hash stage (hash_place) digests every file under the folder whose row
    has no `hash_with` digest yet, in parallel, each file read once. `hash_with` is a key of
    HASHES, or None for no digest (rows keep a null one; a later scan with a hash fills it)."""
    _check_hash(hash_with)
    places = resolve_places(catalog, folders)
    summary = ScanSummary()
    workers = workers or os.cpu_count() or 1
    pool = worker_pool(workers) if workers > 1 else None
    try:
        for place in places:
            scanned = _scan_place(
                catalog, place, pool, progress, on_total, allow_empty, hash_with, reread=reread
            )
            summary.add(scanned)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return summary


def _check_hash(hash_with: str | None) -> None:
    if hash_with is not None and hash_with not in HASHES:
        raise ValueError(f"unknown hash {hash_with!r}; choose one of {', '.join(HASHES)}")


def scan_catalog(
    db: str | os.PathLike[str] | None,
    folders: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    allow_empty: bool = False,
    hash_with: str | None = "sha256",
    freeze_start_up: bool = False,
    reread: bool = False,
) -> ScanSummary:
    """scan() into the catalog at `db` (a path or URL, as open_catalog takes it; made if missing),
    opened for the scan and closed after it. `freeze_start_up`: the process ends after the scan,
    so what start-up made is frozen out of garbage collection (_start_up_frozen).

    A catalog file that does not exist yet holds nothing to compare a file with, so a first scan
    of one folder begins before the catalog is made: the folder is walked and the workers start
    reading while this process loads SQLAlchemy and creates the schema (~0.3 s of one core that
    would otherwise leave the others idle at the start of every first scan)."""
    from catalog.urls import database_url, new_sqlite_file

    _check_hash(hash_with)
    url = database_url(db)
    folders = list(folders)
    workers = workers or os.cpu_count() or 1
    scan_in = partial(
        scan, workers=workers, progress=progress, on_total=on_total, allow_empty=allow_empty,
        hash_with=hash_with, reread=reread,
    )  # fmt: skip
    with _start_up_frozen(freeze_start_up) as started:
        if not folders:  # every folder catalogued here, as it is now
            from catalog.store import open_catalog

            with open_catalog(url, create=False) as catalog:
                started()
                ready, skipped = _scannable_roots(catalog, allow_empty)
                summary = scan_in(catalog, ready) if ready else ScanSummary()
                summary.skipped[:0] = skipped
                return summary
        if len(folders) != 1 or workers < 2 or not new_sqlite_file(url):
            from catalog.store import open_catalog

            with open_catalog(url) as catalog:
                started()
                return scan_in(catalog, folders)
        folder = os.path.abspath(os.fspath(folders[0]))
        check_folder(folder)
        pool = worker_pool(workers)
        try:
            early = _read_early(folder, pool, hash_with)
            from catalog.store import open_catalog

            with open_catalog(url) as catalog:
                place = resolve_place(catalog, folder)
                started()
                return _scan_place(
                    catalog, place, pool, progress, on_total, allow_empty, hash_with, early
                )
        finally:
            pool.shutdown(cancel_futures=True)


def _scannable_roots(catalog: Catalog, allow_empty: bool) -> tuple[list[str], list[str]]:
    """The folders catalogued on this machine that a scan can read now, and the others, each as
    "path: why" (scan_catalog skips them: their photos stay catalogued, as when a drive is not
    mounted; an empty folder is scanned with `allow_empty`). None catalogued here is a
    RootError: a scan needs folders then."""
    from catalog.store import this_host

    roots = catalog.roots(this_host())
    if not roots:
        raise RootError("nothing is catalogued on this machine: give the folders to scan")
    ready, skipped = [], []
    for _, path in roots:
        state = folder_state(path)
        if state == "ok" or (state == "empty" and allow_empty):
            ready.append(path)
        else:
            skipped.append(f"{path}: {state}; its photos stay catalogued")
    return ready, skipped


@dataclass(slots=True)
class _Early:
    """A folder walked, and its files being read, before the catalog was open."""

    files: PathList  # absolute paths, in reading order
    skipped: list[str]
    unreadable: list[str]
    entries: Iterator[FileEntry]  # root_id 0, rel_path relative to the folder
    # Digests of the first larger files (keyed by their index in `files`, which `hashed` maps to
    # their path), queued once every file has been given to the workers to read and hashed
    # while the catalog is made and the records stored; stored once their rows exist. The hash
    # stage does the rest.
    digests: list[Future[list[tuple[int, int, int, str | None]]]] = field(default_factory=list)
    hashed: dict[int, str] = field(default_factory=dict)


def _read_early(folder: str, pool: Executor, hash_with: str | None = None) -> _Early:
    """Walk `folder` and give the workers its files to read (those of up to INLINE_HASH_BYTES
    hashed as they are read). With `hash_with`, queue behind every one of those reads the
    digests of the first larger files, up to EARLY_HASH_BYTES: the workers, done reading, hash
    while the catalog is made and the records stored. No record waits for them."""
    skipped: list[str] = []
    unreadable: list[str] = []
    files = PathList()
    to_hash: list[tuple[int, str, int, int]] = []
    budget = EARLY_HASH_BYTES
    base = len(folder.rstrip(os.sep)) + 1
    # The first READ_AHEAD files are given to the workers as the walk finds them, CHUNK at a
    # time, instead of after it: a tree of 5,000 photos in 2,000 folders took 54 ms to walk
    # with the page cache warm, seconds cold, while the workers waited.
    submitted: deque[Future[list[FileEntry]]] = deque()
    chunk: list[Job] = []
    done = 0  # files given to the workers so far
    ahead = _tasks_ahead(pool)
    for path, st in walk(folder, skipped, unreadable):
        if (
            hash_with is not None
            and len(files) < READ_AHEAD
            and INLINE_HASH_BYTES < st.st_size <= budget
        ):
            to_hash.append((len(files), path, st.st_size, st.st_mtime_ns))
            budget -= st.st_size
        files.append(path)
        if len(submitted) < ahead:
            chunk.append(Job(path, 0, _rel(path, base)))
            while len(chunk) >= CHUNK and len(files) >= IN_PROCESS_BELOW and len(submitted) < ahead:
                submitted.append(_submit_reads(pool, chunk[:CHUNK], hash_with, INLINE_HASH_BYTES))
                done += CHUNK
                del chunk[:CHUNK]
    # None given yet if there are fewer files than worth the workers: they are read here.
    reader = pool if len(files) >= IN_PROCESS_BELOW else None
    jobs = (Job(path, 0, _rel(path, base)) for path in islice(files, done, None))  # made as read
    early = _Early(files, skipped, unreadable, iter(()))
    if hash_with is not None and reader is not None:  # else read and hashed here
        early.hashed = {i: path for i, path, _, _ in to_hash}

    def hash_early() -> None:  # behind the last read: called by read_files
        early.digests = [
            pool.submit(_digest_chunk, chunk, hash_with)
            for chunk in _tapered(to_hash, len(to_hash))
        ]

    early.entries = read_files(
        jobs, reader, hash_with=hash_with, hash_up_to=INLINE_HASH_BYTES,
        queued=hash_early if early.hashed else None, submitted=submitted,
    )  # fmt: skip
    return early


def _early_rels(early: _Early, place: Place) -> dict[int, str]:
    """The files hashed early (by their index in the reading order), relative to the place's
    root: the hash stage leaves them out, and _store_early_digests stores their digests."""
    base = len(place.root_path.rstrip(os.sep)) + 1
    return {i: _rel(path, base) for i, path in early.hashed.items()}


def _store_early_digests(
    catalog: Catalog, place: Place, early: _Early, hash_with: str, rels: dict[int, str]
) -> tuple[int, set[str]]:
    """Store the digests hashed while the catalog was made (`rels`: _early_rels), where the row
    has the size and mtime the file had when hashed (set_digests checks again). Returns how many
    were stored and the files (relative to the place's root) they were given to."""
    done = [d for future in early.digests for d in future.result() if d[3] is not None]
    states = catalog.states_of(place.root_id, [rels[i] for i, _, _, _ in done])
    batch: dict[str, tuple[int, int, int, str]] = {
        rels[i]: (state.photo_id, size, mtime_ns, digest)  # type: ignore[misc]  # not None
        for i, size, mtime_ns, digest in done
        if (state := states.get(rels[i])) is not None
        and (state.size, state.mtime_ns) == (size, mtime_ns)
    }
    return catalog.set_digests(hash_with, list(batch.values())), set(batch)


def _rel(path: str, base: int) -> str:
    """`path` relative to the folder whose path (with its separator) is `base` characters long,
    in the catalog's '/'-separated form."""
    return path[base:].replace(os.sep, "/")


def _rerooted(entries: Iterator[FileEntry], place: Place) -> Iterator[FileEntry]:
    """Entries read before their root existed, placed under it (its prefix: the folder, when
    another process made the catalog first and the folder fell inside one of its roots)."""
    for entry in entries:
        entry.root_id = place.root_id
        entry.rel_path = place.prefix + entry.rel_path
        yield entry


def _scan_place(
    catalog: Catalog,
    place: Place,
    pool: Executor | None,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
    allow_empty: bool,
    hash_with: str | None = "sha256",
    early: _Early | None = None,
    *,
    reread: bool = False,
) -> ScanSummary:
    summary = ScanSummary()
    top = os.path.join(place.root_path, place.prefix) if place.prefix else place.root_path
    known = {
        rel: st
        for rel, st in catalog.file_states(place.root_id).items()
        if rel.startswith(place.prefix)
    }
    if known and not allow_empty and not _has_entries(top):
        raise RootError(
            f"{top} is empty but the catalog holds {len(known)} photos from it: it looks "
            "unmounted, so nothing was removed (scan with --allow-empty if they really are gone)"
        )
    # Memory stays flat with the number of files: what is seen leaves `known` (what is left at
    # the end is gone), only the paths to read are kept, and records are streamed in bounded
    # chunks (read_files) to the writer.
    to_read = PathList()
    updated: set[str] = set()
    root_len = len(place.root_path.rstrip(os.sep)) + 1
    unreadable: list[str] = []
    if early is None:
        for path, st in walk(top, summary.skipped, unreadable):
            rel = _rel(path, root_len)
            old = known.pop(rel, None)
            if old is not None:
                if not reread and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    summary.unchanged += 1
                    continue
                updated.add(rel)
            to_read.append(path)
        jobs = (Job(path, place.root_id, _rel(path, root_len)) for path in to_read)
        reader = pool if len(to_read) >= IN_PROCESS_BELOW else None
        entries = read_files(jobs, reader, hash_with=hash_with, hash_up_to=INLINE_HASH_BYTES)
    else:  # all read already: rows found now (another process made the catalog) are updated
        summary.skipped.extend(early.skipped)
        unreadable = early.unreadable
        to_read = early.files
        for path in to_read if known else ():  # a new catalog: nothing to match
            rel = _rel(path, root_len)
            if known.pop(rel, None) is not None:
                updated.add(rel)
        entries = _rerooted(early.entries, place)
    reading = len(to_read)
    if on_total:
        on_total(reading)
    store_entries(catalog, entries, updated, summary, progress, total=reading)
    del to_read, updated
    if early is not None:
        early.files = PathList()  # read and stored: the hash stage finds its files in the rows
    # Gone: known, not seen, and neither below nor at a place the walk could not read.
    blind = [_rel(b, root_len) for b in unreadable]
    gone = [r for r in known if not any(r == b or r.startswith(b + "/") for b in blind)]
    if gone:
        summary.removed = catalog.remove(place.root_id, gone)
    catalog.mark_scanned(place.root_id)
    if hash_with is not None:  # one progress bar: its total grows by the files to hash
        total = (lambda n: on_total(reading + n)) if on_total else None
        hashing = None
        if early is not None and early.digests:  # the hash stage's tasks queue behind these
            rels = _early_rels(early, place)
            hashing = (
                set(rels.values()),
                partial(_store_early_digests, catalog, place, early, hash_with, rels),
            )
        hash_place(catalog, place, pool, hash_with, progress, total, hashing)
    return summary


def hash_place(
    catalog: Catalog,
    place: Place,
    pool: Executor | None,
    hash_with: str = "sha256",
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    hashing: tuple[set[str], Callable[[], tuple[int, set[str]]]] | None = None,
) -> int:
    """The hash stage: digest each file under `place` whose row has no `hash_with` digest yet
    (new, changed, or catalogued without one), reading it once, in the pool's workers. Digests
    are written HASH_BATCH a transaction, only where the row still has the size and mtime the
    file had while it was read (a file changed meanwhile keeps a null digest; the next scan
    re-reads it). Files that cannot be read keep a null digest. Returns how many were stored.

    `hashing`: files (relative to the place's root) whose digests the pool is computing
    already, and the function that stores those (returning how many it stored and for which
    files). Their rows are left out here, so this stage's tasks queue behind theirs instead of
    waiting for them (both workers idled ~15 ms while they were stored first); they are
    stored once this stage's first digest is in, while the workers go on, and any of them
    left without a digest is hashed before the stage ends."""
    count = catalog.count_undigested(place.root_id, place.prefix, hash_with)
    if not count:
        return 0
    if on_total:
        on_total(count)
    base = place.root_path.rstrip(os.sep) + os.sep
    stored = 0

    def todo(keep: Callable[[str], bool]) -> Iterator[tuple[int, str, int, int]]:
        after = 0
        while True:
            rows = catalog.undigested(place.root_id, place.prefix, hash_with, after, HASH_BATCH)
            if not rows:
                return
            after = rows[-1][0]
            for photo_id, rel, size, mtime_ns in rows:
                if keep(rel):
                    yield photo_id, base + rel.replace("/", os.sep), size, mtime_ns

    def write(batch: list[tuple[int, int, int, str]]) -> None:
        nonlocal stored
        stored += catalog.set_digests(hash_with, batch)

    def digest_all(
        keep: Callable[[str], bool], expected: int, then: Callable[[], None] | None = None
    ) -> None:
        if pool is None or expected < IN_PROCESS_BELOW:
            digests: Iterable[tuple[int, int, int, str | None]] = (
                _digest(*item, hash_with) for item in todo(keep)
            )
        else:
            chunks = _tapered(todo(keep), expected)
            digests = _bounded(pool, _digest_chunk, chunks, _tasks_ahead(pool), hash_with)
        if then is not None:
            digests = _after_first(digests, then)
        done = (d for d in digests if d[3] is not None)  # unreadable or changed: left null
        _write_in_batches(done, write, HASH_BATCH, expected, progress)

    if hashing is None:
        digest_all(lambda rel: True, count)
        return stored
    being_hashed, store_them = hashing
    given: set[str] = set()

    def store_early() -> None:
        nonlocal stored, given
        early, given = store_them()
        stored += early
        if progress and early:
            progress(early)

    digest_all(lambda rel: rel not in being_hashed, max(0, count - len(being_hashed)), store_early)
    missed = being_hashed - given
    if missed:
        digest_all(missed.__contains__, len(missed))
    return stored


def _after_first(items: Iterable[Any], action: Callable[[], None]) -> Iterator[Any]:
    """`items`, with `action()` called once: after the first (at the end when there is none)."""
    it = iter(items)
    for item in it:
        yield item
        break
    action()
    yield from it


def _digest(
    photo_id: int, path: str, size: int, mtime_ns: int, hash_with: str
) -> tuple[int, int, int, str | None]:
    """(photo id, size, mtime, hex digest): None when the file cannot be read or is not the
    size and mtime its row says (it changed after its record was read)."""
    from catalog.extract import open_regular

    try:
        with open_regular(path, follow_symlinks=False, buffered=False) as fh:
            st = os.fstat(fh.fileno())
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                return photo_id, size, mtime_ns, None
            return photo_id, size, mtime_ns, _file_digest(fh, hash_with, size, mtime_ns)
    except OSError:
        return photo_id, size, mtime_ns, None


def _file_digest(fh: IO[bytes], hash_with: str, size: int, mtime_ns: int) -> str | None:
    """The hex digest of an open file's bytes; None when, hashed, the file is no longer `size`
    bytes last modified at `mtime_ns` (written to meanwhile: not the bytes of its record)."""
    digest = hashlib.file_digest(fh, HASHES[hash_with]).hexdigest()
    st = os.fstat(fh.fileno())
    return digest if (st.st_size, st.st_mtime_ns) == (size, mtime_ns) else None


def _digest_chunk(
    items: list[tuple[int, str, int, int]], hash_with: str
) -> list[tuple[int, int, int, str | None]]:
    with collecting_between_batches():
        return [_digest(*item, hash_with) for item in items]


# Verification: catalogued files read again and their digests compared ------------------------
VERIFY_STATUSES = ("ok", "changed", "missing", "unreadable", "not hashed")


@dataclass(slots=True, frozen=True)
class Verified:
    """One catalogued file, read again: `status` is one of VERIFY_STATUSES."""

    path: str
    status: str
    catalogued: str | None  # the digest in the catalog (None: never hashed)
    found: str | None = None  # the digest of the file's bytes now (None: not read)
    error: str | None = None  # why it could not be read


def verify(
    catalog: Catalog,
    folders: Sequence[str] = (),
    hash_with: str = "sha256",
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, Iterator[Verified]]:
    """Read again, whole, every file catalogued on this machine under `folders` (all of them
    when there is none) and compare its `hash_with` digest with the catalog's, in the worker
    processes. Size and modification time are not trusted here: bytes changed in place behind
    an unchanged mtime are found. Returns how many files there are (a folder with none is a
    RootError) and their results, in catalog order, as they come."""
    from catalog import query

    _check_hash(hash_with)
    folders = [os.path.abspath(f) for f in folders]
    total = query.count_catalogued(catalog, folders)
    if folders and not total:
        raise RootError(f"nothing catalogued on this machine under {', '.join(folders)}")
    return total, _verified(catalog, folders, hash_with, workers or os.cpu_count() or 1, progress)


def _verified(
    catalog: Catalog, folders: list[str], hash_with: str, workers: int, progress: Progress | None
) -> Iterator[Verified]:
    from catalog import query

    chunks = _batched(query.catalogued_files(catalog, hash_with, folders), CHUNK)
    pool = worker_pool(workers) if workers > 1 else None
    try:
        if pool is None:
            results: Iterable[Verified] = (
                v for chunk in chunks for v in _verify_chunk(chunk, hash_with)
            )
        else:
            results = _bounded(pool, _verify_chunk, chunks, _tasks_ahead(pool), hash_with)
        for result in results:
            if progress:
                progress(1)
            yield result
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _verify_chunk(items: list[tuple[str, str | None]], hash_with: str) -> list[Verified]:
    with collecting_between_batches():
        return [_verify_one(path, catalogued, hash_with) for path, catalogued in items]


def _verify_one(path: str, catalogued: str | None, hash_with: str) -> Verified:
    if catalogued is None:  # nothing to compare with: not read
        return Verified(path, "not hashed", None)
    from catalog.extract import open_regular

    try:
        with open_regular(path, follow_symlinks=False, buffered=False) as fh:
            found = hashlib.file_digest(fh, HASHES[hash_with]).hexdigest()
    except FileNotFoundError:
        return Verified(path, "missing", catalogued)
    except OSError as exc:
        return Verified(path, "unreadable", catalogued, error=exc.strerror or describe(exc))
    return Verified(path, "ok" if found == catalogued else "changed", catalogued, found)


def _has_entries(folder: str) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(True for _ in it)
    except OSError:
        return False


# Forgetting a folder: its files out of the catalog, the files themselves untouched ----------------
def forget(
    catalog: Catalog, folder: str | os.PathLike[str], host: str | None = None
) -> tuple[int, int]:
    """Take the files catalogued on this machine (or on `host`) under `folder` out of the
    catalog: a folder whose drive is gone for good, which scan and watch keep (an unreachable
    root is never read as 'every photo deleted'), one no longer wanted, or the folders of a
    machine that is gone. The folder need not exist; another machine's is given by its absolute
    path. Returns (photos removed, catalogued folders removed); nothing catalogued there is a
    RootError."""
    path = os.fspath(folder)
    if host is None:
        path = os.path.abspath(path)
    elif not os.path.isabs(path):
        raise RootError(f"{path}: give another machine's folder by its absolute path")
    photos, roots = catalog.forget(os.path.normpath(path), host)
    if not photos and not roots:
        machine = "this machine" if host is None else repr(host)
        raise RootError(f"nothing catalogued on {machine} under {path}")
    return photos, roots


def folder_state(path: str) -> str:
    """How a catalogued folder of this machine looks now: "ok"; "missing" (deleted, moved, or
    its drive not mounted); "empty" (likely an empty mount point: its photos stay catalogued,
    see root_reachable); "unreadable" (no permission)."""
    if not os.path.isdir(path):
        return "missing"
    if not os.access(path, os.R_OK | os.X_OK):
        return "unreadable"
    return "ok" if _has_entries(path) else "empty"


def catalogued_folders(catalog: Catalog) -> list[dict[str, Any]]:
    """The catalog's folders (query.folders), each with its `state` here (folder_state; another
    machine's folder is "elsewhere": this one cannot look at it)."""
    from catalog import query
    from catalog.store import this_host

    host = this_host()
    return [
        {
            "host": row["host"],
            "path": row["path"],
            "state": folder_state(row["path"]) if row["host"] == host else "elsewhere",
            **{k: v for k, v in row.items() if k not in ("host", "path")},
        }
        for row in query.folders(catalog)
    ]


# Incremental changes: what `photocat watch` feeds through the same read/store path as scan --------
@dataclass(slots=True)
class ChangeReport:
    """What `ingest_changes` did with each file it was given (rel_paths)."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (rel, error), also new/updated
    retry: list[str] = field(default_factory=list)  # changed while read: not stored, ask again
    kept: list[str] = field(default_factory=list)  # looked gone, but root or folder unreachable


def in_place(place: Place, rel_path: str) -> bool:
    """Whether scan of `place` would catalogue this root-relative path: below the place's folder,
    no hidden or ignored folder on the way, a photo file name."""
    if not rel_path.startswith(place.prefix):
        return False
    parts = rel_path[len(place.prefix) :].split("/")
    return is_candidate(parts[-1]) and not any(is_ignored_dir(p) for p in parts[:-1])


def root_reachable(root_path: str) -> bool:
    """A root whose rows may be removed: it exists, can be read and is not empty (an empty mount
    point or a missing folder means unmounted or unreachable, never 'every photo was deleted')."""
    return folder_state(root_path) == "ok"


def ingest_changes(
    catalog: Catalog,
    place: Place,
    rel_paths: Iterable[str],
    *,
    force: Collection[str] = (),
    pool: Executor | None = None,
    pool_from: int = IN_PROCESS_BELOW,
    batch_size: int = BATCH_SIZE,
    hash_with: str | None = "sha256",
    hash_up_to: int | None = None,
) -> ChangeReport:
    """Bring the rows of just these files in step with the disk: stat each; read new and changed
    ones (by size and mtime, or every one in `force`) with `read_files`; delete rows of files that
    are gone. Each batch (upserts and deletions together) is one transaction.

    A file whose size or mtime moved while it was read is not stored but returned in `retry`: it
    is still being written, and a half-written read must never be recorded. Nothing is removed
    while the root looks unmounted or a file's folder cannot be read (those go to `kept`).
    `pool_from`: fewer files than this are read in this process (a daemon whose workers are
    already running can use them for smaller batches than scan does). `hash_with`, `hash_up_to`:
    as read_file takes them; a record stored without its digest gets it from `hash_some` (or
    scan's hash stage) afterwards.
    """
    rels = list(dict.fromkeys(rel_paths))
    report = ChangeReport()
    known = catalog.states_of(place.root_id, rels)
    jobs: list[Job] = []
    before: dict[str, tuple[int, int]] = {}
    gone: list[str] = []
    for rel in rels:
        path = os.path.join(place.root_path, *rel.split("/"))
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        except OSError:  # unreadable folder, I/O error: we do not know, so change nothing
            report.kept.append(rel)
            continue
        if st is None or not stat.S_ISREG(st.st_mode) or not in_place(place, rel):
            if rel in known:
                gone.append(rel)
            continue
        old = known.get(rel)
        if (
            old is not None
            and rel not in force
            and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
        ):
            report.unchanged.append(rel)
            continue
        before[rel] = (st.st_size, st.st_mtime_ns)
        jobs.append(Job(path, place.root_id, rel))
    if gone and not root_reachable(place.root_path):
        report.kept.extend(gone)
        gone = []
    pending_gone: dict[int, list[str]] = {place.root_id: gone} if gone else {}
    batch: list[FileEntry] = []
    weighed = 0  # the batch's listings, bytes (BATCH_BYTES)

    def flush() -> None:
        nonlocal pending_gone
        if batch or pending_gone:
            catalog.write_batch(batch, pending_gone)
            report.removed.extend(pending_gone.get(place.root_id, ()))
            batch.clear()
            pending_gone = {}

    if pool is not None and pool_from <= len(jobs) < IN_PROCESS_BELOW:
        size = max(1, len(jobs) // 8)
        entries: Iterable[FileEntry] = _with_time(
            pool.map(read_file, jobs, repeat(hash_with), repeat(hash_up_to), chunksize=size)
        )
    else:
        entries = read_files(jobs, pool, hash_with=hash_with, hash_up_to=hash_up_to)
    for entry in entries:
        rel = entry.rel_path
        try:
            st = os.lstat(os.path.join(place.root_path, *rel.split("/")))
            after: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            after = None
        # Stored only if stat agrees before, during (fstat in read_file) and after the read;
        # size and mtime stay 0 when the file could not be opened at all (recorded as such).
        opened = (entry.size, entry.mtime_ns) != (0, 0)
        during = (entry.size, entry.mtime_ns) if opened else after
        if not (before[rel] == after == during):
            report.retry.append(rel)
            continue
        (report.updated if rel in known else report.new).append(rel)
        if entry.record.error:
            report.failed.append((rel, entry.record.error))
        batch.append(entry)
        weighed += _listing_bytes(entry)
        if len(batch) >= batch_size or weighed >= BATCH_BYTES:
            flush()
            weighed = 0
    flush()
    return report


def hash_some(
    catalog: Catalog,
    place: Place,
    pool: Executor | None,
    *,
    after_id: int = 0,
    limit: int = 64,
    pool_from: int = IN_PROCESS_BELOW,
    hash_with: str = "sha256",
) -> int | None:
    """A bounded slice of the hash stage, for a daemon that must stay responsive: digest up to
    `limit` rows under `place` with no `hash_with` digest and an id above `after_id` (the rules
    of hash_place). Returns the last id looked at, to go on from; None when none was left."""
    rows = catalog.undigested(place.root_id, place.prefix, hash_with, after_id, limit)
    if not rows:
        return None
    base = place.root_path.rstrip(os.sep) + os.sep
    items = [(i, base + rel.replace("/", os.sep), size, mtime) for i, rel, size, mtime in rows]
    if pool is not None and len(items) >= pool_from:
        chunks = _batched(items, max(1, len(items) // 8))
        digests = [d for done in pool.map(_digest_chunk, chunks, repeat(hash_with)) for d in done]
    else:
        digests = [_digest(*item, hash_with) for item in items]
    catalog.set_digests(hash_with, [(i, s, m, d) for i, s, m, d in digests if d is not None])
    return rows[-1][0]
