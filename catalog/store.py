"""Open a catalog from a URL, migrate it, and write to it in batches.

The only module that writes. Every write is one transaction; on SQLite a write transaction begins
IMMEDIATE so that two writers queue on the busy timeout instead of failing with "database is locked"
when one of them upgrades a read lock.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from catalog import __version__, places
from catalog import tables as t
from catalog.distance import sql_distance_m
from catalog.errors import CatalogError, describe
from catalog.paths import from_db, relative_to, to_db
from catalog.record import FileEntry, PhotoRecord, tags_json
from catalog.urls import database_url

_T = TypeVar("_T")

BUSY_TIMEOUT_MS = 60_000
READ_BY = f"photocat {__version__}"  # each photo row says which photocat read its file
WRITE = {"photocat_write": True}
ROOTS_LOCK = 7306540  # PostgreSQL advisory lock: see Catalog.writing


@dataclass(slots=True)
class StoredState:
    photo_id: int
    size: int
    mtime_ns: int


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


HOST_LENGTH = t.roots.c.host.type.length  # 255


def this_host() -> str:
    """The machine name roots are recorded under (PHOTOCAT_HOST overrides it)."""
    return os.environ.get("PHOTOCAT_HOST") or socket.gethostname()


def _sqlite_functions(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
    # A search near a position measures distances with this (catalog.query): SQLite's own math
    # functions are an optional part of its build, and this is the very formula Python uses.
    dbapi_conn.create_function("photocat_distance_m", 4, sql_distance_m, deterministic=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_begin below
    _sqlite_functions(dbapi_conn)
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable against crashes of the app
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _sqlite_readonly(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None
    _sqlite_functions(dbapi_conn)


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("photocat_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# How much of a SQLite catalog a query process maps into memory (SQLite's usual build limit):
# pages are then read from the page cache without a read() call each. A month's search on a
# million photos visits ~11,000 pages: 25 -> 20 ms in SQLite. Only for short read-only commands:
# an I/O error on a mapped file (a drive pulled out) kills the process with SIGBUS instead of
# raising, which a writer, above all the watch daemon, must never risk.
MMAP_BYTES = 0x7FFF0000


def _sqlite_for_queries(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")


def _sqlite_for_writing(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # An upsert keeps a statement journal (to undo just that row on a conflict), which SQLite
    # writes to a temporary file once it passes 64 KiB: 117,000 writes for 5,000 new photos,
    # half of what storing them costs (38 -> 18 us a photo row). In memory it is a few pages a
    # row; a writer runs no large sort that would also move to memory.
    dbapi_conn.execute("PRAGMA temp_store = MEMORY")


def make_engine(url: str | URL, *, queries: bool = False) -> Engine:
    """An engine for the catalog at `url`; on SQLite, each connection set up for `queries` (a
    short read-only command: the file mapped into memory, see MMAP_BYTES) or for writing."""
    engine = _make_engine(url)
    if engine.dialect.name == "sqlite":
        setup = _sqlite_for_queries if queries else _sqlite_for_writing
        event.listen(engine, "connect", setup)
    return engine


def _make_engine(url: str | URL) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(u.database) if u.database and u.database != ":memory:" else None
        if path is not None and path.exists() and not os.access(path.parent, os.W_OK):
            # Read-only media: SQLite cannot open a WAL catalog there normally (it needs its
            # -shm file), so open it immutable; reads work, any write fails with "readonly".
            uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
            engine = create_engine(f"sqlite:///{uri}&uri=true")
            event.listen(engine, "connect", _sqlite_readonly)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        if path is not None:  # after create_engine, which fails on a driver it cannot load
            path.parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(u, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Bring the schema to `revision` with Alembic (downgrade with down=True); refuse a catalog
    made by a newer photocat rather than touch it."""
    if revision == "head" and not down:
        if _at_head(engine):  # the usual case, decided without importing Alembic
            return  # (a third of a search's start)
        if _create_at_head(engine):
            return  # a new SQLite catalog: made from the migrations' snapshot
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations()))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()

    def current_heads(conn: Connection) -> set[str]:
        found = set(MigrationContext.configure(conn).get_current_heads())
        for rev in found:
            try:
                script.get_revision(rev)
            except Exception as exc:
                raise CatalogError(
                    f"this catalog was made by a newer photocat (schema revision {rev}); "
                    "upgrade photocat to use it"
                ) from exc
        return found

    with engine.connect() as conn:  # a plain read first: a read-only catalog at head still opens
        if current_heads(conn) == {head} and not down:
            return
    with engine.connect().execution_options(**WRITE) as conn:
        if conn.dialect.name == "postgresql":  # one migrator at a time across machines
            conn.execute(text("SELECT pg_advisory_xact_lock(7306539)"))
        else:
            conn.execute(text("SELECT 1"))  # begins the IMMEDIATE transaction: one migrator
        heads = current_heads(conn)
        if not heads:
            _refuse_foreign(conn)
        if down or heads != {head}:  # another process may have just done it
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
        conn.commit()


