"""photocat watch: keep the catalog true while photos arrive, change, move and disappear.

    watchdog observers (one per folder: inotify, or polling)
        → a thread-safe queue
        → ONE writer loop (the thread that calls `Watcher.run`): coalesces events per file,
          waits until each file is complete, then feeds `ingest.ingest_changes` (the read/store
          path `scan` uses) in batches, one transaction each.

A file is read only once it is complete: its size and mtime have been stable for `settle` seconds
and, where the platform reports close-write (inotify), the writer has closed it. A read during
which the file changed is thrown away and retried. Moves and renames update rows in place
(`Catalog.move`, `Catalog.move_folder`): same photo id, nothing re-read when size+mtime agree.

Deletion policy: a row goes only when its file is gone AND its root exists and is not empty; an
unmounted or unreachable root keeps its rows (a warning is logged) until it comes back.

Anything an event stream can miss (inotify queue overflow, watch limit, network filesystems,
changes while not running, crashes) is repaired by the same reconcile as `photocat scan`: at start,
every `reconcile` seconds, after an inotify overflow and whenever a root reappears.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from catalog import ingest
from catalog.ingest import Place, RootError, is_ignored_dir
from catalog.render import inert
from catalog.store import Catalog

log = logging.getLogger("photocat.watch")

SETTLE = 0.3  # s of stable size+mtime (after close-write where known) before a file is read
SETTLE_NO_CLOSE = 2.0  # floor where no close-write exists (polling, macOS, Windows)
OPEN_TIMEOUT = 30.0  # written (or created empty) and never closed: read after this long quiet
RECONCILE = 3600.0  # periodic stat-only rescan; README "Nothing missed" says why hourly
FALLBACK_POLL = 5.0  # polling interval of a root inotify cannot watch (watch limit)
HEALTH_EVERY = 5.0  # how often roots are checked for vanishing, remounts and dead observers
RECONCILE_DEFER = 60.0  # a reconcile waits at most this long for files being written
CHUNK = 64  # files read per step: events keep flowing in a burst, early files show early
COMMIT_EVERY = 64  # files per transaction at most
POOL_FROM = 8  # fewer files than this are read in the writer itself (no round trip)
HASH_STEP = 32  # digests computed per step once records are in: the loop stays responsive
TICK = 0.25  # longest sleep on the queue when nothing is due
DRAIN_FOR = 0.05  # longest time spent taking events before due files are written
RETRY_AFTER_ERROR = 5.0

# What the writer needs. Leaving out open/close-nowrite keeps our own reads from making events.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]
INOTIFY_LIMITS = (errno.ENOSPC, errno.EMFILE)


class _Stopping(Exception):
    """Raised from a scan's progress callback to abandon a reconcile when asked to stop."""


@dataclass(slots=True)
class _Root:
    """One watched folder: a catalog place and the observer that follows it."""

    index: int
    place: Place
    top: str  # the watched folder: root_path + prefix
    settle: float = SETTLE
    close_events: bool = False  # the observer reports close-write
    polling: float | None = None  # polling interval when polled
    observer: BaseObserver | None = None
    ident: tuple[int, int] | None = None  # (st_dev, st_ino) of top when the observer started
    lost: bool = False  # top was unreachable at the last health check
    hash_after: int | None = None  # digests to fill in from this photo id on; None: all done

    def rel(self, path: str | bytes) -> str | None:
        """Root-relative '/'-separated path of an event path below top (None if elsewhere)."""
        p = os.fsdecode(path)
        if not p.startswith(self.top + os.sep):
            return None
        return p[len(self.place.root_path.rstrip(os.sep)) + 1 :].replace(os.sep, "/")

    def show(self, rel: str) -> str:
        return inert(os.path.join(self.place.root_path, *rel.split("/")))


@dataclass(slots=True)
class _Pending:
    """A file something happened to, waiting to be complete before it is read."""

    since: float  # monotonic time of the last event
    due: float  # not read before this
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last look; None: missing
    writing: bool = False  # written and not closed yet (close-write platforms only)
    force: bool = False  # content was written: re-read even if size and mtime look unchanged


