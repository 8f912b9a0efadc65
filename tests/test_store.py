from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import BACKEND, engine_for, sqlite_only
from sqlalchemy import func, inspect, select, text

from catalog import query
from catalog import tables as t
from catalog.models import Base, Device, GpsPosition, Photo, RawTags
from catalog.paths import relative_to
from catalog.record import PhotoRecord, RawTag
from catalog.store import Catalog, CatalogError, FileEntry, _script_head, migrate, open_catalog


def entry(root_id: int, rel: str, **fields: object) -> FileEntry:
    rec = PhotoRecord(format="JPEG", **fields)  # type: ignore[arg-type]
    rec.tags = [RawTag("IFD0", 0x010F, "Make", str(fields.get("make")))]
    return FileEntry(root_id, rel, 10, 1, rec, "ab" * 32)


@pytest.mark.filterwarnings("ignore:.*expression-based index")  # compared by EXPLAIN below
def test_models_and_migrations_agree(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_orm_classes_type_every_column_as_its_table_declares_it() -> None:
    """catalog.models types the Core tables for the ORM: no column missing, nullability agreed."""
    from catalog import models

    for cls in (models.Root, models.Device, models.Place, models.Photo, models.GpsPosition,
                models.RawTags):  # fmt: skip
        hints = {k: v for k, v in cls.__annotations__.items() if k in cls.__table__.c}
        assert set(hints) == set(cls.__table__.c.keys()), cls.__name__
        for name, hint in hints.items():
            optional = "| None" in str(hint)
            assert optional == cls.__table__.c[name].nullable, f"{cls.__name__}.{name}"


def test_a_cli_start_up_does_not_import_the_orm() -> None:
    """The store and queries are Core statements: sqlalchemy.orm costs ~85 ms of each start."""
    import subprocess
    import sys

    code = (
        "import sys, catalog.cli, catalog.query, catalog.ingest; "
        "print('sqlalchemy.orm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@sqlite_only
def test_sqlite_is_opened_wal_with_foreign_keys_and_busy_timeout(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_downgrade_to_nothing_and_upgrade_again(catalog: Catalog) -> None:
    migrate(catalog.engine, "base", down=True)
    assert set(inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    migrate(catalog.engine)
    with catalog.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Photo)).scalar() == 0


def test_catalog_from_a_newer_photocat_is_refused_untouched(db: str) -> None:
    open_catalog(db).close()
    engine = engine_for(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    with pytest.raises(CatalogError, match="newer photocat"):
        open_catalog(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            "ffff_from_the_future"
        )
    engine.dispose()


def test_a_host_name_longer_than_its_column_is_refused_on_every_backend(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refused the root's row mid-scan; SQLite stored the name whole: now neither."""
    monkeypatch.setenv("PHOTOCAT_HOST", "h" * 256)
    with pytest.raises(CatalogError, match="PHOTOCAT_HOST is 256 characters long"):
        open_catalog(db)
    monkeypatch.setenv("PHOTOCAT_HOST", "h" * 255)
    with open_catalog(db) as catalog:
        catalog.root_id("/photos")
        assert [path for _, path in catalog.roots(host="h" * 255)] == ["/photos"]


@pytest.mark.parametrize("queries", [True, False])
def test_another_programs_database_is_refused_untouched(db: str, queries: bool) -> None:
    """A --db typo can name any database: one with tables of its own and no schema revision
    is not made a catalog (before, even a search added photocat's tables to it)."""
    engine = engine_for(db)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        conn.execute(text("INSERT INTO notes (id, body) VALUES (1, 'mine')"))
    with pytest.raises(CatalogError, match=r"not a photocat catalog: .*other tables \(notes\)"):
        open_catalog(db, queries=queries)
    assert inspect(engine).get_table_names() == ["notes"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM notes")).scalars().all() == ["mine"]
    engine.dispose()


@sqlite_only
@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p.mkdir(), "unable to open database file"),
        (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, say"), "file is not a database"),
    ],
)
def test_a_db_that_is_no_sqlite_file_is_one_line(tmp_path: Path, make: object, said: str) -> None:
    path = tmp_path / "x.db"
    make(path)  # type: ignore[operator]
    with pytest.raises(CatalogError) as raised:
        open_catalog(path)
    message = str(raised.value)
    assert message == f"cannot open catalog sqlite:///{path}: {said}"  # not SQLAlchemy's essay


@sqlite_only
def test_opening_a_missing_catalog_for_reading_says_so(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog"):
        open_catalog(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_upsert_is_idempotent_and_keeps_identity(catalog: Catalog) -> None:
    root = catalog.root_id("/photos")
    assert root is not None
    catalog.upsert([entry(root, "a.jpg", make="Canon", model="EOS", latitude=1.0, longitude=2.0)])
    with catalog.engine.connect() as conn:
        first = conn.execute(select(Photo.id, Photo.first_seen)).one()
    catalog.upsert([entry(root, "a.jpg", make="Canon", model="EOS")])  # GPS gone on re-read
    catalog.upsert([entry(root, "b.jpg", make="Canon", model="EOS")])
    with catalog.engine.connect() as conn:
        assert (
            conn.execute(select(Photo.id, Photo.first_seen).where(Photo.rel_path == "a.jpg")).one()
            == first
        )
        assert conn.execute(select(func.count()).select_from(Photo)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(Device)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(GpsPosition)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(RawTags)).scalar() == 2


def test_a_photo_read_again_has_its_position_and_listing_replaced(catalog: Catalog) -> None:
    """Re-read in a later batch (with others), a photo keeps one GPS row and one listing: the
    new ones; a photo whose position is gone has none; its neighbours' rows are untouched."""
    root = catalog.root_id("/photos")
    assert root is not None
    catalog.upsert(
        [
            entry(root, "a.jpg", make="Canon", latitude=1.0, longitude=2.0),
            entry(root, "b.jpg", make="NIKON", latitude=5.0, longitude=6.0),
            entry(root, "c.jpg", make="Sony", latitude=7.0, longitude=8.0),
        ]
    )
    catalog.upsert(
        [
            entry(root, "a.jpg", make="Leica", latitude=3.0, longitude=4.0),
            entry(root, "c.jpg", make="Sony"),  # its position gone
            entry(root, "d.jpg", make="Pentax", latitude=9.0, longitude=1.0),
        ]
    )
    with catalog.engine.connect() as conn:
        ids = dict(conn.execute(select(Photo.rel_path, Photo.id)).all())
        gps = {
            r.photo_id: (r.latitude, r.longitude)
            for r in conn.execute(select(GpsPosition.photo_id, GpsPosition.latitude,
                                         GpsPosition.longitude))
        }  # fmt: skip
        listings = dict(conn.execute(select(RawTags.photo_id, RawTags.tags)).all())
    assert gps == {ids["a.jpg"]: (3.0, 4.0), ids["b.jpg"]: (5.0, 6.0), ids["d.jpg"]: (9.0, 1.0)}
    assert {rel: json.loads(listings[i])[0][3] for rel, i in ids.items()} == {
        "a.jpg": "Leica", "b.jpg": "NIKON", "c.jpg": "Sony", "d.jpg": "Pentax",
    }  # fmt: skip


def test_two_writers_upserting_the_same_photos_leave_each_whole(catalog: Catalog, db: str) -> None:
    """Two processes (two connections) write the same 120 photos at once, in overlapping
    batches, each its own version: every photo ends with the listing and position of the very
    writer whose row it kept, never a mix, one of each at most, and no write fails."""
    import threading

    root = catalog.root_id("/photos")
    assert root is not None
    names = [f"{i:03d}.jpg" for i in range(120)]

    def version(writer: str, rel: str) -> FileEntry:
        odd = int(rel[:3]) % 2
        if writer == "A":
            return entry(root, rel, make="A", latitude=1.0, longitude=float(int(rel[:3])))
        return entry(root, rel, make="B", **({"latitude": 2.0, "longitude": 2.0} if odd else {}))

    errors: list[BaseException] = []

    def write(writer: str, start: int) -> None:
        try:
            with open_catalog(db) as mine:
                for rounds in range(3):
                    for i in range(0, len(names), 40):
                        at = (start + i + rounds * 7) % len(names)
                        batch = (names + names)[at : at + 50]  # overlapping batches
                        mine.upsert([version(writer, rel) for rel in batch])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(w, s)) for w, s in (("A", 0), ("B", 60))]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    assert not errors, errors
    with catalog.engine.connect() as conn:
        photos = conn.execute(
            select(Photo.id, Photo.rel_path, Device.make).join(Device, Photo.device_id == Device.id)
        ).all()
        gps = dict(conn.execute(select(GpsPosition.photo_id, GpsPosition.latitude)).all())
        listings = dict(conn.execute(select(RawTags.photo_id, RawTags.tags)).all())
    assert sorted(rel for _, rel, _ in photos) == names
    assert set(listings) == {pid for pid, _, _ in photos}
    for pid, rel, make in photos:
        assert json.loads(listings[pid])[0][3] == make, rel
        if make == "A":
            assert gps.get(pid) == 1.0, rel
        else:
            assert gps.get(pid) == (2.0 if int(rel[:3]) % 2 else None), rel


def test_the_devices_of_a_batch_are_stored_once_each_and_referenced(
    catalog: Catalog, db: str
) -> None:
    """A batch's new devices are inserted and looked up together; pairs that only cross
    (Canon + SM-G920F, from a make of one and a model of another) are devices of their own."""
    root = catalog.root_id("/photos")
    assert root is not None
    pairs = [
        ("Canon", "EOS"), ("Canon", "EOS"), ("samsung", "SM-G920F"), (None, "EOS"),
        ("Canon", None), (None, None), ("Canon", "SM-G920F"), ("NIKON", "EOS"),
    ]  # fmt: skip
    catalog.upsert([entry(root, f"{i}.jpg", make=mk, model=md) for i, (mk, md) in enumerate(pairs)])
    with open_catalog(db) as other:  # another writer, its cache empty: found, not made again
        other.upsert([entry(root, "8.jpg", make="samsung", model="EOS")])
        other.upsert([entry(root, "9.jpg", make="Canon", model="EOS")])
    pairs += [("samsung", "EOS"), ("Canon", "EOS")]
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(Photo.rel_path, Photo.device_id, Device.make, Device.model).outerjoin(Device)
        ).all()
        stored = {r.rel_path: None if r.device_id is None else (r.make, r.model) for r in rows}
        devices = conn.execute(select(func.count()).select_from(Device)).scalar()
    assert stored == {
        f"{i}.jpg": None if mk is None and md is None else (mk or "", md or "")
        for i, (mk, md) in enumerate(pairs)
    }
    assert devices == 7


def test_digests_go_only_to_rows_of_the_size_and_mtime_hashed_and_are_counted(
    catalog: Catalog,
) -> None:
    root = catalog.root_id("/photos")
    assert root is not None
    catalog.upsert([entry(root, f"{name}.jpg") for name in "abc"])  # size 10, mtime 1
    ids = {rel: s.photo_id for rel, s in catalog.file_states(root).items()}
    digests = [
        (ids["a.jpg"], 10, 1, "11" * 32),
        (ids["b.jpg"], 11, 1, "22" * 32),  # the file grew after its row was written
        (ids["c.jpg"], 10, 1, "33" * 32),
    ]
    assert catalog.set_digests("blake2b", digests) == 2
    assert catalog.set_digests("blake2b", []) == 0
    with catalog.engine.connect() as conn:
        rows = dict(conn.execute(select(Photo.rel_path, Photo.blake2b)).all())
    assert rows == {"a.jpg": "11" * 32, "b.jpg": None, "c.jpg": "33" * 32}


def test_roots_are_per_host(catalog: Catalog) -> None:
    a = catalog.root_id("/photos", host="alpha")
    b = catalog.root_id("/photos", host="beta")
    assert a != b
    assert catalog.root_id("/photos", host="alpha") == a


def test_a_folder_inside_a_root_is_claimed_as_that_root_with_a_prefix(catalog: Catalog) -> None:
    root, path, prefix = catalog.claim_root("/photos", host="alpha")
    assert (path, prefix) == ("/photos", "")
    assert catalog.claim_root("/photos/2016/11", host="alpha") == (root, "/photos", "2016/11/")
    assert catalog.claim_root("/photos2", host="alpha")[0] != root  # a sibling, not a child
    assert catalog.claim_root("/photos/2016", host="beta")[1:] == ("/photos/2016", "")


def test_claiming_a_parent_folds_the_roots_inside_it(catalog: Catalog) -> None:
    inner, _, _ = catalog.claim_root("/photos/2016", host="alpha")
    catalog.upsert([entry(inner, "a.jpg", make="X")])
    outer, _, prefix = catalog.claim_root("/photos", host="alpha")
    assert prefix == "" and outer != inner
    assert catalog.roots(host="alpha") == [(outer, "/photos")]
    with catalog.engine.connect() as conn:
        assert conn.execute(select(Photo.root_id, Photo.rel_path)).all() == [(outer, "2016/a.jpg")]


def test_a_fold_waits_for_a_write_under_the_root_it_folds(catalog: Catalog, db: str) -> None:
    """Another process claims the parent folder while this one is writing under the sub-root:
    the fold waits for the write, then takes its rows along (on PostgreSQL the write's rows
    went with the deleted root, or failed its foreign key, before writes held ROOTS_LOCK)."""
    import threading
    import time

    inner, _, _ = catalog.claim_root("/photos/2016", host="alpha")
    catalog.upsert([entry(inner, "a.jpg", make="X")])
    inside = threading.Event()
    errors: list[BaseException] = []

    def write_slowly() -> None:
        try:
            with catalog.writing() as conn:
                live, prefix = catalog._live(conn, inner)
                catalog._upsert(conn, [entry(live, prefix + "b.jpg", make="Y")], datetime.now())
                inside.set()
                time.sleep(1.0)  # the other process claims the parent meanwhile
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            inside.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    assert inside.wait(30)
    with open_catalog(db) as other:  # another connection, as another process has
        outer, _, _ = other.claim_root("/photos", host="alpha")
    writer.join(30)
    assert not errors, errors
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Photo.root_id, Photo.rel_path).order_by(Photo.rel_path)).all()
    assert rows == [(outer, "2016/a.jpg"), (outer, "2016/b.jpg")]