def _refuse_foreign(conn: Connection) -> None:
    """A database with no schema revision but tables of its own is another program's (a --db
    typo can name any SQLite file): photocat adds its tables only to an empty database."""
    from sqlalchemy import inspect

    tables = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})  # ours, empty
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise CatalogError(
            f"not a photocat catalog: the database holds other tables ({shown}); photocat "
            "makes its catalog only in a new or empty database"
        )


# What Alembic's migrations make of an empty SQLite database, as SQL (`python -m catalog.store
# snapshot` writes it; tests/test_store.py checks that it is current). Running it instead of the
# migrations makes a new catalog in 0.03 s of CPU instead of 0.2, without loading Alembic
# (12 MiB): every first scan starts with it.
SNAPSHOT = "head.sqlite.sql"


def sqlite_schema(conn: Connection) -> str:
    """A SQLite catalog's schema as the SQL that makes it again: the statements SQLite keeps,
    in the order they were made, and the Alembic revision it is at."""
    rows = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).all()
    (revision,) = conn.exec_driver_sql("SELECT version_num FROM alembic_version").one()
    statements = [row[0] for row in rows]
    statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{revision}')")
    return "".join(f"{statement};\n" for statement in statements)


def _create_at_head(engine: Engine) -> bool:
    """Make a new SQLite catalog's schema from SNAPSHOT, when the database is empty and the
    snapshot is at this photocat's head revision; False otherwise (Alembic then decides)."""
    if engine.dialect.name != "sqlite":
        return False
    try:
        sql = (_migrations() / SNAPSHOT).read_text(encoding="utf-8")
    except OSError:
        return False
    head = _script_head()
    if head is None or not sql.endswith(f"VALUES ('{head}');\n"):
        return False
    with engine.connect().execution_options(**WRITE) as conn:
        conn.exec_driver_sql("SELECT 1")  # begins the IMMEDIATE transaction: one creator
        if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            return False  # not empty (another process made it meanwhile, or anything else)
        for statement in sql.split(";\n")[:-1]:
            conn.exec_driver_sql(statement)
        conn.commit()
    return True


def _migrations() -> Path:
    """The folder of the Alembic scripts (the catalog.migrations package) and the snapshot."""
    import catalog.migrations

    return Path(catalog.migrations.__file__).parent


def _at_head(engine: Engine) -> bool:
    """Whether the catalog's alembic_version is exactly this photocat's head revision. False
    whenever in doubt (no table, several heads, unreadable scripts): Alembic then decides."""
    head = _script_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False
    return {row[0] for row in rows} == {head}


_HEAD: list[str | None] = []


def _script_head() -> str | None:
    """The head revision of catalog/migrations (see _head_of), read once a process."""
    if not _HEAD:
        _HEAD.append(_head_of(_migrations() / "versions"))
    return _HEAD[0]


# A migration script's own constants, as Alembic writes them: `revision: str = "0003"`,
# `down_revision: str | None = "0002"` (or None), at the start of a line.
_NAMED = re.compile(r"^(?:down_)?revision\b.*$", re.MULTILINE)
_CONSTANT = re.compile(
    r"(?P<name>(?:down_)?revision)\s*(?::[^=#]*)?=\s*"
    r"(?:\"(?P<double>[^\"\\]*)\"|'(?P<single>[^'\\]*)'|(?P<none>None))\s*(?:#.*)?"
)


def _head_of(versions: Path) -> str | None:
    """The head revision of the migration scripts in `versions`, read from their `revision`
    and `down_revision` lines without importing them (~0.8 ms of a search's start-up, where
    parsing the scripts with ast took ~7-8). None whenever they are not that simple (such a line
    of another form, or twice in a script; not exactly one head): Alembic then decides."""
    revisions: dict[str, str | None] = {}
    try:
        for script in versions.glob("*.py"):
            found: dict[str, str | None] = {}
            for line in _NAMED.findall(script.read_text(encoding="utf-8")):
                m = _CONSTANT.fullmatch(line.rstrip())
                if m is None or m["name"] in found:
                    return None
                found[m["name"]] = m["double"] if m["double"] is not None else m["single"]
            if "revision" in found:
                if found["revision"] is None:
                    return None
                revisions[found["revision"]] = found.get("down_revision")
            elif found:
                return None  # a down_revision alone
    except (OSError, UnicodeDecodeError):
        return None
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


