"""places, photos.place_id and photos.sort_time; existing rows resolved and backfilled

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Rows that exist already are brought to what a fresh scan would store, since scan never re-reads
an unchanged file: their UTC instant by the GPS-clock and GPS-zone rules (catalog.when), their
place (catalog.places), and the sort key. In batches, so a large catalog needs little memory.

SQLite: columns are added and dropped with ALTER TABLE, never with Alembic's batch mode. Batch
mode copies `photos` and drops the old table, and with foreign keys on (as photocat opens every
catalog) that drop cascades: every GPS position and tag listing would be deleted. DROP COLUMN
needs SQLite 3.35 (2021) or later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog import places, when

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000

photos = sa.table(
    "photos",
    sa.column("id", sa.Integer()),
    sa.column("captured_at", sa.DateTime()),
    sa.column("utc_offset", sa.String()),
    sa.column("offset_from", sa.String()),
    sa.column("captured_at_utc", sa.DateTime()),
    sa.column("time_source", sa.String()),
    sa.column("time_zone", sa.String()),
    sa.column("warnings", sa.Text()),
    sa.column("place_id", sa.Integer()),
    sa.column("sort_time", sa.DateTime()),
)
gps_positions = sa.table(
    "gps_positions",
    sa.column("photo_id", sa.Integer()),
    sa.column("latitude", sa.Float()),
    sa.column("longitude", sa.Float()),
    sa.column("gps_time_utc", sa.DateTime()),
)
places_table = sa.table(
    "places",
    sa.column("id", sa.Integer()),
    sa.column("country_code", sa.String()),
    sa.column("country", sa.Text()),
    sa.column("region", sa.Text()),
    sa.column("city", sa.Text()),
)


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
        sa.UniqueConstraint(
            "country_code",
            "country",
            "region",
            "city",
            name=op.f("uq_places_country_code_country_region_city"),
        ),
    )
    op.add_column("photos", sa.Column("sort_time", sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE photos ADD COLUMN place_id INTEGER"
            " CONSTRAINT fk_photos_place_id_places REFERENCES places (id)"
        )
    else:
        op.add_column("photos", sa.Column("place_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_photos_place_id_places"), "photos", "places", ["place_id"], ["id"]
        )
    _backfill(op.get_bind())
    op.create_index("ix_photos_sort_time", "photos", ["sort_time"], unique=False)
    op.create_index("ix_photos_place_id", "photos", ["place_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_photos_place_id", table_name="photos")
    op.drop_index("ix_photos_sort_time", table_name="photos")
    if op.get_bind().dialect.name == "sqlite":
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(f"downgrading needs SQLite 3.35+, not {sqlite3.sqlite_version}")
        op.execute("ALTER TABLE photos DROP COLUMN place_id")
        op.execute("ALTER TABLE photos DROP COLUMN sort_time")
    else:
        op.drop_constraint(op.f("fk_photos_place_id_places"), "photos", type_="foreignkey")
        op.drop_column("photos", "place_id")
        op.drop_column("photos", "sort_time")
    op.drop_table("places")


def _backfill(conn: sa.Connection) -> None:
    """Resolve time and place of the photos that have GPS data, then set every sort key."""
    place_ids: dict[places.Place, int] = {}
    after = -1
    while True:
        rows = conn.execute(
            sa.select(
                photos.c.id,
                photos.c.captured_at,
                photos.c.utc_offset,
                photos.c.offset_from,
                photos.c.time_source,
                photos.c.warnings,
                gps_positions.c.latitude,
                gps_positions.c.longitude,
                gps_positions.c.gps_time_utc,
            )
            .join(gps_positions, gps_positions.c.photo_id == photos.c.id)
            .where(photos.c.id > after)
            .order_by(photos.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        positions = [
            (r.latitude, r.longitude)
            if r.latitude is not None and r.longitude is not None
            else None
            for r in rows
        ]
        updates = []
        for row, place in zip(rows, places.lookup(positions), strict=True):
            tag_offset = row.utc_offset if row.time_source == "offset_tag" else None
            found = when.resolve(
                row.captured_at, tag_offset, row.offset_from, row.latitude, row.longitude,
                row.gps_time_utc,
            )  # fmt: skip
            warnings = row.warnings.split("\n") if row.warnings else []
            warnings += [w for w in found.warnings if w not in warnings]
            updates.append(
                {
                    "row_id": row.id,
                    "utc_offset": found.offset,
                    "offset_from": row.offset_from if found.time_source == "offset_tag" else None,
                    "captured_at_utc": found.captured_at_utc,
                    "time_source": found.time_source,
                    "time_zone": found.time_zone,
                    "warnings": "\n".join(warnings) or None,
                    "place_id": None if place is None else _place_id(conn, place, place_ids),
                }
            )
        conn.execute(
            photos.update()
            .where(photos.c.id == sa.bindparam("row_id"))
            .values({key: sa.bindparam(key) for key in updates[0] if key != "row_id"}),
            updates,
        )
    conn.execute(
        photos.update().values(
            sort_time=sa.func.coalesce(photos.c.captured_at_utc, photos.c.captured_at)
        )
    )


def _place_id(conn: sa.Connection, place: places.Place, known: dict[places.Place, int]) -> int:
    found = known.get(place)
    if found is None:
        values = {
            "country_code": place.country_code,
            "country": place.country,
            "region": place.region,
            "city": place.city,
        }
        q = sa.select(places_table.c.id).where(
            *(places_table.c[key] == value for key, value in values.items())
        )
        found = conn.execute(q).scalar()
        if found is None:
            conn.execute(places_table.insert().values(values))
            found = conn.execute(q).scalar_one()
        known[place] = found
    return found
