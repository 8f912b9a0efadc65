"""Revision 0002 on a catalog that holds photos: nothing lost, and the rows already there get
what a fresh scan would give them (scan never re-reads an unchanged file): their UTC instant by
the GPS rules, their place, their sort key. Downgrade and upgrade again keep every row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, text

from catalog import query
from catalog.store import make_engine, migrate, open_catalog

# id, captured_at, offset (rule 1 as photocat 0001 stored it), latitude, longitude, GPS clock
ROWS = [
    (1, "2016-07-10 12:00:00", None, 48.8566, 2.3522, None),  # Paris, summer: zone
    (2, "2016-09-28 18:18:05", None, 53.3828, -1.4567, "2016-09-28 17:17:58"),  # GPS clock
    (3, "2020-05-04 18:39:11", "-04:00", 40.7128, -74.0060, None),  # offset tag, New York
    (4, "2011-04-02 18:30:10", None, 0.0, 0.0, None),  # null island: nothing
    (5, "2012-01-01 10:00:00", None, None, None, None),  # no GPS at all
    (6, None, None, 43.7696, 11.2558, None),  # Florence, no capture time
]


def _engine(db: str):  # type: ignore[no-untyped-def]
    return make_engine(db if "://" in db else f"sqlite:///{db}")


def _fill_at_0001(db: str) -> None:
    engine = _engine(db)
    migrate(engine, "0001")
    with engine.begin() as conn:  # rows as photocat 0001 wrote them
        conn.execute(text("INSERT INTO roots (id, host, path) VALUES (1, 'h', '/p')"))
        conn.execute(text("INSERT INTO devices (id, make, model) VALUES (1, 'Canon', 'M1')"))
        for pid, taken, offset, lat, lon, gps_time in ROWS:
            utc = "2020-05-04 22:39:11" if offset else None
            conn.execute(
                text(
                    "INSERT INTO photos (id, root_id, rel_path, size, mtime_ns, format,"
                    " captured_at, utc_offset, offset_from, captured_at_utc, time_source,"
                    " warnings, device_id, first_seen, last_scanned) VALUES (:id, 1, :rel, 10,"
                    " 1, 'JPEG', :taken, :offset, :offset_from, :utc, :source, :warnings, 1,"
                    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {
                    "id": pid,
                    "rel": f"{pid}.jpg",
                    "taken": taken,
                    "offset": offset,
                    "offset_from": "OffsetTimeOriginal" if offset else None,
                    "utc": utc,
                    "source": "offset_tag" if offset else None,
                    "warnings": "an old warning" if pid == 1 else None,
                },
            )
            if lat is not None:
                conn.execute(
                    text(
                        "INSERT INTO gps_positions (photo_id, latitude, longitude, gps_time_utc)"
                        " VALUES (:id, :lat, :lon, :gps)"
                    ),
                    {"id": pid, "lat": lat, "lon": lon, "gps": gps_time},
                )
            conn.execute(
                text("INSERT INTO raw_tags (photo_id, tags) VALUES (:id, '[]')"), {"id": pid}
            )
    engine.dispose()


def _counts(conn) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    return tuple(  # type: ignore[return-value]
        conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        for table in ("photos", "gps_positions", "raw_tags")
    )


def test_upgrade_backfills_time_place_and_sort_key_without_loss(db: str) -> None:
    _fill_at_0001(db)
    with open_catalog(db) as catalog:  # upgrades to head
        with catalog.engine.connect() as conn:
            assert _counts(conn) == (6, 5, 6)
            rows = {
                r.id: r
                for r in conn.execute(
                    text(
                        "SELECT p.id, p.utc_offset, p.offset_from, p.captured_at_utc,"
                        " p.time_source, p.time_zone, p.sort_time, p.warnings, p.place_id,"
                        " pl.country_code, pl.city FROM photos p"
                        " LEFT JOIN places pl ON pl.id = p.place_id"
                    )
                )
            }
            places = conn.execute(text("SELECT count(*) FROM places")).scalar()

        def fields(pid: int) -> tuple[object, ...]:
            r = rows[pid]
            return r.utc_offset, r.time_source, r.time_zone, r.country_code, r.city

        assert fields(1) == ("+02:00", "gps_zone", "Europe/Paris", "FR", "Paris")
        assert fields(2) == ("+01:00", "gps_time", "Europe/London", "GB", "Sheffield")
        assert fields(3) == ("-04:00", "offset_tag", "America/New_York", "US", "New York City")
        assert rows[3].offset_from == "OffsetTimeOriginal"
        assert fields(4) == (None, None, None, None, None)
        assert fields(5) == (None, None, None, None, None)
        assert fields(6) == (None, None, "Europe/Rome", "IT", "Florence")
        assert places == 4
        assert rows[1].warnings == "an old warning"  # kept; nothing new to say for this one

        def as_datetime(value: object) -> datetime | None:
            return datetime.fromisoformat(str(value)) if value is not None else None

        assert as_datetime(rows[1].captured_at_utc) == datetime(2016, 7, 10, 10, 0, 0)
        assert as_datetime(rows[2].captured_at_utc) == datetime(2016, 9, 28, 17, 18, 5)
        # sort key: the UTC instant where known, else the local time, else nothing
        assert as_datetime(rows[1].sort_time) == datetime(2016, 7, 10, 10, 0, 0)
        assert as_datetime(rows[3].sort_time) == datetime(2020, 5, 4, 22, 39, 11)
        assert as_datetime(rows[4].sort_time) == datetime(2011, 4, 2, 18, 30, 10)
        assert rows[6].sort_time is None

        # the upgraded rows answer the new questions
        def names(f: query.Filter) -> list[str]:
            return [r["path"].rsplit("/", 1)[1] for r in query.search(catalog, f)]

        assert names(query.Filter(country="fr")) == ["1.jpg"]
        assert names(query.Filter(city="Florence")) == ["6.jpg"]
        assert names(query.Filter(sort="captured_at")) == [
            "4.jpg",  # 2011, local
            "5.jpg",  # 2012, local
            "1.jpg",  # 2016-07-10T10:00Z
            "2.jpg",  # 2016-09-28T17:18Z
            "3.jpg",  # 2020
            "6.jpg",  # no time: last
        ]
        place_rows = query.places(catalog)
        assert {p["city"]: p["photos"] for p in place_rows} == {
            "Paris": 1,
            "Sheffield": 1,
            "New York City": 1,
            "Florence": 1,
        }

        migrate(catalog.engine, "0001", down=True)
        with catalog.engine.connect() as conn:
            assert _counts(conn) == (6, 5, 6)
            assert "places" not in inspect(conn).get_table_names()
            columns = {c["name"] for c in inspect(conn).get_columns("photos")}
            assert "sort_time" not in columns and "place_id" not in columns
        migrate(catalog.engine)
        with catalog.engine.connect() as conn:
            assert _counts(conn) == (6, 5, 6)
            assert conn.execute(text("SELECT count(*) FROM places")).scalar() == 4
            assert (
                conn.execute(
                    text("SELECT count(*) FROM photos WHERE place_id IS NOT NULL")
                ).scalar()
                == 4
            )


def test_upgrade_of_an_empty_catalog(db: str) -> None:
    engine = _engine(db)
    migrate(engine, "0001")
    engine.dispose()
    with open_catalog(db) as catalog, catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM places")).scalar() == 0