class _Forward(FileSystemEventHandler):
    """Runs in observer threads: hands every event to the writer, nothing else."""

    def __init__(self, sink: queue.SimpleQueue[Any], index: int) -> None:
        self._sink = sink
        self._index = index

    def dispatch(self, event: FileSystemEvent) -> None:
        self._sink.put((self._index, event))


class _OverflowHook(logging.Handler):
    """watchdog reports a kernel inotify queue overflow only as a log warning: turn it into a
    reconcile, since events were lost."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in str(record.msg).lower():
            self._on_overflow()


class Watcher:
    """Follows folders and keeps the catalog in step with them. `run()` blocks until `stop()`
    (or SIGINT/SIGTERM when run in the main thread); the calling thread is the only writer."""

    def __init__(
        self,
        catalog: Catalog,
        folders: Iterable[str | os.PathLike[str]],
        *,
        poll: float | None = None,
        reconcile: float | None = RECONCILE,
        settle: float = SETTLE,
        workers: int | None = None,
    ) -> None:
        self.catalog = catalog
        self.poll = poll
        self.reconcile_every = reconcile or None
        self.settle = settle
        self.workers = workers or os.cpu_count() or 1
        self.roots = [
            _Root(i, place, _top(place))
            for i, place in enumerate(ingest.resolve_places(catalog, folders))
        ]
        self._queue: queue.SimpleQueue[tuple[int, FileSystemEvent] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending: dict[tuple[int, str], _Pending] = {}
        self._touched: set[tuple[int, str]] = set()
        self._reconcile_wanted: dict[int, str] = {}  # root index → why
        self._reconcile_since: float | None = None
        self._next_reconcile = float("inf")
        self._next_health = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._overflowed = False
        self.ready = threading.Event()  # set once caught up and following events

    # control -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish its current batch and return. Safe from any thread/signal."""
        self._stop.set()
        self._queue.put(None)

    def run(self) -> None:
        previous = self._install_signals()
        hook = _OverflowHook(self._on_overflow)
        inotify_log = logging.getLogger("watchdog.observers.inotify_c")
        inotify_log.addHandler(hook)
        if inotify_log.getEffectiveLevel() > logging.WARNING:
            inotify_log.setLevel(logging.WARNING)
        try:
            self._start()
            while not self._stop.is_set():
                self._step()
        finally:
            inotify_log.removeHandler(hook)
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop()  # only set flags here: the loop logs and finishes its batch

    def _on_overflow(self) -> None:
        self._overflowed = True  # runs in a watchdog thread: only a flag, the loop acts on it
        self._queue.put(None)

    # start and stop --------------------------------------------------------------------------
    def _start(self) -> None:
        _warm_up()
        # Catch up first, with all cores and before any observer thread exists (scan forks).
        self._reconcile(self.roots, "start", workers=self.workers)
        for r in self.roots:
            if self._stop.is_set():
                return
            self._watch(r)
        # Close the gap between that scan and the observers: cheap, stat-only unless changed.
        self._reconcile(self.roots, "catch-up", workers=1)
        if self.workers > 1 and not self._stop.is_set():
            self._pool = _make_pool(self.workers)
        now = time.monotonic()
        self._next_health = now + HEALTH_EVERY
        if self.reconcile_every:
            self._next_reconcile = now + self.reconcile_every
        log.info("ready: watching %d folder(s)", len(self.roots))
        self.ready.set()

    def _shutdown(self) -> None:
        if self._stop.is_set():
            log.info("stopping")
        for r in self.roots:
            self._unwatch(r)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._pending:
            log.info(
                "%d file(s) were still settling; the next start picks them up", len(self._pending)
            )
        log.info("stopped")

    def _watch(self, r: _Root) -> None:
        """Start following a root: inotify (or the platform's native API), else polling."""
        try:
            st = os.stat(r.top)
            r.ident = (st.st_dev, st.st_ino)
        except OSError as exc:
            r.lost, r.ident = True, None
            log.warning("%s is unreachable (%s); watching it when it is back", inert(r.top), exc)
            return
        r.lost = False
        if self.poll is None:
            try:
                observer, close_events = _native_observer()
                self._start_observer(r, observer)
                if close_events and not _inotify_has_room(r.top):
                    raise OSError(errno.ENOSPC, "inotify watch limit reached")
                r.close_events, r.polling, r.settle = close_events, None, self.settle
                log.info("watching %s", inert(r.top))
                return
            except OSError as exc:
                self._unwatch(r)
                if exc.errno in INOTIFY_LIMITS:
                    log.error(
                        "cannot watch every folder of %s: %s. Raise the limit, e.g. "
                        "`sudo sysctl fs.inotify.max_user_watches=524288` (and "
                        "fs.inotify.max_user_instances); polling it every %g s meanwhile",
                        inert(r.top), exc.strerror or exc, FALLBACK_POLL,
                    )  # fmt: skip
                else:
                    log.error("cannot watch %s (%s); polling it instead", inert(r.top), exc)
                self._reconcile_wanted[r.index] = "fallback"  # subfolders may have been missed
        interval = self.poll if self.poll is not None else FALLBACK_POLL
        self._start_observer(r, PollingObserver(timeout=interval))
        r.close_events, r.polling = False, interval
        r.settle = max(self.settle, SETTLE_NO_CLOSE)
        log.info("watching %s (polling every %g s)", inert(r.top), interval)

    def _start_observer(self, r: _Root, observer: BaseObserver) -> None:
        r.observer = observer
        observer.schedule(
            _Forward(self._queue, r.index), r.top, recursive=True, event_filter=EVENTS
        )
        observer.start()

    def _unwatch(self, r: _Root) -> None:
        if r.observer is None:
            return
        try:
            r.observer.stop()
            if r.observer.is_alive():
                r.observer.join(timeout=5)
        except Exception:  # an observer that failed to start may not stop cleanly
            log.debug("stopping the observer of %s failed", inert(r.top), exc_info=True)
        r.observer = None

    # the writer loop --------------------------------------------------------------------------
    def _step(self) -> None:
        self._drain(self._wait_time())
        if self._stop.is_set():
            return
        try:
            self._process_ready()
            self._hash_step()
            now = time.monotonic()
            if self._overflowed:
                self._overflowed = False
                for r in self.roots:
                    if r.close_events:
                        self._reconcile_wanted[r.index] = "overflow"
            if now >= self._next_health:
                self._next_health = now + HEALTH_EVERY
                self._check_roots()
            if now >= self._next_reconcile:
                self._next_reconcile = now + (self.reconcile_every or float("inf"))
                for r in self.roots:
                    self._reconcile_wanted.setdefault(r.index, "periodic")
            if self._reconcile_wanted and self._may_reconcile(now):
                wanted = dict(self._reconcile_wanted)
                self._reconcile_wanted.clear()
                for index, why in wanted.items():
                    self._reconcile([self.roots[index]], why, workers=1)
        except _Stopping:
            pass
        except Exception as exc:  # e.g. the database server went away: keep the work, retry
            log.exception("the writer hit an error; trying again in %g s", RETRY_AFTER_ERROR)
            self._renew_pool_if_broken(exc)
            self._stop.wait(RETRY_AFTER_ERROR)

    def _renew_pool_if_broken(self, exc: BaseException) -> None:
        """A reader process that died (a crash in a decoder) breaks the whole pool."""
        if isinstance(exc, BrokenProcessPool) and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = _make_pool(self.workers)

    def _wait_time(self) -> float:
        if any(r.hash_after is not None for r in self.roots):
            return 0.0  # digests to compute: do not sleep
        if not self._pending:
            return TICK
        now = time.monotonic()
        soonest = min(_ready_at(p) for p in self._pending.values())
        return max(0.0, min(TICK, soonest - now))

    def _drain(self, timeout: float) -> None:
        """Take every queued event (waiting up to `timeout` for the first) and apply it."""
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return
        deadline = time.monotonic() + DRAIN_FOR  # a flood must not hold back due writes
        while True:
            if item is not None:
                try:
                    self._apply(*item)
                except Exception:
                    log.exception("could not handle %s; reconciling", _describe(item[1]))
                    self._reconcile_wanted[item[0]] = "error"
            if time.monotonic() > deadline:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        for key in self._touched:
            p = self._pending.get(key)
            if p is not None:
                p.stat = _stat(self.roots[key[0]], key[1])
        self._touched.clear()

    def _apply(self, index: int, event: FileSystemEvent) -> None:
        """Turn one event into pending work (files) or an immediate in-place row move."""
        r = self.roots[index]
        log.debug("event %s", _describe(event))
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            if event.is_synthetic:
                return  # a file inside a moved folder: move_folder already did it
            src = r.rel(event.src_path) if event.src_path else None
            dest = r.rel(event.dest_path) if event.dest_path else None
            if event.is_directory:
                self._folder_moved(r, src, dest)
            else:
                self._file_moved(r, src, dest)
            return
        if event.is_directory:
            rel = r.rel(event.src_path)
            if rel is None:
                if os.fsdecode(event.src_path) == r.top:
                    self._next_health = 0.0  # the root itself went: see to it now
                return
            if isinstance(event, DirDeletedEvent) and self._dir_ok(r, rel):
                self._check_folder(r, rel + "/")
            elif isinstance(event, DirCreatedEvent) and self._dir_ok(r, rel):
                self._check_folder(r, rel + "/", rows=False)  # new: nothing catalogued below
            return
        rel = r.rel(event.src_path)
        if rel is None or not ingest.in_place(r.place, rel):
            return
        if isinstance(event, FileCreatedEvent):
            # Not "writing": watchdog also reports files it finds in a new folder as created,
            # and those may be complete with no close-write to come. Writes (IN_MODIFY) say it.
            self._touch(r, rel, force=True)
        elif isinstance(event, FileModifiedEvent):
            self._touch(r, rel, force=True, writing=True)
        elif isinstance(event, FileClosedEvent):
            self._touch(r, rel, force=True, writing=False)
        elif isinstance(event, FileDeletedEvent):
            self._touch(r, rel, writing=False)
        else:  # attrib: look again, re-read only if size or mtime say so
            self._touch(r, rel)

    def _touch(
        self, r: _Root, rel: str, *, force: bool = False, writing: bool | None = None
    ) -> None:
        now = time.monotonic()
        key = (r.index, rel)
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending(since=now, due=now + r.settle)
        p.since, p.due = now, now + r.settle
        p.force = p.force or force
        if writing is not None and r.close_events:
            p.writing = writing
        self._touched.add(key)

    def _file_moved(self, r: _Root, src: str | None, dest: str | None) -> None:
        src_ok = src is not None and ingest.in_place(r.place, src)
        dest_ok = dest is not None and ingest.in_place(r.place, dest)
        if src_ok and dest_ok:
            assert src is not None and dest is not None
            moved = self.catalog.move(r.place.root_id, src, dest)
            if moved:
                log.info("moved %s → %s", r.show(src), r.show(dest))
                r.hash_after = 0  # its digest may have failed at the old name: look again
            carried = self._pending.pop((r.index, src), None)
            self._touched.discard((r.index, src))
            if carried is not None:
                self._pending[(r.index, dest)] = carried
            # Not forced: unchanged size+mtime means the moved row is already right.
            self._touch(r, dest, force=not moved and carried is None)
        elif src_ok:
            assert src is not None
            self._touch(r, src, writing=False)  # moved away or to an ignored name: gone here
        elif dest_ok:
            assert dest is not None
            self._touch(r, dest, force=True)  # moved in from outside, or `.part` → `.jpg`

    def _folder_moved(self, r: _Root, src: str | None, dest: str | None) -> None:
        src_ok = src is not None and self._dir_ok(r, src)
        dest_ok = dest is not None and self._dir_ok(r, dest)
        if src_ok and dest_ok:
            assert src is not None and dest is not None
            old, new = src + "/", dest + "/"
            n = self.catalog.move_folder(r.place.root_id, old, new)
            log.info("moved folder %s → %s (%d photo(s))", r.show(src), r.show(dest), n)
            if n:
                r.hash_after = 0  # digests that failed at the old names: look again
            for key in [k for k in self._pending if k[0] == r.index and k[1].startswith(old)]:
                self._pending[(r.index, new + key[1][len(old) :])] = self._pending.pop(key)
                self._touched.discard(key)
            self._check_folder(r, new)
        elif src_ok:
            assert src is not None
            self._check_folder(r, src + "/")
        elif dest_ok:
            assert dest is not None
            self._check_folder(r, dest + "/")

    def _dir_ok(self, r: _Root, rel: str) -> bool:
        """A folder whose files scan would catalogue (below top, no hidden/ignored part)."""
        if not rel.startswith(r.place.prefix):
            return False
        return not any(is_ignored_dir(p) for p in rel[len(r.place.prefix) :].split("/"))

    def _check_folder(self, r: _Root, prefix: str, *, rows: bool = True) -> None:
        """Look again at everything now in a folder and (`rows`) everything catalogued there."""
        for rel in self.catalog.states_under(r.place.root_id, prefix) if rows else ():
            self._touch(r, rel)
        top = os.path.join(r.place.root_path, *prefix.rstrip("/").split("/"))
        cut = len(r.place.root_path.rstrip(os.sep)) + 1
        for path, _st in ingest.walk(top, []):
            rel = path[cut:].replace(os.sep, "/")
            if ingest.in_place(r.place, rel):
                self._touch(r, rel)

    def _hash_step(self) -> None:
        """One slice of digests (scan's hash stage, bounded), only while no file is due."""
        now = time.monotonic()
        if any(now >= _ready_at(p) for p in self._pending.values()):
            return
        for r in self.roots:
            if r.hash_after is not None:
                r.hash_after = ingest.hash_some(
                    self.catalog, r.place, self._pool, after_id=r.hash_after, limit=HASH_STEP,
                    pool_from=POOL_FROM,
                )  # fmt: skip
                return

    def _process_ready(self) -> None:
        now = time.monotonic()
        ready: dict[int, list[str]] = {}
        count = 0
        for key, p in sorted(self._pending.items(), key=lambda kv: kv[1].due):
            if count >= CHUNK:
                break
            if now < _ready_at(p):
                continue
            current = _stat(self.roots[key[0]], key[1])
            if current != p.stat:  # still changing: wait for another quiet period
                p.stat, p.due = current, now + self.roots[key[0]].settle
                continue
            if current is not None and current[0] == 0 and now - p.since < OPEN_TIMEOUT:
                p.due = p.since + OPEN_TIMEOUT  # created, not written yet: wait for data
                continue
            ready.setdefault(key[0], []).append(key[1])
            count += 1
        for index, rels in ready.items():
            if self._stop.is_set():
                return
            self._ingest(self.roots[index], rels)

    def _ingest(self, r: _Root, rels: list[str]) -> None:
        taken = {rel: self._pending.pop((r.index, rel)) for rel in rels}
        force = {rel for rel, p in taken.items() if p.force}
        try:
            # Records first, searchable at once; digests follow in _hash_step. Unlike scan, not
            # even a small file is hashed as it is read: under a burst of new photos that made
            # each one wait longer to be searchable (watch_latency p50 +0.13 s).
            report = ingest.ingest_changes(
                self.catalog, r.place, rels, force=force, pool=self._pool, pool_from=POOL_FROM,
                batch_size=COMMIT_EVERY, hash_with=None,
            )  # fmt: skip
        except Exception as exc:
            log.exception("could not record %d file(s) under %s; retrying", len(rels), r.show(""))
            later = time.monotonic() + RETRY_AFTER_ERROR
            for rel, p in taken.items():
                p.due = later
                self._pending.setdefault((r.index, rel), p)
            self._renew_pool_if_broken(exc)
            return
        if report.new or report.updated:
            r.hash_after = 0  # updated rows keep their (lower) ids: look from the start
        failed = dict(report.failed)
        for rel in report.new:
            if rel not in failed:
                log.info("ingested %s", r.show(rel))
        for rel in report.updated:
            if rel not in failed:
                log.info("updated %s", r.show(rel))
        for rel, error in report.failed:
            log.warning("failed %s: %s", r.show(rel), inert(error))
        for rel in report.removed:
            log.info("removed %s", r.show(rel))
        for rel in report.unchanged:
            log.debug("unchanged %s", r.show(rel))
        if report.kept:
            log.warning(
                "not removing %d photo(s) under %s: the root or their folder is unreachable",
                len(report.kept), r.show(""),
            )  # fmt: skip
        for rel in report.retry:
            log.debug("changed while read, retrying %s", r.show(rel))
            self._touch(r, rel, force=taken[rel].force)
            self._pending[(r.index, rel)].stat = _stat(r, rel)
            self._touched.discard((r.index, rel))

    # roots, reconcile -----------------------------------------------------------------------
    def _check_roots(self) -> None:
        """Notice a root that vanished (unmount, deleted) or came back or changed (remount), and
        an observer that died; watch again and reconcile when it is back."""
        live = {root_id for root_id, _ in self.catalog.roots()}
        for r in self.roots:
            if r.place.root_id not in live:
                self._replace_place(r)
            try:
                st = os.stat(r.top)
                ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                ident = None
            if ident is None:
                if not r.lost:
                    log.warning(
                        "%s is unreachable; its photos stay in the catalog until it is back",
                        inert(r.top),
                    )
                    r.lost = True
                continue
            alive = r.observer is not None and r.observer.is_alive() and bool(r.observer.emitters)
            alive = alive and all(e.is_alive() for e in r.observer.emitters)  # type: ignore[union-attr]
            if r.lost or ident != r.ident or not alive:
                log.warning("%s is back or was replaced; watching it again", inert(r.top))
                self._unwatch(r)
                self._watch(r)
                self._reconcile_wanted[r.index] = "comeback"

    def _replace_place(self, r: _Root) -> None:
        """This root's row went: another process folded it into a parent root (scan of a parent
        folder), or took it out of the catalog (photocat forget). Take the new place (the
        parent's, or a new root: a watched folder is catalogued); what was pending is re-found
        by a reconcile."""
        try:
            r.place = ingest.resolve_place(self.catalog, r.top)
        except RootError:
            return  # gone: the health check reports it
        for key in [k for k in self._pending if k[0] == r.index]:
            del self._pending[key]
        if r.place.prefix:
            self._reconcile_wanted[r.index] = "root moved"
            log.info("%s now belongs to the catalogued folder %s", inert(r.top), r.show(""))
        else:
            self._reconcile_wanted[r.index] = "forgotten"
            log.warning(
                "%s was taken out of the catalog (photocat forget) while watched: cataloguing"
                " it again; stop its watch to forget it", inert(r.top),
            )  # fmt: skip

    def _may_reconcile(self, now: float) -> bool:
        """Not while files are settling (scan would read them half-written), within reason."""
        if not self._pending:
            self._reconcile_since = None
            return True
        if self._reconcile_since is None:
            self._reconcile_since = now
        return now - self._reconcile_since > RECONCILE_DEFER

    def _reconcile(self, roots: Sequence[_Root], why: str, *, workers: int) -> None:
        """`photocat scan` of each root: add what is new, re-read what changed, drop what is gone
        (refused, with a warning, when the root looks unmounted)."""

        def progress(_n: int) -> None:
            if self._stop.is_set():
                raise _Stopping

        for r in roots:
            if self._stop.is_set():
                return
            try:
                s = ingest.scan(self.catalog, [r.top], workers=workers, progress=progress)
            except _Stopping:
                return
            except RootError as exc:
                log.warning("%s reconcile of %s skipped: %s", why, inert(r.top), inert(exc))
                continue
            busy = s.new or s.updated or s.removed or why == "start"
            log.log(
                logging.INFO if busy else logging.DEBUG,
                "%s reconcile of %s: new %d, updated %d, unchanged %d, removed %d, failed %d",
                why, inert(r.top), s.new, s.updated, s.unchanged, s.removed, s.failed,
            )  # fmt: skip
            for place in s.skipped:
                log.warning("skipped %s", inert(place))