class Catalog:
    """A migrated catalog database. Reads through `engine`; writes through the methods below."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._devices: dict[tuple[str, str], int] = {}
        self._places: dict[places.Place, int] = {}
        self._root_paths: dict[int, tuple[str, str]] = {}  # root id -> (host, path) seen

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def writing(self, *, folding: bool = False) -> Iterator[Connection]:
        """One write transaction. A database failure (disk full, read-only file, lost server)
        rolls it back and becomes a CatalogError in the database's own words.

        On PostgreSQL it holds ROOTS_LOCK: exclusively when `folding` roots into a parent
        (claim_root), shared otherwise. A write then never starts on a root that a fold deletes
        before it commits: its rows under that root failed the foreign key (two overlapping
        scans, one in ~25 runs), or would have gone with the root. SQLite's BEGIN IMMEDIATE
        already serialises every writer."""
        try:
            with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
                if conn.dialect.name == "postgresql":
                    lock = "pg_advisory_xact_lock" if folding else "pg_advisory_xact_lock_shared"
                    conn.execute(text(f"SELECT {lock}({ROOTS_LOCK})"))
                yield conn
        except DBAPIError as exc:
            if _is_retryable(exc):
                raise
            raise CatalogError(f"cannot write to the catalog: {reason(exc)}") from exc

    # roots -----------------------------------------------------------------------------
    def root_id(self, path: str, host: str | None = None, create: bool = True) -> int | None:
        host = host or this_host()
        # Paths go through catalog.paths wherever they meet SQL (names need not be UTF-8).
        q = select(t.roots.c.id).where(t.roots.c.host == host, t.roots.c.path == to_db(path))
        with self.engine.connect() as conn:
            found = conn.execute(q).scalar()
        if found is None and create:
            with self.writing() as conn:
                _insert_root(conn, host, path)
                found = conn.execute(q).scalar_one()
        if found is not None:
            self._root_paths[found] = (host, path)
        return found

    def roots(self, host: str | None = None) -> list[tuple[int, str]]:
        q = select(t.roots.c.id, t.roots.c.host, t.roots.c.path).order_by(t.roots.c.path)
        if host is not None:
            q = q.where(t.roots.c.host == host)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        self._root_paths.update({r.id: (r.host, from_db(r.path)) for r in rows})
        return [(r.id, from_db(r.path)) for r in rows]

    def _live(self, conn: Connection, root_id: int) -> tuple[int, str]:
        """(root id, prefix) to write under. A root another process folded into a parent root
        (claim_root) while this one still held its id maps to the parent, so a concurrent
        writer neither fails on the vanished root nor duplicates the parent's rows."""
        if conn.execute(select(t.roots.c.id).where(t.roots.c.id == root_id)).first() is not None:
            return root_id, ""
        host, path = self._root_paths.get(root_id, ("", ""))
        for parent_id, parent_path in conn.execute(
            select(t.roots.c.id, t.roots.c.path).where(t.roots.c.host == host)
        ).all():
            rel = relative_to(path, from_db(parent_path))
            if rel:  # strictly inside: the same path would be the same root
                return parent_id, rel + "/"
        raise CatalogError(f"root {path or root_id} is no longer in the catalog")

    def mark_scanned(self, root_id: int) -> None:
        with self.writing() as conn:
            conn.execute(update(t.roots).where(t.roots.c.id == root_id).values(last_scan_at=now()))

    def file_states(self, root_id: int) -> dict[str, StoredState]:
        """What the catalog knows of each file under a root: enough to skip unchanged files."""
        q = select(t.photos.c.rel_path, t.photos.c.id, t.photos.c.size, t.photos.c.mtime_ns).where(
            t.photos.c.root_id == root_id
        )
        with self.engine.connect() as conn:
            return {from_db(r[0]): StoredState(r[1], r[2], r[3]) for r in conn.execute(q)}

    # writes ----------------------------------------------------------------------------
    def _device_ids(self, conn: Connection, entries: Sequence[FileEntry]) -> list[int | None]:
        """The devices row of each entry's make and model, inserted when new; None without
        either."""
        keys = [
            (e.record.make or "", e.record.model or "") if e.record.make or e.record.model else None
            for e in entries
        ]
        new = {k: k for k in keys if k is not None and k not in self._devices}
        _resolve_new(conn, t.devices, ("make", "model"), ("make", "model"), new, self._devices)
        return [None if k is None else self._devices[k] for k in keys]

    def _place_ids(self, conn: Connection, entries: Sequence[FileEntry]) -> list[int | None]:
        """The places row of each entry's GPS position (catalog.places, loaded on the first
        batch that has a position), inserted when new; None without a position or town."""
        positions = [
            (e.record.latitude, e.record.longitude)
            if e.record.latitude is not None and e.record.longitude is not None
            else None
            for e in entries
        ]
        found = places.lookup(positions)
        new = {_place_key(p): p for p in found if p is not None and p not in self._places}
        columns = ("country_code", "country", "region", "city")
        _resolve_new(conn, t.places, columns, ("country_code", "city"), new, self._places)
        return [None if p is None else self._places[p] for p in found]

    def upsert(self, entries: Sequence[FileEntry]) -> None:
        """Insert or replace the given files' rows (photo, GPS, tags) in one transaction."""
        if entries:
            self.write_batch(entries)

    def _upsert(self, conn: Connection, entries: Sequence[FileEntry], stamp: datetime) -> None:
        live = {rid: self._live(conn, rid) for rid in {e.root_id for e in entries}}
        if any(prefix for _, prefix in live.values()):
            entries = [
                replace(e, root_id=live[e.root_id][0], rel_path=live[e.root_id][1] + e.rel_path)
                for e in entries
            ]
        rows = [
            _photo_row(e, device_id, stamp) | {"place_id": place_id}
            for e, device_id, place_id in zip(
                entries,
                self._device_ids(conn, entries),
                self._place_ids(conn, entries),
                strict=True,
            )
        ]
        ins = _insert(conn, t.photos)
        updatable = {
            c: ins.excluded[c] for c in rows[0] if c not in ("root_id", "rel_path", "first_seen")
        }
        stmt = ins.on_conflict_do_update(index_elements=["root_id", "rel_path"], set_=updatable)
        # A plain executemany, ids looked up after: RETURNING ids in parameter order makes
        # SQLAlchemy run one statement per row on SQLite (3x slower for the whole batch).
        _executemany(conn, stmt, rows)
        ids = _photo_ids(conn, rows)
        # A photo's GPS and listing rows are replaced by upserts on its id (a photo read again
        # keeps its id), and deleted only where the photo has no position now: no statement
        # that lists every id of the batch (~2 ms of SQLAlchemy's work a thousand ids).
        gps = [_gps_row(pid, e.record) for pid, e in zip(ids, entries, strict=True)]
        placed = [g for g in gps if g is not None]
        unplaced = [pid for pid, g in zip(ids, gps, strict=True) if g is None]
        for chunk in _chunks(unplaced, 500):
            conn.execute(delete(t.gps_positions).where(t.gps_positions.c.photo_id.in_(chunk)))
        if placed:
            _executemany(conn, _replacing(conn, t.gps_positions), placed)
        tags = [
            {"photo_id": pid, "tags": tags_json(e.record) if e.tags_json is None else e.tags_json}
            for pid, e in zip(ids, entries, strict=True)
        ]
        _executemany(conn, _replacing(conn, t.raw_tags), tags)

    def remove(self, root_id: int, rel_paths: Iterable[str]) -> int:
        """Forget files that are gone. Returns how many rows went."""
        paths = list(rel_paths)
        removed = 0
        with self.writing() as conn:
            live_id, prefix = self._live(conn, root_id)
            for chunk in _chunks([to_db(prefix + p) for p in paths], 500):
                q = delete(t.photos).where(
                    t.photos.c.root_id == live_id, t.photos.c.rel_path.in_(chunk)
                )
                removed += conn.execute(q).rowcount
        return removed

    def claim_root(self, path: str, host: str | None = None) -> tuple[int, str, str]:
        """(root id, root path, prefix) for a folder: the existing root that holds it, or a new
        root that folds in the roots inside it. One write transaction, serialised against other
        claims, so two scans of a folder and its parent at once never make overlapping roots."""
        host = host or this_host()
        with self.writing(folding=True) as conn:  # one claim at a time, no write meanwhile
            rows = conn.execute(
                select(t.roots.c.id, t.roots.c.path).where(t.roots.c.host == host)
            ).all()
            known = sorted((from_db(r.path), r.id) for r in rows)
            for root_path, root_id in known:
                rel = relative_to(path, root_path)
                if rel is not None:
                    self._root_paths[root_id] = (host, root_path)
                    return root_id, root_path, rel + "/" if rel else ""
            _insert_root(conn, host, path)
            q = select(t.roots.c.id).where(t.roots.c.host == host, t.roots.c.path == to_db(path))
            root_id = conn.execute(q).scalar_one()
            self._root_paths[root_id] = (host, path)
            self._adopt(conn, root_id, path, known)
        return root_id, path, ""

    def _adopt(
        self, conn: Connection, root_id: int, path: str, known: list[tuple[str, int]]
    ) -> None:
        """Fold roots that lie inside a new root into it, so no file is catalogued twice."""
        for sub_path, sub_id in known:
            rel = relative_to(sub_path, path)
            if sub_id == root_id or not rel:
                continue
            conn.execute(
                update(t.photos)
                .where(t.photos.c.root_id == sub_id)
                .values(root_id=root_id, rel_path=literal(to_db(rel + "/")) + t.photos.c.rel_path)
            )
            conn.execute(delete(t.roots).where(t.roots.c.id == sub_id))

    def forget(self, path: str, host: str | None = None) -> tuple[int, int]:
        """Take out of the catalog every file catalogued on `host` under the folder `path`
        (absolute), whether or not the folder still exists: a root at or inside `path` goes
        with its files, and inside a root the files below `path` go. The files themselves are
        not touched. One transaction, serialised against claims like a fold (PostgreSQL:
        exclusive ROOTS_LOCK). Returns (photos removed, roots removed)."""
        host = host or this_host()
        photos = roots = 0
        with self.writing(folding=True) as conn:
            rows = conn.execute(
                select(t.roots.c.id, t.roots.c.path).where(t.roots.c.host == host)
            ).all()
            for root_id, stored in rows:
                root_path = from_db(stored)
                if relative_to(root_path, path) is not None:  # the root is at or inside `path`
                    gone = delete(t.photos).where(t.photos.c.root_id == root_id)
                    photos += conn.execute(gone).rowcount
                    conn.execute(delete(t.roots).where(t.roots.c.id == root_id))
                    self._root_paths.pop(root_id, None)
                    roots += 1
                elif rel := relative_to(path, root_path):  # `path` is inside the root
                    gone = delete(t.photos).where(
                        t.photos.c.root_id == root_id, _under(to_db(rel + "/"))
                    )
                    photos += conn.execute(gone).rowcount
        return photos, roots

    # digests (the hash stage of scan, catalog.ingest.hash_place) ----------------------------
    def count_undigested(self, root_id: int, prefix: str, algorithm: str) -> int:
        """How many rows under a root's folder ('' for all) have no `algorithm` digest."""
        with self.engine.connect() as conn:
            where, _ = self._undigested(conn, root_id, prefix, algorithm)
            return int(conn.execute(select(func.count()).where(*where)).scalar_one())

    def undigested(
        self, root_id: int, prefix: str, algorithm: str, after_id: int, limit: int
    ) -> list[tuple[int, str, int, int]]:
        """(id, rel_path, size, mtime_ns) of up to `limit` rows without an `algorithm` digest,
        by id above `after_id` (pages through a large catalog in little memory). Paths are
        relative to `root_id`'s folder even when another scan has since folded that root into
        a parent root."""
        with self.engine.connect() as conn:
            where, base = self._undigested(conn, root_id, prefix, algorithm)
            q = (
                select(t.photos.c.id, t.photos.c.rel_path, t.photos.c.size, t.photos.c.mtime_ns)
                .where(*where, t.photos.c.id > after_id)
                .order_by(t.photos.c.id)
                .limit(limit)
            )
            return [(r[0], from_db(r[1])[len(base) :], r[2], r[3]) for r in conn.execute(q)]

    def _undigested(
        self, conn: Connection, root_id: int, prefix: str, algorithm: str
    ) -> tuple[list[ColumnElement[bool]], str]:
        """The conditions for rows under a root's folder with no `algorithm` digest, and the
        prefix of that root inside its live root (a root folded in meanwhile: its parent's)."""
        live_id, base = self._live(conn, root_id)
        column = _digest_column(algorithm)
        return [
            t.photos.c.root_id == live_id,
            column.is_(None),
            _under(to_db(base + prefix)),
        ], base

    def set_digests(self, algorithm: str, digests: Sequence[tuple[int, int, int, str]]) -> int:
        """Store (photo id, size, mtime_ns, hex digest) in the `algorithm` column, one
        transaction, each only if the row still has that size and mtime (a file re-read since
        keeps its new, null digest). Returns how many rows took one."""
        if not digests:
            return 0
        column = _digest_column(algorithm)
        stmt = (
            update(t.photos)
            .where(
                t.photos.c.id == bindparam("d_id"),
                t.photos.c.size == bindparam("d_size"),
                t.photos.c.mtime_ns == bindparam("d_mtime"),
            )
            .values({column.key: bindparam("d_digest")})
        )
        params = [
            {"d_id": i, "d_size": size, "d_mtime": mtime, "d_digest": digest}
            for i, size, mtime, digest in digests
        ]
        with self.writing() as conn:
            count = _executemany(conn, stmt, params)
        return count if count >= 0 else len(digests)

    # incremental changes (photocat watch) ---------------------------------------------------
    def states_of(self, root_id: int, rel_paths: Iterable[str]) -> dict[str, StoredState]:
        """Stored size/mtime of just these files (file_states reads a whole root)."""
        found: dict[str, StoredState] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks([to_db(p) for p in rel_paths], 500):
                q = select(
                    t.photos.c.rel_path, t.photos.c.id, t.photos.c.size, t.photos.c.mtime_ns
                ).where(t.photos.c.root_id == root_id, t.photos.c.rel_path.in_(chunk))
                found.update(
                    (from_db(r[0]), StoredState(r[1], r[2], r[3])) for r in conn.execute(q)
                )
        return found

    def states_under(self, root_id: int, prefix: str) -> dict[str, StoredState]:
        """Stored state of the files below a folder ('a/b/'; '' for the whole root)."""
        q = select(t.photos.c.rel_path, t.photos.c.id, t.photos.c.size, t.photos.c.mtime_ns).where(
            t.photos.c.root_id == root_id, _under(to_db(prefix))
        )
        with self.engine.connect() as conn:
            return {from_db(r[0]): StoredState(r[1], r[2], r[3]) for r in conn.execute(q)}

    def write_batch(
        self, entries: Sequence[FileEntry], gone: Mapping[int, Collection[str]] | None = None
    ) -> int:
        """Upsert `entries` and delete the `gone` rows ({root_id: rel_paths}) in ONE transaction,
        so a reader sees the whole batch or none of it. Returns how many rows were deleted.
        Same rules as upsert/remove: one lock order, retried on deadlock, folded roots mapped."""
        # One lock order for every writer: two writers upserting overlapping batches then queue
        # on the first shared row instead of deadlocking (PostgreSQL row locks).
        ordered = sorted(entries, key=lambda e: (e.root_id, e.rel_path))
        stamp = now()
        for attempt in range(5):
            try:
                removed = 0
                with self.writing() as conn:
                    if ordered:
                        self._upsert(conn, ordered, stamp)
                    for root_id, paths in sorted((gone or {}).items()):
                        live_id, base = self._live(conn, root_id)
                        for chunk in _chunks(sorted(to_db(base + p) for p in paths), 500):
                            q = delete(t.photos).where(
                                t.photos.c.root_id == live_id, t.photos.c.rel_path.in_(chunk)
                            )
                            removed += conn.execute(q).rowcount
                return removed
            except DBAPIError as exc:
                self._devices.clear()  # ids cached inside a rolled-back transaction may not exist
                self._places.clear()
                if not _is_retryable(exc) or attempt == 4:
                    raise CatalogError(f"cannot write to the catalog: {reason(exc)}") from exc
            except Exception:
                self._devices.clear()
                self._places.clear()
                raise
        raise AssertionError("unreachable")

    def move(self, root_id: int, old_rel: str, new_rel: str) -> bool:
        """Rename a catalogued file in place: same photo id, first_seen and metadata. A row at
        `new_rel` is replaced (the file there was overwritten by the move). One transaction.
        Returns False when no row was at `old_rel` (nothing changed then)."""
        if old_rel == new_rel:
            return False
        with self.writing() as conn:
            root_id, base = self._live(conn, root_id)
            old_rel, new_rel = to_db(base + old_rel), to_db(base + new_rel)
            photo_id = conn.execute(
                select(t.photos.c.id).where(
                    t.photos.c.root_id == root_id, t.photos.c.rel_path == old_rel
                )
            ).scalar()
            if photo_id is None:
                return False
            conn.execute(
                delete(t.photos).where(
                    t.photos.c.root_id == root_id, t.photos.c.rel_path == new_rel
                )
            )
            conn.execute(update(t.photos).where(t.photos.c.id == photo_id).values(rel_path=new_rel))
        return True

    def move_folder(self, root_id: int, old_prefix: str, new_prefix: str) -> int:
        """Rename a folder's files in place ('a/' → 'b/c/'), keeping their ids, in one transaction.
        A row already at a moved row's new name is dropped first (a folder can only be renamed
        onto a missing or empty one, so it is stale); other rows below `new_prefix` stay (some
        watchers report the files' moves before their folder's). Returns how many rows moved."""
        if not old_prefix.endswith("/") or not new_prefix.endswith("/"):
            raise ValueError("folder prefixes end with '/'")
        if old_prefix.startswith(new_prefix) or new_prefix.startswith(old_prefix):
            raise ValueError(f"cannot move {old_prefix!r} to {new_prefix!r}: one holds the other")
        with self.writing() as conn:
            root_id, base = self._live(conn, root_id)
            old_prefix, new_prefix = to_db(base + old_prefix), to_db(base + new_prefix)  # stored
            # substr, not LIKE: LIKE is case-insensitive on SQLite and needs escaping everywhere.
            tail = func.substr(t.photos.c.rel_path, len(old_prefix) + 1, type_=Text)
            src = t.photos.alias()
            moving = select(func.substr(src.c.rel_path, len(old_prefix) + 1, type_=Text)).where(
                src.c.root_id == root_id, _under(old_prefix, src)
            )
            new_tail = func.substr(t.photos.c.rel_path, len(new_prefix) + 1, type_=Text)
            conn.execute(
                delete(t.photos).where(
                    t.photos.c.root_id == root_id, _under(new_prefix), new_tail.in_(moving)
                )
            )
            q = (
                update(t.photos)
                .where(t.photos.c.root_id == root_id, _under(old_prefix))
                .values(rel_path=literal(new_prefix, Text) + tail)
            )
            return conn.execute(q).rowcount