def test_removing_a_photo_removes_its_gps_and_tags(catalog: Catalog) -> None:
    root = catalog.root_id("/photos")
    assert root is not None
    catalog.upsert([entry(root, "a.jpg", make="X", latitude=1.0, longitude=2.0)])
    assert catalog.remove(root, ["a.jpg"]) == 1
    with catalog.engine.connect() as conn:
        for table in (Photo, GpsPosition, RawTags):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0


def plan(catalog: Catalog, f: query.Filter) -> str:
    stmt = query.build(f).compile(catalog.engine, compile_kwargs={"literal_binds": True})
    with catalog.engine.connect() as conn:
        return "\n".join(r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {stmt}")))


@pytest.mark.parametrize(
    ("f", "index"),
    [
        # (device_id, sort_time): a device's photos in the order searches sort them
        (query.Filter(model="SM-G920F", limit=100), "ix_photos_device_sort"),
        (query.Filter(make="samsung"), "ix_photos_device_sort"),
        # a local-time range, also bounded on sort_time (a day wider): found in the order a
        # search returns it, no sort of every matching row before the first comes out
        (
            query.Filter(
                date_from=query.TimeBound.parse("2016-11-01"),
                date_to=query.TimeBound.parse("2016-11-30"),
            ),
            "ix_photos_sort_time",
        ),
        (
            query.Filter(utc=True, date_from=query.TimeBound.parse("2016")),
            "ix_photos_captured_at_utc",
        ),
    ],
)
@sqlite_only  # PostgreSQL's planner prefers a sequential scan on tables this small
def test_used_by_queries_are_index_lookups(catalog: Catalog, f: query.Filter, index: str) -> None:
    root = catalog.root_id("/p")
    assert root is not None
    catalog.upsert([entry(root, f"{i}.jpg", make="samsung", model="SM-G920F") for i in range(50)])
    with catalog.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    p = plan(catalog, f)
    assert index in p, p
    assert "SCAN photos" not in p.replace("SCAN photos USING INDEX", ""), p
    if f.date_from is not None and not f.utc:  # the index gives the order: nothing to sort
        assert "TEMP B-TREE" not in p, p


def test_a_local_date_range_loses_no_photo_to_its_sort_time_bound(catalog: Catalog) -> None:
    """The range on captured_at is also put on sort_time, a day wider: photos whose UTC instant
    is far from their local time (offsets up to a day) must still be found, and only those."""
    root = catalog.root_id("/p")
    assert root is not None
    local_utc = {  # name: (local time, UTC instant or None)
        "first-plus14.jpg": ("2016-11-01 00:30", "2016-10-31 10:30"),  # +14:00
        "last-minus12.jpg": ("2016-11-30 23:30", "2016-12-01 11:30"),  # -12:00
        "almost-a-day.jpg": ("2016-11-01 00:00", "2016-11-01 23:59"),  # -23:59, the tzinfo limit
        "no-utc.jpg": ("2016-11-15 12:00", None),
        "before.jpg": ("2016-10-31 23:59", "2016-11-01 09:59"),  # UTC in range, local not
        "after.jpg": ("2016-12-01 00:00", "2016-11-30 10:00"),
    }
    catalog.upsert(
        [
            entry(
                root, name,
                captured_at=datetime.fromisoformat(local),
                captured_at_utc=datetime.fromisoformat(utc) if utc else None,
            )
            for name, (local, utc) in local_utc.items()
        ]
    )  # fmt: skip
    tb = query.TimeBound.parse

    def names(f: query.Filter) -> list[str]:
        return [Path(r["path"]).name for r in query.search(catalog, f)]

    month = query.Filter(date_from=tb("2016-11-01"), date_to=tb("2016-11-30"))
    assert names(month) == ["first-plus14.jpg", "almost-a-day.jpg", "no-utc.jpg",
                            "last-minus12.jpg"]  # fmt: skip  # in sort_time order
    assert query.count(catalog, month) == 4
    assert names(query.Filter(date_from=tb("2016-12-01"))) == ["after.jpg"]
    # bounds a day from the ends of the calendar: nothing to widen, nothing lost
    assert len(names(query.Filter(date_from=tb("0001-01-01"), date_to=tb("9999-12-31")))) == 6


@sqlite_only
def test_only_query_commands_map_the_catalog_into_memory(db: str) -> None:
    """Mapped, an I/O error on the file kills the process (SIGBUS): fine for a search, never for
    a writer such as the watch daemon, so only catalogs opened for queries map it; a writer
    keeps its temporary data (upserts' statement journals) in memory instead."""
    for queries in (False, True):
        with open_catalog(db, queries=queries) as c, c.engine.connect() as conn:
            mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
            temp_store = conn.exec_driver_sql("PRAGMA temp_store").scalar()
            assert (mapped > 0) is queries
            assert temp_store == (0 if queries else 2)  # 0: the default (a file), 2: memory


@sqlite_only
def test_a_new_catalog_is_made_from_a_current_snapshot_of_the_migrations(tmp_path: Path) -> None:
    """A new SQLite catalog is made from migrations/head.sqlite.sql: exactly what Alembic's
    migrations make (if this fails after a new migration: python -m catalog.store snapshot)."""
    import catalog.migrations

    from catalog.store import SNAPSHOT, _script_head, make_engine, sqlite_schema

    head = _script_head()
    assert head is not None
    by_alembic = make_engine(f"sqlite:///{tmp_path / 'alembic.db'}")
    migrate(by_alembic, head)  # a named revision: always through Alembic
    by_snapshot = make_engine(f"sqlite:///{tmp_path / 'snapshot.db'}")
    migrate(by_snapshot)

    def schema(engine: object) -> list[tuple[str, ...]]:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            rows = conn.exec_driver_sql("SELECT * FROM sqlite_master ORDER BY rowid").all()
            return [*rows, *conn.exec_driver_sql("SELECT * FROM alembic_version").all()]

    assert schema(by_snapshot) == schema(by_alembic)
    with by_alembic.connect() as conn:
        made = sqlite_schema(conn)
    snapshot = Path(catalog.migrations.__file__).parent / SNAPSHOT
    assert snapshot.read_text(encoding="utf-8") == made, "run: python -m catalog.store snapshot"
    by_alembic.dispose()
    by_snapshot.dispose()


@sqlite_only
def test_processes_making_the_same_new_catalog_at_once_make_it_once(tmp_path: Path) -> None:
    """Several first scans of one new catalog file at once: one makes it from the snapshot, the
    others find it made (no error, no second schema)."""
    import subprocess
    import sys

    new = tmp_path / "new.db"
    code = f"from catalog.store import open_catalog; open_catalog({str(new)!r}).close()"
    repo = Path(__file__).resolve().parent.parent
    makers = [
        subprocess.Popen([sys.executable, "-c", code], cwd=repo, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for maker in makers:
        _, err = maker.communicate(timeout=120)
        assert maker.returncode == 0, err
    with open_catalog(new) as c, c.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        tables = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'photos'"
        ).scalar()
    assert versions == [(_script_head(),)] and tables == 1


@sqlite_only
def test_making_a_new_catalog_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    new = tmp_path / "new.db"
    code = (
        "import sys; from catalog.store import open_catalog; "
        f"open_catalog({str(new)!r}).close(); print('alembic' in sys.modules)"
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert out.stdout.strip() == "False", out.stderr
    with open_catalog(new) as c, c.engine.connect() as conn:  # and it is a working catalog
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert versions == [(_script_head(),)]


@sqlite_only
def test_datetimes_are_written_as_sqlalchemy_writes_them(catalog: Catalog, db: str) -> None:
    """The upsert's faster datetime processor (store._faster) writes exactly SQLAlchemy's text:
    the queries compare these strings."""
    import random
    import sqlite3

    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from catalog.store import _faster

    dialect = sqlite.dialect()
    slow = DateTime().dialect_impl(dialect).bind_processor(dialect)
    fast = _faster(slow)
    assert fast is not slow
    rng = random.Random(5)
    values = [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
    values += [datetime.fromtimestamp(rng.uniform(-6e10, 2.5e11)) for _ in range(2000)]
    assert [fast(v) for v in values] == [slow(v) for v in values]
    assert fast(None) is None
    # Another storage format: SQLAlchemy's own processor is kept.
    other = sqlite.DATETIME(storage_format="%(year)04d/%(month)02d/%(day)02d").bind_processor(
        dialect
    )
    assert _faster(other) is other

    root = catalog.claim_root("/photos")[0]
    when = values[2]
    catalog.upsert([entry(root, "a.jpg", captured_at=when, captured_at_utc=values[1])])
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT captured_at, captured_at_utc FROM photos").fetchone()
    finally:
        con.close()
    assert row == (slow(when), slow(values[1]))


def test_the_script_head_is_alembics_head() -> None:
    """_script_head reads the migrations' constants without Alembic: the same head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from catalog.store import _migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations()))
    assert _script_head() == ScriptDirectory.from_config(cfg).get_current_head() is not None


CHAIN = {
    "0001_a.py": 'revision: str = "0001"\ndown_revision: str | None = None\n',
    "0002_b.py": "revision = '0002'  # a comment\ndown_revision: str | None = '0001'\n",
    "__init__.py": "",
}
NEXT = 'revision = "0003"\ndown_revision = "0002"\n'


@pytest.mark.parametrize(
    ("extra", "head"),
    [
        ({}, "0002"),
        ({"0003_c.py": 'revision: str = "0003"\ndown_revision: str | None = "0002"\n'}, "0003"),
        ({"0003_c.py": NEXT + 'def f():\n    revision = "x"\n'}, "0003"),  # not at the top
        ({"0003_c.py": 'revision = "0003"\ndown_revision = "0001"\n'}, None),  # two heads
        ({"0003_c.py": 'revision = make()\ndown_revision = "0002"\n'}, None),  # not a constant
        ({"0003_c.py": 'revision = "0003"\ndown_revision = ("0001", "0002")\n'}, None),  # merge
        ({"0003_c.py": '"""\nrevision = "0009"\n"""\n' + NEXT}, None),  # twice (a docstring)
        ({"0003_c.py": 'down_revision = "0002"\n'}, None),  # no revision of its own
        ({"0003_c.py": 'revision = None\ndown_revision = "0002"\n'}, None),
    ],
)
def test_the_script_head_is_read_only_from_simple_constants(
    tmp_path: Path, extra: dict[str, str], head: str | None
) -> None:
    """Anything but the plain lines Alembic writes gives None (Alembic then decides): a head
    read wrongly would leave a catalog unmigrated."""
    from catalog.store import _head_of

    for name, source in {**CHAIN, **extra}.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    assert _head_of(tmp_path) == head


def test_a_script_that_is_not_utf8_leaves_the_head_to_alembic(tmp_path: Path) -> None:
    from catalog.store import _head_of

    for name, source in CHAIN.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    (tmp_path / "0003_c.py").write_bytes(b'# \xff\nrevision = "0003"\ndown_revision = "0002"\n')
    assert _head_of(tmp_path) is None


@pytest.mark.skipif(BACKEND != "postgresql", reason="a session time zone is PostgreSQL's")
def test_a_roots_added_at_is_utc_whatever_the_servers_time_zone(tmp_path: Path, db: str) -> None:
    """PostgreSQL's CURRENT_TIMESTAMP, stored in a column without a time zone, is the session's
    local time: the catalog writes the UTC time itself, through both ways a root is made."""
    far = db + ("&" if "?" in db else "?") + "options=-c%20timezone%3DPacific/Kiritimati"  # +14
    with open_catalog(far) as catalog:
        with catalog.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Pacific/Kiritimati"
        catalog.claim_root(str(tmp_path / "scanned"))
        catalog.root_id(str(tmp_path / "made"))
    with open_catalog(db) as catalog, catalog.engine.connect() as conn:
        added = conn.execute(select(t.roots.c.added_at)).scalars().all()
    assert len(added) == 2
    for when in added:
        assert abs(when - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("path", "folder", "expected"),
    [
        ("/photos", "/photos", ""),
        ("/photos/2016/a.jpg", "/photos", "2016/a.jpg"),
        ("/photos/2016", "/photos/", "2016"),
        ("/photos2/a.jpg", "/photos", None),  # a prefix as text, not as a folder
        ("/photo", "/photos", None),
        ("/", "/", ""),
        ("/a/b", "/", "a/b"),
        ("/a", "/a/b", None),
        ("/caf\udce9/x", "/caf\udce9", "x"),  # a name that is not UTF-8
    ],
)
def test_relative_to(path: str, folder: str, expected: str | None) -> None:
    assert relative_to(path, folder) == expected
