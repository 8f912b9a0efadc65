"""The one pipeline that `scan` and `watch` feed: files → extract (in worker processes) → store.

Extraction is pure and runs in a process pool; the calling process is the only writer and writes
in batches, one transaction each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

from catalog.extract import extract
from catalog.store import Catalog, CatalogError, FileEntry, StoredState, this_host

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
BATCH_SIZE = 500
IN_PROCESS_BELOW = 64  # fewer files than this are not worth starting worker processes

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


def walk(top: str, skipped: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, stat) of every candidate file below `top`; symlinks are not followed.

    Folders that cannot be listed are appended to `skipped`, so nothing under them is removed.
    """
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            skipped.append(f"{folder}: {exc.strerror or exc}")
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not is_ignored_dir(entry.name):
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and is_candidate(entry.name):
                    yield entry.path, entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(f"{entry.path}: {exc.strerror or exc}")


def read_file(job: Job) -> FileEntry:
    """Extract and hash one file (runs in a worker process). Never raises."""
    record = extract(job.path)
    size = mtime_ns = 0
    digest = None
    try:
        with open(job.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            size, mtime_ns = st.st_size, st.st_mtime_ns
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        if record.error is None:
            record.error = f"cannot read file: {exc.strerror or exc}"
    return FileEntry(job.root_id, job.rel_path, size, mtime_ns, record, digest)


def read_files(jobs: list[Job], pool: Executor | None = None) -> Iterator[FileEntry]:
    if pool is None or len(jobs) < IN_PROCESS_BELOW:
        yield from map(read_file, jobs)
    else:
        yield from pool.map(read_file, jobs, chunksize=16)


def store_entries(
    catalog: Catalog,
    entries: Iterable[FileEntry],
    known: dict[str, StoredState],
    summary: ScanSummary,
    progress: Progress | None = None,
) -> None:
    """Write entries in batches, counting new/updated/failed."""
    batch: list[FileEntry] = []
    for entry in entries:
        batch.append(entry)
        if entry.rel_path in known:
            summary.updated += 1
        else:
            summary.new += 1
        if entry.record.error:
            summary.failed += 1
        if len(batch) >= BATCH_SIZE:
            catalog.upsert(batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        catalog.upsert(batch)
        if progress:
            progress(len(batch))


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
    for root_id, root_path in catalog.roots(host=this_host()):
        if path == root_path or path.startswith(root_path.rstrip(os.sep) + os.sep):
            rel = os.path.relpath(path, root_path)
            return Place(root_id, root_path, "" if rel == "." else rel.replace(os.sep, "/") + "/")
    root_id = catalog.root_id(path)
    assert root_id is not None
    catalog.adopt_subroots(root_id, path)
    return Place(root_id, path, "")


def check_folder(path: str) -> None:
    if not os.path.exists(path):
        raise RootError(f"{path} does not exist")
    if not os.path.isdir(path):
        raise RootError(f"{path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise RootError(f"{path} cannot be read (permission denied)")


def scan(
    catalog: Catalog,
    folders: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    allow_empty: bool = False,
) -> ScanSummary:
    """Bring the catalog in step with the folders: add new files, re-read changed ones (by size
    and mtime), remove rows of files that are gone. Unchanged files are not opened."""
    places = [resolve_place(catalog, f) for f in folders]
    summary = ScanSummary()
    workers = workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for place in places:
            summary.add(_scan_place(catalog, place, pool, progress, on_total, allow_empty))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return summary


def _scan_place(
    catalog: Catalog,
    place: Place,
    pool: Executor | None,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
    allow_empty: bool,
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
    jobs: list[Job] = []
    seen: set[str] = set()
    root_len = len(place.root_path.rstrip(os.sep)) + 1
    for path, st in walk(top, summary.skipped):
        rel = path[root_len:].replace(os.sep, "/")
        seen.add(rel)
        old = known.get(rel)
        if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            summary.unchanged += 1
            continue
        jobs.append(Job(path, place.root_id, rel))
    if on_total:
        on_total(len(jobs))
    store_entries(catalog, read_files(jobs, pool), known, summary, progress)
    # Gone: known, not seen, and not below a folder the walk could not enter.
    blind = [s.split(": ", 1)[0][root_len:].replace(os.sep, "/") for s in summary.skipped]
    gone = [r for r in known if r not in seen and not any(r.startswith(b + "/") for b in blind)]
    if gone:
        summary.removed = catalog.remove(place.root_id, gone)
    catalog.mark_scanned(place.root_id)
    return summary


def _has_entries(folder: str) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(True for _ in it)
    except OSError:
        return False