def open_catalog(
    db: str | os.PathLike[str] | None = None, *, create: bool = True, queries: bool = False
) -> Catalog:
    """Open (and migrate) the catalog at a path or URL; None means PHOTOCAT_DB, then the default.
    `queries`: for a short read-only command (see make_engine)."""
    url = database_url(db)
    u = _catalog_url(url)
    shown = u.render_as_string(hide_password=True)
    host = this_host()
    if len(host) > HOST_LENGTH:  # PostgreSQL would refuse the root's row, SQLite keep it
        raise CatalogError(
            f"PHOTOCAT_HOST is {len(host)} characters long: a host name is at most {HOST_LENGTH}"
        )
    is_file = u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:")
    if not create and is_file and not Path(str(u.database)).exists():
        raise CatalogError(f"no catalog at {u.database}: run `photocat scan DIR` first")
    try:
        engine = make_engine(u, queries=queries)  # the URL as parsed and checked above
    except (ArgumentError, ImportError) as exc:  # a driver SQLAlchemy or Python cannot load
        hint = (
            ' (PostgreSQL: pip install "photocat[postgres]", and a postgresql+psycopg:// URL)'
            if u.get_backend_name() == "postgresql"
            else ""
        )
        raise CatalogError(f"cannot open catalog {shown}: {exc}{hint}") from exc
    try:
        migrate(engine)
    except CatalogError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        why = reason(exc) if isinstance(exc, DBAPIError) else describe(exc)
        raise CatalogError(f"cannot open catalog {shown}: {why}") from exc
    return Catalog(url, engine)