# helpers ----------------------------------------------------------------------------------------
def _top(place: Place) -> str:
    if not place.prefix:
        return place.root_path.rstrip(os.sep) or os.sep
    return os.path.join(place.root_path, *place.prefix.rstrip("/").split("/"))


def _describe(event: FileSystemEvent) -> str:
    dest = f" → {os.fsdecode(event.dest_path)}" if event.dest_path else ""
    what = "folder " if event.is_directory else ""
    return inert(f"{event.event_type} {what}{os.fsdecode(event.src_path)}{dest}")


def _ready_at(p: _Pending) -> float:
    return max(p.due, p.since + OPEN_TIMEOUT) if p.writing else p.due


def _stat(r: _Root, rel: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(os.path.join(r.place.root_path, *rel.split("/")))
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _native_observer() -> tuple[BaseObserver, bool]:
    """The platform's event observer, and whether it reports close-write (inotify does)."""
    if sys.platform.startswith("linux"):
        try:
            from watchdog.observers.inotify import InotifyObserver
        except Exception:  # no usable libc inotify: watchdog's own choice below
            return Observer(), False
        # full events: a move from/to outside the tree arrives as a move with one side empty
        return InotifyObserver(generate_full_events=True), True
    return Observer(), False


def _inotify_has_room(path: str) -> bool:
    """watchdog only raises when the top folder cannot be watched and silently skips subfolders
    beyond fs.inotify.max_user_watches: probe with one more watch to tell."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_CLOEXEC)
    except (OSError, AttributeError):
        return True
    if fd < 0:
        return ctypes.get_errno() not in INOTIFY_LIMITS
    try:
        wd = libc.inotify_add_watch(fd, os.fsencode(path), 0x00000004)  # IN_ATTRIB
        return wd >= 0 or ctypes.get_errno() != errno.ENOSPC
    finally:
        os.close(fd)


def _warm_up() -> None:
    """Load now what the first photo would otherwise wait for: the offline geocoder the store
    loads on the first batch with a GPS position (seconds on a busy machine)."""
    try:
        from catalog import places

        places.lookup([(48.8584, 2.2945)])
    except Exception:  # optional: the first batch with a position pays for it then
        log.debug("geocoder warm-up failed", exc_info=True)


def _make_pool(workers: int) -> ProcessPoolExecutor:
    """Reader processes, started like scan's (a clean forkserver: no fork of this threaded
    process with its database connections; spawn where there is none), and running before
    this returns, so the first burst does not wait for them to start."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        ctx.set_forkserver_preload(["catalog.extract"])
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
    )
    started = [pool.submit(ingest.is_candidate, "warm-up.jpg") for _ in range(workers)]
    wait(started, timeout=120)
    return pool