BACKENDS = ("sqlite", "postgresql")  # the databases the store writes to (see _insert)


def _catalog_url(url: str) -> URL:
    """`url` parsed, or a CatalogError saying why it is no catalog: not a URL (the text is not
    repeated: it may hold a password), or a database other than BACKENDS."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError) as exc:  # no scheme, a port that is no number...
        what = "--db (or PHOTOCAT_DB) is no file path nor database URL"
        raise CatalogError(f"{what}: {exc}") from exc
    if u.get_backend_name() not in BACKENDS:
        raise CatalogError(
            f"cannot open catalog {u.render_as_string(hide_password=True)}: a catalog is a"
            f" SQLite file or a PostgreSQL database, not {u.get_backend_name()!r}"
        )
    return u


# helpers ---------------------------------------------------------------------------------
def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _replacing(conn: Connection, table: Table) -> Any:
    """An insert into a table keyed by photo_id that replaces the photo's row if it has one."""
    ins = _insert(conn, table)
    keep = {c.name: ins.excluded[c.name] for c in table.columns if c.name != "photo_id"}
    return ins.on_conflict_do_update(index_elements=["photo_id"], set_=keep)


def _executemany(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """conn.execute(stmt, rows) for a large batch of rows with the same keys, minus most of
    SQLAlchemy's per-row work (half of a scan's writer CPU): the statement is compiled once and
    each row goes to the driver's executemany as it is, or as a tuple in the compiled order,
    through the column types' own bind processors (datetimes as text on SQLite). Returns how
    many rows the statement changed in all (-1: the driver cannot tell)."""
    if not rows:
        return 0
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or compiled.binds)
    procs = [
        (i, _faster(f))
        for i, name in enumerate(names)
        if (f := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    get = itemgetter(*names)
    params: list[Any] = []
    for row in rows:
        values = get(row) if len(names) > 1 else (row[names[0]],)
        if procs:
            values = list(values)
            for i, f in procs:
                if values[i] is not None:
                    values[i] = f(values[i])
        named = not compiled.positional
        params.append(dict(zip(names, values, strict=True)) if named else tuple(values))
    count = conn.exec_driver_sql(compiled.string, params).rowcount
    return count if count is not None else -1


# Values that SQLAlchemy's SQLite DATETIME bind processor and isoformat must write alike.
_DATETIMES = (
    datetime(1, 1, 1),
    datetime(2016, 11, 1, 8, 5, 3, 46),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
)


def _faster(process: Any) -> Any:
    """A bind processor, or one that writes the same text faster: SQLite's DATETIME processor
    formats a dict per value (~1.3 us, five a photo); a naive datetime's isoformat gives the same
    text in a third of that. Used only where the two agree (checked on every batch); any other
    value still goes through SQLAlchemy's."""

    last: list[Any] = [None, None]  # this column's last datetime and its text: a batch's
    # first_seen and last_scanned are one stamp for every row

    def fast(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        if type(value) is datetime and value.tzinfo is None:
            text = value.isoformat(" ", "microseconds")
            last[0], last[1] = value, text
            return text
        return process(value)

    try:
        same = all(process(v) == fast(v) for v in _DATETIMES)
    except Exception:  # not a datetime processor
        return process
    return fast if same else process


def _resolve_new(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    narrow: Sequence[str],
    new: Mapping[tuple[Any, ...], Any],
    ids: dict[Any, int],
) -> None:
    """The rows of a lookup table (devices, places) a batch needs and `ids` does not hold yet:
    `new` maps each one's values (in `columns` order: the table's unique key) to its key in
    `ids`. Inserted where missing and their ids read, for the whole batch at once (not three
    statements a row): per 500, one insert that keeps existing rows and one select, narrowed by
    the indexed `narrow` columns and matched exactly here."""
    items = list(new.items())
    for start in range(0, len(items), 500):
        part = dict(items[start : start + 500])
        rows = [dict(zip(columns, values, strict=True)) for values in part]
        conn.execute(_insert(conn, table).on_conflict_do_nothing(index_elements=columns), rows)
        q = select(table.c.id, *(table.c[c] for c in columns)).where(
            *(table.c[c].in_({v[columns.index(c)] for v in part}) for c in narrow)
        )
        for row in conn.execute(q):
            key = part.get(tuple(row[1:]))
            if key is not None:
                ids[key] = row[0]


def _insert_ignore(conn: Connection, table: Table, keys: list[str], **values: object) -> Any:
    return _insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=keys)


def _insert_root(conn: Connection, host: str, path: str) -> None:
    """A root's row, unless it exists. added_at is written here, in UTC: the column's default,
    CURRENT_TIMESTAMP, is the session's local time on PostgreSQL."""
    row = {"host": host, "path": to_db(path), "added_at": now()}
    conn.execute(_insert_ignore(conn, t.roots, ["host", "path"], **row))


def _under(prefix: str, table: Any = t.photos) -> ColumnElement[bool]:
    """Rows whose rel_path starts with `prefix` (stored form), exactly and case-sensitively."""
    if not prefix:
        return true()
    return func.substr(table.c.rel_path, 1, len(prefix)) == prefix


def _is_retryable(exc: DBAPIError) -> bool:
    """A deadlock or serialization failure (PostgreSQL): the transaction can simply run again."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def reason(exc: DBAPIError) -> str:
    """The database's own message, its first line (not SQLAlchemy's wrapping of it)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def _chunks(items: list[_T], n: int) -> Iterator[list[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _photo_row(e: FileEntry, device_id: int | None, stamp: datetime) -> dict[str, object]:
    r = e.record
    return {
        "root_id": e.root_id,
        "rel_path": to_db(e.rel_path),
        "size": e.size,
        "mtime_ns": e.mtime_ns,
        # Both digest columns, always: a file read again must not keep a digest of its old bytes.
        "sha256": e.sha256,
        "blake2b": e.blake2b,
        "format": r.format,
        "width": r.width,
        "height": r.height,
        "orientation": r.orientation,
        "captured_at": r.captured_at,
        "captured_from": r.captured_from,
        "subsec": r.subsec,
        "utc_offset": r.offset,
        "offset_from": r.offset_from,
        "captured_at_utc": r.captured_at_utc,
        "time_source": r.time_source,
        "time_zone": r.time_zone,
        "sort_time": r.captured_at_utc or r.captured_at,
        "device_id": device_id,
        "lens_model": r.lens_model,
        "serial": r.serial,
        "iso": r.iso,
        "exposure_time": r.exposure_time,
        "f_number": r.f_number,
        "focal_length": r.focal_length,
        "software": r.software,
        "warnings": "\n".join(r.warnings) or None,
        "error": r.error,
        "first_seen": stamp,
        "last_scanned": stamp,
        "read_by": READ_BY,
    }


def _gps_row(photo_id: int, r: PhotoRecord) -> dict[str, object] | None:
    if r.latitude is None and r.longitude is None and r.altitude is None and r.gps_time_utc is None:
        return None
    return {
        "photo_id": photo_id,
        "latitude": r.latitude,
        "longitude": r.longitude,
        "altitude": r.altitude,
        "gps_time_utc": r.gps_time_utc,
    }


def _place_key(p: places.Place) -> tuple[str, str, str, str]:
    return (p.country_code, p.country, p.region, p.city)


def _digest_column(algorithm: str) -> Any:
    """The photos column holding digests by `algorithm`: each algorithm has its own column, so
    a digest is never taken for another algorithm's."""
    try:
        return t.DIGEST_COLUMNS[algorithm]
    except KeyError:
        raise ValueError(f"no digest column for {algorithm!r}") from None


def _photo_ids(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The ids of just-upserted photo rows, in the order of `rows`."""
    by_root: dict[Any, list[str]] = {}
    for row in rows:
        by_root.setdefault(row["root_id"], []).append(row["rel_path"])  # type: ignore[arg-type]
    found: dict[tuple[Any, str], int] = {}
    for root_id, rels in by_root.items():
        for chunk in _chunks(rels, 500):
            q = select(t.photos.c.rel_path, t.photos.c.id).where(
                t.photos.c.root_id == root_id, t.photos.c.rel_path.in_(chunk)
            )
            found.update(((root_id, rel), photo_id) for rel, photo_id in conn.execute(q))
    return [found[(row["root_id"], row["rel_path"])] for row in rows]  # type: ignore[index]


def _write_snapshot() -> None:
    """Run the migrations on an empty SQLite file and write what they made to SNAPSHOT."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/snapshot.db")
        head = _script_head()
        assert head is not None, "catalog/migrations has no single head"
        migrate(engine, head)  # a named revision: always through Alembic
        with engine.connect() as conn:
            sql = sqlite_schema(conn)
        engine.dispose()
    target = _migrations() / SNAPSHOT
    target.write_text(sql, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":  # python -m catalog.store snapshot
    import sys

    if sys.argv[1:] != ["snapshot"]:
        sys.exit("usage: python -m catalog.store snapshot")
    _write_snapshot()