def _worker_init(writer: int) -> None:
    """Workers leave signals to the writer (which finishes its batch, then shuts them down) and
    exit by themselves within a second if the writer is killed. The writer is watched by pid:
    a forkserver's worker is not the writer's child, and the forkserver outlives a killed
    writer for as long as its workers live (they hold its liveness pipe), so neither the parent
    pid nor PR_SET_PDEATHSIG would ever fire."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def orphaned() -> None:
        while _alive(writer):
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists
        return True
    try:  # a killed writer not yet reaped by its parent is a zombie: dead all the same
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class InertFormatter(logging.Formatter):
    """Log lines carry file names and EXIF text: control characters (escapes, newlines that
    would forge log lines) are shown escaped instead of being sent to the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.msg, record.args
        record.msg, record.args = inert(record.getMessage()), None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = saved

    def formatException(self, ei: Any) -> str:
        return "\n".join(inert(line) for line in super().formatException(ei).splitlines())


# watchdog warns when its recursive walk watches a new folder twice in a race: the folder's
# callback is replaced, not doubled (harmless), but the warning would name each such folder on
# stderr. The daemon hides it (daemon_logging); so do the tests that run a Watcher.
REWATCH_WARNING = "Callback with id"


@contextmanager
def daemon_logging(verbosity: int = 0, stream: Any = None) -> Iterator[None]:
    """stderr logging for the daemon: -1 quiet (warnings), 0 each file, 1 events, 2 watchdog.
    Undone on exit, so a stream closed after the daemon (a test runner's) is never written to."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger("photocat"), logging.getLogger("watchdog")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    levels = (level, logging.DEBUG if verbosity >= 2 else logging.WARNING)
    for lg, lv in zip(loggers, levels, strict=True):
        lg.handlers[:] = [handler]
        lg.setLevel(lv)
        lg.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", REWATCH_WARNING, RuntimeWarning, "watchdog")
            yield
    finally:
        for lg, (handlers, lv, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:] = handlers
            lg.setLevel(lv)
            lg.propagate = propagate
